#!/usr/bin/env python3
"""Random build contexts and .dockerignore files, and the differential test of imprint against BuildKit's own
walker (the oracle built from tonistiigi/fsutil + moby/patternmatcher by ../shared/buildkit-oracle/build.sh).

  dockerignore_contexts.py fixtures --oracle BIN --seed S --count N -o FILE   oracle answers, committed as fixtures
  dockerignore_contexts.py live --oracle BIN --imprint BIN --seed S --count N  compare fresh contexts live

With --semantics classic the oracle is Docker's legacy builder (the docker CLI's own context code, built by
/work/legacy-oracle/build.sh from docker/cli v29.7.2 + moby/go-archive + moby/patternmatcher): its tar has no
entries for excluded directories it enters, which the daemon creates when it unpacks the context, so they are
added to its listing as directories.

A context is described compactly (entries and the ignore file's bytes, base64) so the Swift test
(`DockerIgnoreOracleTests`) can rebuild it exactly; the expectation is the oracle's listing: for every entry the
sender sends, its type, path and content digest (files) or target (symlinks), or "error" where BuildKit refuses.
"""
import argparse, base64, hashlib, json, os, random, shutil, socket, subprocess, sys, tempfile

NAMES = ["a", "b", "ab", "abc", "a.b", "x.txt", "y.py", "d", "dir", "sub", "src", "build", "node_modules",
         ".git", ".env", "__pycache__", "mod.pyc", "README.md", "a b", "é", "caf\u00e9.md", "[x]", "a*b", "q?",
         "a+b", "(p)", "x$", "dot.", "-", "Z", "1", "a1", "_x", "\u00e9t\u00e9", "\u4e2d", "k.keep"]
EXOTIC_NAMES = [b"bad\xff", b"\xe2\x82", b"\xef\xbb\xbfbom", b"a\\b", b"tab\tname", b"sp ", b" lead"]

def rand_name(r, exotic):
    if exotic and r.random() < 0.12:
        return r.choice(EXOTIC_NAMES)
    return r.choice(NAMES).encode()

def gen_context(r, exotic):
    """A list of entries: (path bytes, kind, payload)."""
    entries = {}
    def add_dir(prefix, depth):
        for _ in range(r.randint(1, 5 if depth == 0 else 3)):
            name = rand_name(r, exotic)
            p = prefix + name
            if p in entries or any(k.startswith(p + b"/") for k in entries):
                continue
            roll = r.random()
            if depth < 3 and roll < 0.35:
                entries[p] = ("d", None)
                add_dir(p + b"/", depth + 1)
            elif roll < 0.9:
                entries[p] = ("f", "c%d" % r.randint(0, 9))
            elif roll < 0.96:
                entries[p] = ("l", r.choice(["a", "../x", "sub/b", "/etc/passwd"]))
            elif exotic:
                entries[p] = ("s", None)
            else:
                entries[p] = ("f", "")
    add_dir(b"", 0)
    # make sure every parent directory exists as a directory entry
    for p in list(entries):
        parts = p.split(b"/")
        for i in range(1, len(parts)):
            q = b"/".join(parts[:i])
            if entries.get(q, ("d",))[0] != "d":
                return gen_context(r, exotic)
            entries.setdefault(q, ("d", None))
    return sorted(entries.items())

def rand_glob_piece(r, exotic):
    pieces = ["*", "**", "?", "a", "b", "d", "sub", "src", "x.txt", "*.py", "*.pyc", "[a-c]", "[^a]", "\\*", "."]
    if exotic:
        pieces += ["\\d", "\\w", "\\b", "[[:alpha:]]", "[[:foo:]]", "^", "$", "+", "(", ")", "|", "{", "}",
                   "\\Q*\\E", "\\1", "\\12", "\\pL", "\\p{Greek}", "\\py", "\\x41", "[z-a]", "[", "]", "\\",
                   "\u00e9", "\\.", "[*]", "**/", "a**", "\\C", "[\\d]", "\\z", "\\A"]
    return r.choice(pieces)

def rand_pattern(r, exotic, names):
    roll = r.random()
    if roll < 0.35 and names:
        p = r.choice(names).decode("utf-8", "surrogateescape")
    else:
        p = "/".join("".join(rand_glob_piece(r, exotic) for _ in range(r.randint(1, 2)))
                     for _ in range(r.randint(1, 3)))
    if r.random() < 0.3:
        p = "!" + p
    deco = r.random()
    if deco < 0.08: p = "./" + p
    elif deco < 0.14: p = "/" + p
    elif deco < 0.2: p = p + "/"
    elif deco < 0.25: p = " " + p + " "
    if exotic:
        d2 = r.random()
        if d2 < 0.05: p = p + " /"
        elif d2 < 0.1: p = "./ " + p
        elif d2 < 0.13: p = p + "\u2028"
        elif d2 < 0.16: p = "\u200b" + p
        elif d2 < 0.19: p = p + "\r"
        elif d2 < 0.21: p = "\ufeff" + p
        elif d2 < 0.23: p = "\x0b" + p
        elif d2 < 0.25: p = "./!" + p.lstrip("!")
        elif d2 < 0.27: p = "!/"
        elif d2 < 0.29: p = "/!" + p.lstrip("!")
    return p

def gen_ignore(r, exotic, entries):
    names = [p for p, _ in entries]
    lines = []
    for _ in range(r.randint(0, 6)):
        roll = r.random()
        if roll < 0.06: lines.append("# comment " + rand_pattern(r, exotic, names))
        elif roll < 0.1: lines.append("")
        else: lines.append(rand_pattern(r, exotic, names))
    data = "\n".join(lines).encode("utf-8", "surrogateescape")
    if exotic and r.random() < 0.1:
        data += b"\nbad\xff*"
    if exotic and r.random() < 0.01:
        data += b"\n" + b"x" * 65536
    if r.random() < 0.5:
        data += b"\n"
    return data

def describe(seed, exotic):
    r = random.Random(seed)
    entries = gen_context(r, exotic)
    ignore = gen_ignore(r, exotic, entries)
    return {"seed": seed, "exotic": exotic, "ignore": base64.b64encode(ignore).decode(),
            "entries": [{"p": base64.b64encode(p).decode(), "t": k, **({"c": v} if v is not None else {})}
                        for p, (k, v) in entries]}

def materialize(desc, root):
    for e in desc["entries"]:
        p = os.path.join(root.encode(), base64.b64decode(e["p"]))
        k = e["t"]
        if k == "d": os.makedirs(p, exist_ok=True)
        elif k == "f":
            with open(p, "wb") as f: f.write(e["c"].encode())
        elif k == "l": os.symlink(e["c"].encode(), p)
        elif k == "s":
            s = socket.socket(socket.AF_UNIX)
            try:
                s.bind(p)
            except OSError:  # path too long for a socket: a plain file instead
                open(p, "wb").close()
            finally:
                s.close()
    with open(os.path.join(root, ".dockerignore"), "wb") as f:
        f.write(base64.b64decode(desc["ignore"]))

def listing_from_oracle(oracle, root, semantics="buildkit"):
    r = subprocess.run([oracle, root], capture_output=True)
    if r.returncode != 0:
        return "error"
    out = []
    for line in r.stdout.split(b"\n"):
        if not line: continue
        if line.startswith(b"dir "): out.append(["d", base64.b64encode(line[4:]).decode()])
        elif line.startswith(b"symlink -> "):
            target, path = line[len(b"symlink -> "):].split(b"  ", 1)
            out.append(["l", base64.b64encode(path).decode(), base64.b64encode(target).decode()])
        elif line.startswith(b"other "):
            out.append(["o", base64.b64encode(line.split(b" ", 2)[2]).decode()])
        else:
            digest, path = line.split(b"  ", 1)
            out.append(["f", base64.b64encode(path).decode(), digest.decode()])
    if semantics == "classic":
        # The parents the daemon creates when it unpacks the context (mode 0755).
        dirs = {base64.b64decode(e[1]) for e in out if e[0] == "d"}
        for e in list(out):
            parts = base64.b64decode(e[1]).split(b"/")
            for i in range(1, len(parts)):
                q = b"/".join(parts[:i])
                if q not in dirs:
                    dirs.add(q)
                    out.append(["d", base64.b64encode(q).decode()])
    return sorted(out)

def listing_from_imprint(imprint, root, semantics="buildkit"):
    r = subprocess.run([imprint, "fingerprint", root, "-q", "--ignore-semantics", semantics], capture_output=True)
    if r.returncode != 0:
        return "error"
    m = json.loads(r.stdout)
    out = []
    for e in m["entries"]:
        path = base64.b64decode(e["pathBase64"]) if "pathBase64" in e else e["path"].encode()
        b = base64.b64encode(path).decode()
        t = e["type"]
        if t == "directory": out.append(["d", b])
        elif t == "file": out.append(["f", b, e["sha256"]])
        elif t == "symlink":
            target = base64.b64decode(e["targetBase64"]) if "targetBase64" in e else e["target"].encode()
            out.append(["l", b, base64.b64encode(target).decode()])
        else: out.append(["o", b])
    return sorted(out)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["fixtures", "live"])
    ap.add_argument("--oracle", required=True)
    ap.add_argument("--imprint")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("-o", "--output")
    ap.add_argument("--semantics", default="buildkit", choices=["buildkit", "classic"])
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="imprint-dockerignore-")
    disagreements = 0
    out = []
    try:
        for i in range(args.count):
            seed = args.seed + i
            desc = describe(seed, exotic=(i % 2 == 1))
            root = os.path.join(tmp, "ctx%d" % i)
            os.mkdir(root)
            materialize(desc, root)
            expect = listing_from_oracle(args.oracle, root, args.semantics)
            if args.mode == "fixtures":
                desc["expect"] = expect
                out.append(json.dumps(desc, separators=(",", ":"), sort_keys=True))
            else:
                got = listing_from_imprint(args.imprint, root, args.semantics)
                if got != expect:
                    disagreements += 1
                    print("DISAGREE seed=%d exotic=%s ignore=%r" % (seed, desc["exotic"], base64.b64decode(desc["ignore"])))
                    if isinstance(expect, list) and isinstance(got, list):
                        for x in sorted(set(map(tuple, expect)) - set(map(tuple, got))): print("  only the builder:", x)
                        for x in sorted(set(map(tuple, got)) - set(map(tuple, expect))): print("  only imprint: ", x)
                    else:
                        print("  builder:", expect if expect == "error" else "ok", " imprint:", got if got == "error" else "ok")
            shutil.rmtree(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.mode == "fixtures":
        with open(args.output, "w") as f:
            f.write("\n".join(out) + "\n")
        print("wrote %d contexts to %s" % (len(out), args.output))
    else:
        print("%d contexts, %d disagreements" % (args.count, disagreements))
        sys.exit(1 if disagreements else 0)

if __name__ == "__main__":
    main()
