#!/usr/bin/env python3
"""Random tar streams and layer stacks, and the differential test of imprint's layer reading against a container
runtime's own code: containerd's archive.Apply (v1.6) on Go's archive/tar, built as an oracle (the runtime-oracle
program: `runtime-oracle apply --chroot [--no-whiteouts] LAYER...` prints the tree the layers unpack to, or
`error: ...`).

  runtime_layers.py live --oracle BIN --imprint BIN --seed S --count N [--save FILE]
        compare fresh cases; every disagreement is minimised and printed (and appended to FILE as a fixture)
  runtime_layers.py fixtures --oracle BIN --seed S --count N -o FILE
        record the oracle's answers as fixtures (JSON lines) that `RuntimeOracleTests` replays without Go
  runtime_layers.py crafted --oracle BIN -o FILE
        the hand-written cases (one per header feature) with the oracle's answers

The generator builds headers byte by byte, so it can make what tar writers never do: header-only entries with a
size, several pax headers before one entry, empty pax paths, pax global headers with a path, GNU long names,
v7 directories, pre-1970 times, pax sparse maps (0.1 and 1.0), GNU 'S' sparse headers, unknown type flags,
whiteouts and opaque directories, hard links across layers, symlinks in parents, names with '..', truncation and
gzip members with trailing bytes. Names come from a small pool so entries collide across layers.
"""
import argparse, base64, gzip, hashlib, io, json, os, random, shutil, subprocess, sys, tempfile

BLOCK = 512
POOL = [b"za", b"zb", b"zc", b"zd"]


def octal(v, width):
    return (b"%0*o" % (width - 1, v)) + b"\0"


def b256(v, width):
    """GNU base-256 (two's complement, high bit set)."""
    n = v & ((1 << (8 * width)) - 1)
    out = bytearray(n.to_bytes(width, "big"))
    out[0] |= 0x80
    return bytes(out)


def header(name, flag, size=0, mode=0o644, link=b"", uid=0, gid=0, mtime=0, fmt="ustar", prefix=b"",
           major=0, minor=0, raw_size=None, gnu_sparse=None, real_size=0, extended=0):
    h = bytearray(BLOCK)
    h[0:100] = name[:100].ljust(100, b"\0")
    h[100:108] = octal(mode & 0o7777777, 8)
    h[108:116] = octal(uid, 8)
    h[116:124] = octal(gid, 8)
    h[124:136] = raw_size if raw_size is not None else octal(size, 12)
    h[136:148] = b256(mtime, 12) if mtime < 0 or mtime >= 8 ** 11 else octal(mtime, 12)
    h[156:157] = flag
    h[157:257] = link[:100].ljust(100, b"\0")
    if fmt == "ustar":
        h[257:263] = b"ustar\0"
        h[263:265] = b"00"
        h[345:500] = prefix[:155].ljust(155, b"\0")
    elif fmt == "gnu":
        h[257:263] = b"ustar "
        h[263:265] = b" \0"
    if fmt in ("ustar", "gnu"):
        h[265:297] = b"root".ljust(32, b"\0")
        h[297:329] = b"root".ljust(32, b"\0")
        h[329:337] = octal(major, 8)
        h[337:345] = octal(minor, 8)
    if gnu_sparse is not None:
        for i, (off, ln) in enumerate(gnu_sparse[:4]):
            h[386 + 24 * i:398 + 24 * i] = octal(off, 12)
            h[398 + 24 * i:410 + 24 * i] = octal(ln, 12)
        h[482] = extended
        h[483:495] = octal(real_size, 12)
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def pad(data):
    return data + b"\0" * ((BLOCK - len(data) % BLOCK) % BLOCK)


def pax_records(records):
    out = b""
    for k, v in records:
        body = b" " + k + b"=" + v + b"\n"
        n = len(body) + 1
        while len(str(n)) + len(body) != n:
            n = len(str(n)) + len(body)
        out += str(n).encode() + body
    return out


def pax(records, flag=b"x", name=b"PaxHeaders/x"):
    data = pax_records(records)
    return header(name, flag, size=len(data)) + pad(data)


def end():
    return b"\0" * (2 * BLOCK)


# ---------------------------------------------------------------------------------------------------------- generator

class Gen:
    def __init__(self, r):
        self.r = r
        self.files, self.dirs = [], []
        self.wild = True

    def chance(self, p):
        """True with probability p in a wild case, p/10 in a tame one (most of whose layers unpack)."""
        return self.r.random() < (p if self.wild else p / 10)

    def name(self, depth=None):
        r = self.r
        for _ in range(8):
            if self.dirs and depth is None and r.random() < (0.5 if self.wild else 0.7):
                parts = r.choice(self.dirs).split(b"/") + [r.choice(POOL + [b"ze", b"zf"])]
            else:
                parts = [r.choice(POOL) for _ in range(depth or r.choice([1, 1, 2, 2, 3]))]
            # A tame case avoids names below its own files (the runtime refuses those: parent not a directory).
            if self.wild or not any(b"/".join(parts[:i]) in self.files for i in range(1, len(parts))):
                break
        roll = r.random()
        if roll < 0.10:
            parts[-1] = b".wh." + r.choice(POOL)
        elif roll < 0.14:
            parts[-1] = b".wh..wh..opq"
        elif self.chance(0.01):
            parts[-1] = r.choice([b".wh.", b".wh..", b".wh..."])
        n = b"/".join(parts)
        roll = r.random()
        if roll < 0.05:
            n = b"./" + n
        elif roll < 0.08:
            n = b"/" + n
        elif roll < 0.10:
            n = b"../" + n
        elif roll < 0.12:
            n = n + b"/../" + r.choice(POOL)
        elif roll < 0.13:
            n = b"zz/" + n
        elif roll < 0.14:
            n = r.choice([b".", b"./", b"/", b".."])
        return n

    def target(self):
        r = self.r
        roll = r.random()
        if roll < 0.45:
            return r.choice(POOL)
        if roll < 0.60:
            return b"/".join(r.choice(POOL) for _ in range(2))
        if roll < 0.72:
            return b"../" + r.choice(POOL)
        if roll < 0.80:
            return b"/" + r.choice(POOL)
        if roll < 0.85:
            return b"../../" + b"/".join(r.choice(POOL) for _ in range(2))
        if roll < 0.90:
            return b"zq"
        if roll < 0.94:
            return r.choice([b".", b"..", b"./"])
        return r.choice(POOL) + b"/../" + r.choice(POOL)

    def mode(self, kind):
        r = self.r
        if r.random() < 0.7:
            return 0o755 if kind in (b"5",) else 0o644
        return r.choice([0o600, 0o755, 0o4755, 0o2755, 0o1777, 0o0, 0o7777, 0o444, 0o100644, 0o40755])

    def mtime(self):
        r = self.r
        roll = r.random()
        if roll < 0.8:
            return r.randint(0, 2_000_000_000)
        if roll < 0.9:
            return -r.randint(1, 2_000_000_000)
        return r.randint(8 ** 11, 2 ** 40)

    def content(self):
        r = self.r
        return r.choice([b"", b"a", b"hello\n", bytes(r.getrandbits(8) for _ in range(r.randint(1, 700))),
                         b"x" * 512, b"y" * 1024])

    def entry(self):
        """One entry (bytes), maybe wrapped in extension headers."""
        r = self.r
        name = self.name()
        roll = r.random()
        mt = self.mtime()
        if roll < 0.40:
            self.files.append(name)
            data = self.content()
            e = header(name, r.choice([b"0", b"0", b"0", b"\0"]), size=len(data), mode=self.mode(b"0"), mtime=mt) + pad(data)
        elif roll < 0.58:
            n = name + (b"/" if r.random() < 0.5 else b"")
            flag = b"5"
            if r.random() < 0.1:
                flag = b"\0"
                n = name + b"/"
            e = header(n, flag, mode=self.mode(b"5"), mtime=mt)
            self.dirs.append(name.strip(b"/"))
        elif roll < 0.70:
            e = header(name, b"2", link=self.target(), mode=0o777, mtime=mt)
        elif roll < 0.80 and (self.files or self.wild):
            target = r.choice(self.files) if self.files and not self.chance(0.2) else self.name()
            e = header(name, b"1", link=target, mtime=mt, mode=self.mode(b"0"))
        elif roll < 0.83:
            e = header(name, b"6", mode=self.mode(b"6"))
        elif roll < 0.85:
            e = header(name, r.choice([b"3", b"4"]), major=r.randint(0, 9), minor=r.randint(0, 9), mode=self.mode(b"3"))
        elif roll < 0.87 and self.chance(0.8):
            data = self.content()
            e = header(name, r.choice([b"Z", b"7", b"A", b"z", b"N", b"9"]), size=len(data)) + pad(data)
        elif roll < 0.89:
            recs = [(b"comment", b"x")]
            if r.random() < 0.6:
                recs.append((b"path", name))
            e = pax(recs, flag=b"g", name=r.choice([b"pax_global_header", name]))
        elif roll < 0.92:
            e = self.sparse(name)
        else:
            # Header-only entry with a size: what follows is read as the next header.
            hidden_name = self.name()
            hidden = header(hidden_name, b"0", size=0, mode=0o644)
            kind = r.choice([b"2", b"5", b"1", b"6"])
            link = self.target() if kind == b"2" else (self.name() if kind == b"1" else b"")
            e = header(name, kind, size=BLOCK, link=link) + hidden
        return self.wrap(e, name)

    def sparse(self, name):
        r = self.r
        size = r.randint(0, 4096)
        frags = []
        pos = 0
        while pos < size and len(frags) < 4:
            off = r.randint(pos, size)
            ln = r.randint(0, size - off)
            frags.append((off, ln))
            pos = off + ln
        data = b"".join(bytes([65 + i]) * ln for i, (off, ln) in enumerate(frags))
        kind = r.choice(["0.1", "1.0", "S", "bad"] if self.wild else ["0.1", "1.0"])
        if kind == "S":
            return header(name, b"S", size=len(data), fmt="gnu", gnu_sparse=frags, real_size=size) + pad(data)
        if kind == "1.0":
            mp = (b"%d\n" % len(frags)) + b"".join(b"%d\n%d\n" % f for f in frags)
            body = pad(mp) + data
            recs = [(b"GNU.sparse.major", b"1"), (b"GNU.sparse.minor", b"0"), (b"GNU.sparse.name", name),
                    (b"GNU.sparse.realsize", b"%d" % size)]
            return pax(recs) + header(b"GNUSparseFile.0/" + name[-60:], b"0", size=len(body)) + pad(body)
        recs = [(b"GNU.sparse.major", b"0"), (b"GNU.sparse.minor", b"1"), (b"GNU.sparse.name", name),
                (b"GNU.sparse.size", b"%d" % size), (b"GNU.sparse.numblocks", b"%d" % len(frags)),
                (b"GNU.sparse.map", b",".join(b"%d,%d" % f for f in frags))]
        stored = data
        if kind == "bad":
            stored = data + b"extra"
        return pax(recs) + header(b"GNUSparseFile.0/" + name[-60:], b"0", size=len(stored)) + pad(stored)

    def wrap(self, e, name):
        """Optionally put extension headers before the entry."""
        r = self.r
        roll = r.random()
        if roll < 0.08 and not self.wild:
            return pax([(b"path", name)]) + pax([(b"path", name)]) + e
        if roll < 0.08:
            return pax([(b"path", self.name())]) + pax([(b"path", self.name())]) + e
        if roll < 0.12:
            return pax([(b"path", b"")]) + e
        if roll < 0.16:
            long = name
            return header(b"././@LongLink", b"L", size=len(long) + 1) + pad(long + b"\0") + e
        if roll < 0.19:
            return pax([(b"mtime", b"-%d.5" % r.randint(1, 10 ** 9)), (b"uid", b"%d" % r.randint(0, 70000))]) + e
        if roll < 0.20 and self.wild:
            return pax([(b"path", self.name()), (b"linkpath", self.target())]) + e
        return e

    def layer(self):
        r = self.r
        body = b"".join(self.entry() for _ in range(r.randint(1, 10)))
        roll = r.random()
        if roll < 0.85 or not self.wild:
            return body + end()
        if roll < 0.90:
            return body  # no end marker
        if roll < 0.93:
            return body + b"\0" * BLOCK + b"trailing garbage"
        if roll < 0.96:
            return body + b"\0" * BLOCK + b"\x01" * BLOCK  # zero block then a non-zero block
        cut = r.randint(0, max(0, len(body) - 1))
        return body[:cut]

    def case(self):
        r = self.r
        self.files, self.dirs = [], []
        self.wild = r.random() < 0.25
        stream = r.random() < 0.2
        layers = [self.layer() for _ in range(1 if stream else r.randint(1, 3))]
        gz = []
        for i, l in enumerate(layers):
            roll = r.random()
            if roll < 0.12:
                layers[i] = gzip.compress(l, mtime=0)
                gz.append("gzip")
            elif roll < 0.14:
                layers[i] = gzip.compress(l[: len(l) // 2], mtime=0) + gzip.compress(l[len(l) // 2:], mtime=0)
                gz.append("gzip-members")
            elif roll < 0.16:
                layers[i] = gzip.compress(l, mtime=0) + r.choice([b"\0" * 8, b"garbage!"])
                gz.append("gzip-trailing")
        return {"whiteouts": not stream, "layers": layers}


# ------------------------------------------------------------------------------------------------------------- runs

def go_unquote(s):
    """Decodes strconv.Quote output to bytes."""
    assert s[0] == '"' and s[-1] == '"', s
    s = s[1:-1]
    out = bytearray()
    i = 0
    simple = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, '"': 34, "'": 39}
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        k = s[i + 1]
        if k in simple:
            out.append(simple[k]); i += 2
        elif k == "x":
            out.append(int(s[i + 2:i + 4], 16)); i += 4
        elif k == "u":
            out += chr(int(s[i + 2:i + 6], 16)).encode(); i += 6
        elif k == "U":
            out += chr(int(s[i + 2:i + 10], 16)).encode(); i += 10
        else:
            out += chr(int(s[i + 1:i + 4], 8)).encode(); i += 4
    return bytes(out)


def oracle_answer(oracle, case, work):
    paths = []
    for i, l in enumerate(case["layers"]):
        p = os.path.join(work, "layer%d" % i)
        with open(p, "wb") as f:
            f.write(l)
        paths.append(p)
    args = [oracle, "apply", "--chroot"] + ([] if case["whiteouts"] else ["--no-whiteouts"]) + paths
    p = subprocess.run(args, capture_output=True)
    out = p.stdout.decode("utf-8", "surrogateescape")
    if p.returncode == 2 or out.startswith("error:"):
        return {"error": out.strip()}
    if p.returncode != 0:
        raise SystemExit("oracle failed: %s %s" % (p.returncode, p.stderr))
    entries = []
    for line in out.splitlines():
        f = line.split("\t")
        typ, mode, path = f[0], f[1], go_unquote(f[2])
        if typ == "file":
            detail = f[3].split(" ")[0]
        elif typ == "symlink":
            detail = base64.b64encode(go_unquote(f[3])).decode()
        elif typ in ("char-device", "block-device"):
            detail = f[3]
        else:
            detail = ""
        entries.append([typ, mode, base64.b64encode(path).decode(), detail])
    return {"entries": sorted(entries, key=lambda e: base64.b64decode(e[2]))}


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def oci_layout(case, work):
    d = os.path.join(work, "oci")
    os.makedirs(os.path.join(d, "blobs", "sha256"))
    def blob(data):
        h = sha256(data)
        with open(os.path.join(d, "blobs", "sha256", h), "wb") as f:
            f.write(data)
        return "sha256:" + h, len(data)
    layers, diff_ids = [], []
    for l in case["layers"]:
        dg, n = blob(l)
        gz = l[:2] == b"\x1f\x8b"
        raw = l
        if gz:
            try:
                raw = gzip.decompress(l)
            except Exception:
                raw = l
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gz else ""), "digest": dg, "size": n})
        diff_ids.append("sha256:" + sha256(raw))
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids},
                         "config": {}}).encode()
    cd, cn = blob(config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
                           "layers": layers}).encode()
    md, mn = blob(manifest)
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                       "digest": md, "size": mn}]}, f)
    with open(os.path.join(d, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    return d


def imprint_answer(imprint, case, work):
    if case["whiteouts"]:
        src = oci_layout(case, work)
        p = subprocess.run([imprint, "inspect", src, "--files", "--format", "json", "-q"], capture_output=True)
    else:
        p = subprocess.run([imprint, "inspect", "-", "--files", "--format", "json", "-q"], input=case["layers"][0],
                           capture_output=True)
    if p.returncode == 2:
        return {"error": p.stderr.decode("utf-8", "replace").strip()}
    if p.returncode != 0:
        raise SystemExit("imprint failed (%d): %s" % (p.returncode, p.stderr.decode()))
    doc = json.loads(p.stdout)
    entries = []
    for e in doc["files"]:
        path = base64.b64decode(e["pathBase64"]) if "pathBase64" in e else e["path"].encode()
        typ = e["type"]
        if typ == "file":
            detail = e["sha256"]
        elif typ == "symlink":
            t = base64.b64decode(e["targetBase64"]) if "targetBase64" in e else e["target"].encode()
            detail = base64.b64encode(t).decode()
        elif typ in ("char-device", "block-device"):
            detail = e["device"]
        else:
            detail = ""
        entries.append([typ, e["mode"], base64.b64encode(path).decode(), detail])
    return {"entries": sorted(entries, key=lambda e: base64.b64decode(e[2]))}


def agree(a, b):
    if "error" in a or "error" in b:
        return ("error" in a) == ("error" in b)
    return a["entries"] == b["entries"]


def describe(a):
    if "error" in a:
        return "  " + a["error"]
    return "\n".join("  %s %s %r %s" % (e[0], e[1], base64.b64decode(e[2]), e[3][:16]) for e in a["entries"])


def run_case(oracle, imprint, case):
    work = tempfile.mkdtemp(prefix="rtl-")
    try:
        o = oracle_answer(oracle, case, work)
        i = imprint_answer(imprint, case, work)
        return o, i
    finally:
        shutil.rmtree(work, ignore_errors=True)


def split_entries(layer):
    """The layer's blocks grouped into entries (header plus data), for minimisation: best effort."""
    out, pos = [], 0
    while pos + BLOCK <= len(layer):
        h = layer[pos:pos + BLOCK]
        if h == b"\0" * BLOCK:
            break
        try:
            size = int(h[124:136].strip(b" \0") or b"0", 8)
        except ValueError:
            size = 0
        flag = h[156:157]
        n = BLOCK + (0 if flag in (b"1", b"2", b"3", b"4", b"5", b"6") else (size + BLOCK - 1) // BLOCK * BLOCK)
        out.append(layer[pos:pos + n])
        pos += n
    return out, layer[pos:]


def minimise(oracle, imprint, case):
    """Drops layers and entries while the two still disagree."""
    best = case
    changed = True
    while changed:
        changed = False
        for li in range(len(best["layers"])):
            if len(best["layers"]) > 1:
                c = dict(best, layers=best["layers"][:li] + best["layers"][li + 1:])
                if not agree(*run_case(oracle, imprint, c)):
                    best, changed = c, True
                    break
            if best["layers"][li][:2] == b"\x1f\x8b":
                continue
            parts, rest = split_entries(best["layers"][li])
            for ei in range(len(parts)):
                layer = b"".join(parts[:ei] + parts[ei + 1:]) + rest
                c = dict(best, layers=best["layers"][:li] + [layer] + best["layers"][li + 1:])
                if not agree(*run_case(oracle, imprint, c)):
                    best, changed = c, True
                    break
            if changed:
                break
    return best


def encode_case(case, answer, name):
    if "error" in answer:
        answer = {"error": answer["error"][:300]}
    return json.dumps({"name": name, "whiteouts": case["whiteouts"],
                       "layers": [base64.b64encode(gzip.compress(l, mtime=0)).decode() for l in case["layers"]],
                       "expect": answer}, sort_keys=True)


def cmd_live(a):
    r = random.Random(a.seed)
    gen = Gen(r)
    bad = 0
    errors = 0
    for n in range(a.count):
        case = gen.case()
        o, i = run_case(a.oracle, a.imprint, case)
        errors += "error" in o
        if not agree(o, i):
            bad += 1
            small = minimise(a.oracle, a.imprint, case)
            so, si = run_case(a.oracle, a.imprint, small)
            print("DISAGREEMENT case %d (seed %d), minimised to %d layer(s):" % (n, a.seed, len(small["layers"])))
            for l in small["layers"]:
                print("  layer %s" % base64.b64encode(l).decode()[:2000])
            print(" runtime:\n%s\n imprint:\n%s" % (describe(so), describe(si)))
            if a.save:
                with open(a.save, "a") as f:
                    f.write(encode_case(small, so, "live-seed%d-case%d" % (a.seed, n)) + "\n")
            if bad >= a.max_failures:
                break
        if (n + 1) % 250 == 0:
            print("%d cases, %d disagreements, %d refused by the runtime" % (n + 1, bad, errors), file=sys.stderr)
    print("runtime-live: %d cases (seed %d): %d disagreements; the runtime refused %d" % (n + 1, a.seed, bad, errors))
    return 1 if bad else 0


def file(name, data=b"", mode=0o644, flag=b"0", **kw):
    return header(name, flag, size=len(data), mode=mode, **kw) + pad(data)


def crafted_cases():
    """One case per header feature and apply rule the runtime decides: (name, whiteouts, [layers])."""
    hidden = file(b"app/json.py", b"print('hidden')\n")
    c = []
    for flag in b"89EINZaz7":
        c.append(("unknown-type-%c" % flag, True, [file(b"app/app.py", b"v1") + end(),
                                                   file(b"app/app.py", b"v2", flag=bytes([flag])) + end()]))
    for flag, link in ((b"1", b"app/app.py"), (b"2", b"target"), (b"5", b""), (b"6", b""), (b"3", b""), (b"4", b"")):
        c.append(("header-only-%c-with-size" % flag[0], True,
                  [file(b"app/app.py", b"v1") + header(b"app/x", flag, size=len(hidden), link=link) + hidden + end()]))
    c.append(("header-only-size-not-a-header", True, [header(b"app/l", b"2", size=5, link=b"t") + pad(b"abcde") + end()]))
    c.append(("pax-several-x-last-wins", True, [pax([(b"path", b"first.py")]) + pax([(b"path", b"second.py")]) +
                                                 file(b"ustar.py", b"x") + end()]))
    c.append(("pax-x-records-replace-not-merge", True, [pax([(b"path", b"first.py"), (b"mtime", b"1")]) +
                                                         pax([(b"uid", b"5")]) + file(b"ustar.py", b"x") + end()]))
    c.append(("pax-empty-path-keeps-name", True, [pax([(b"path", b"")]) + file(b"kept.py", b"x") + end()]))
    c.append(("pax-global-path-renames-nothing", True, [file(b"app/app.py", b"v1") + pax([(b"path", b"elsewhere/")], flag=b"g") +
                                                          file(b"app/b.py", b"b") + end()]))
    c.append(("pax-global-name-removes", True, [file(b"app/app.py", b"v1") + end(),
                                                pax([(b"path", b"app/app.py")], flag=b"g", name=b"pax_global_header") + end()]))
    c.append(("pax-nul-padding-refused", True, [header(b"PaxHeaders/x", b"x", size=20) + pad(b"11 path=a.py\n\0\0\0\0\0\0\0") +
                                                file(b"b.py", b"x") + end()]))
    c.append(("gnu-longname-over-pax", True, [pax([(b"path", b"pax.py")]) + header(b"././@LongLink", b"L", size=8) + pad(b"gnu.py\0\0") +
                                              file(b"ustar.py", b"x") + end()]))
    deep = b"/".join([b"d"] * 100000) + b"/f"
    c.append(("path-100000-levels", True, [pax([(b"path", deep)]) + file(b"x", b"x") + end()]))
    c.append(("path-200-levels", True, [pax([(b"path", b"/".join([b"d"] * 200))]) + file(b"x", b"x") + end()]))
    c.append(("name-256-bytes", True, [pax([(b"path", b"a/" + b"n" * 256)]) + file(b"x", b"x") + end()]))
    c.append(("name-255-bytes", True, [pax([(b"path", b"a/" + b"n" * 255)]) + file(b"x", b"x") + end()]))
    c.append(("mtime-before-1970", True, [file(b"old.py", b"x", mtime=-86400 * 365 * 30) + end()]))
    c.append(("mtime-pax-negative-fraction", True, [pax([(b"mtime", b"-1234567.75")]) + file(b"old.py", b"x") + end()]))
    c.append(("mtime-far-future", True, [file(b"new.py", b"x", mtime=2 ** 40) + end()]))
    c.append(("v7-directory-nul-type", True, [header(b"olddir/", b"\0", fmt="v7") + file(b"olddir/f", b"x", fmt="v7") + end()]))
    c.append(("ustar-0-type-trailing-slash-is-file", True, [header(b"notdir/", b"0", size=1) + pad(b"x") + end()]))
    frags = [(0, 3), (1000, 2), (4000, 5)]
    data = b"AAABBCCCCC"
    c.append(("sparse-gnu-S", True, [header(b"sparse", b"S", size=len(data), fmt="gnu", gnu_sparse=frags, real_size=4096) + pad(data) + end()]))
    recs = [(b"GNU.sparse.major", b"0"), (b"GNU.sparse.minor", b"1"), (b"GNU.sparse.name", b"sparse01"),
            (b"GNU.sparse.size", b"4096"), (b"GNU.sparse.numblocks", b"3"), (b"GNU.sparse.map", b"0,3,1000,2,4000,5")]
    c.append(("sparse-pax-0.1", True, [pax(recs) + file(b"GNUSparseFile.0/sparse01", data) + end()]))
    recs00 = [(b"GNU.sparse.size", b"4096"), (b"GNU.sparse.numblocks", b"3"), (b"GNU.sparse.offset", b"0"), (b"GNU.sparse.numbytes", b"3"),
              (b"GNU.sparse.offset", b"1000"), (b"GNU.sparse.numbytes", b"2"), (b"GNU.sparse.offset", b"4000"), (b"GNU.sparse.numbytes", b"5")]
    c.append(("sparse-pax-0.0", True, [pax(recs00) + file(b"sparse00", data) + end()]))
    mp = pad(b"3\n0\n3\n1000\n2\n4000\n5\n")
    recs10 = [(b"GNU.sparse.major", b"1"), (b"GNU.sparse.minor", b"0"), (b"GNU.sparse.name", b"sparse10"), (b"GNU.sparse.realsize", b"4096")]
    c.append(("sparse-pax-1.0", True, [pax(recs10) + file(b"GNUSparseFile.0/sparse10", mp + data) + end()]))
    c.append(("sparse-pax-unreferenced-data", True, [pax(recs) + file(b"GNUSparseFile.0/sparse01", data + b"!") + end()]))
    c.append(("sparse-pax-missing-data", True, [pax(recs) + file(b"GNUSparseFile.0/sparse01", data[:-1]) + end()]))
    c.append(("sparse-whiteout-not-read", True, [pax(recs[:2] + [(b"GNU.sparse.name", b".wh.x")] + recs[3:]) +
                                                 file(b"GNUSparseFile.0/x", data + b"!") + end()]))
    c.append(("end-one-zero-block", True, [file(b"f", b"x") + b"\0" * 512]))
    c.append(("end-cut-in-second-zero-block", True, [file(b"f", b"x") + b"\0" * 700]))
    c.append(("end-zero-block-then-header", True, [file(b"f", b"x") + b"\0" * 512 + file(b"g", b"y") + end()]))
    c.append(("end-padding-cut", True, [(file(b"f", b"x") )[:513]]))
    c.append(("end-data-cut", True, [file(b"f", b"x" * 100)[:600]]))
    c.append(("gzip-trailing-zeros", True, [gzip.compress(file(b"f", b"x") + end(), mtime=0) + b"\0" * 16]))
    c.append(("gzip-two-members", True, [gzip.compress(file(b"f", b"x"), mtime=0) + gzip.compress(end(), mtime=0)]))
    c.append(("gzip-cut", True, [gzip.compress(file(b"f", b"x") + end(), mtime=0)[:-4]]))
    c.append(("write-through-symlink-parent", True, [header(b"app", b"2", link=b"srv/app") + file(b"app/app.py", b"v2") + end()]))
    c.append(("write-through-absolute-symlink", True, [header(b"app", b"2", link=b"/srv/app") + file(b"app/app.py", b"v2") + end()]))
    c.append(("symlink-parent-escapes", True, [header(b"up", b"2", link=b"../../../srv") + file(b"up/app.py", b"v2") + end()]))
    c.append(("file-over-directory", True, [header(b"app/", b"5") + file(b"app/a.py", b"a") + end(), file(b"app", b"now a file") + end()]))
    c.append(("directory-over-file", True, [file(b"app", b"a file") + end(), header(b"app/", b"5", mode=0o700) + file(b"app/a.py", b"a") + end()]))
    c.append(("directory-merge-mode", True, [header(b"app/", b"5") + file(b"app/a.py", b"a") + end(), header(b"app/", b"5", mode=0o700) + end()]))
    c.append(("parent-is-a-file", True, [file(b"app", b"x") + end(), file(b"app/a.py", b"a") + end()]))
    c.append(("hardlink-across-layers-mode", True, [file(b"bin/tool", b"t", mode=0o644) + end(), header(b"bin/tool2", b"1", link=b"bin/tool", mode=0o4755) + end()]))
    c.append(("hardlink-to-symlink", True, [header(b"s", b"2", link=b"t") + header(b"h", b"1", link=b"s") + end()]))
    c.append(("hardlink-to-missing", True, [header(b"h", b"1", link=b"nope") + end()]))
    c.append(("hardlink-to-directory", True, [header(b"d/", b"5") + header(b"h", b"1", link=b"d") + end()]))
    c.append(("hardlink-then-overwrite", True, [file(b"f", b"one") + header(b"h", b"1", link=b"f") + file(b"f", b"two") + end()]))
    c.append(("whiteout-file", True, [file(b"app/a.py", b"a") + file(b"app/b.py", b"b") + end(), file(b"app/.wh.a.py") + end()]))
    c.append(("whiteout-directory", True, [file(b"app/lib/a.py", b"a") + end(), file(b"app/.wh.lib") + end()]))
    c.append(("whiteout-creates-parent", True, [file(b"x", b"x") + end(), file(b"new/dir/.wh.gone") + end()]))
    c.append(("opaque-marker-before-entries", True, [file(b"app/old.py", b"o") + end(), file(b"app/.wh..wh..opq") + file(b"app/new.py", b"n") + end()]))
    c.append(("opaque-marker-after-entries", True, [file(b"app/old.py", b"o") + end(), file(b"app/new.py", b"n") + file(b"app/.wh..wh..opq") + end()]))
    c.append(("opaque-removes-implicit-parent", True, [file(b"app/old.py", b"o") + end(), file(b"app/sub/new.py", b"n") + file(b"app/.wh..wh..opq") + end()]))
    c.append(("whiteout-invalid-name", True, [file(b"app/.wh..") + end()]))
    c.append(("whiteout-in-stream-is-a-file", False, [file(b"app/.wh.a.py", b"x") + file(b"app/.wh..wh..opq") + end()]))
    c.append(("directory-entry-later-removed", True, [header(b"d/", b"5") + file(b".wh.d") + end()]))
    c.append(("symlink-loop-parent", True, [header(b"a", b"2", link=b"b") + header(b"b", b"2", link=b"a") + file(b"a/x", b"x") + end()]))
    c.append(("symlink-empty-target", True, [header(b"s", b"2", link=b"") + end()]))
    c.append(("root-entries-skipped", True, [header(b"./", b"5", mode=0o700) + header(b".", b"5", mode=0o711) + file(b"./f", b"x") + end()]))
    c.append(("dotdot-names-clamped", True, [file(b"../../escape", b"e") + file(b"a/../../b", b"b") + file(b"/abs", b"a") + end()]))
    c.append(("stream-hardlink-and-symlink", False, [file(b"app/a.py", b"a") + header(b"app/h.py", b"1", link=b"app/a.py") +
                                                       header(b"app/s.py", b"2", link=b"a.py") + end()]))
    return c


def cmd_crafted(a):
    with open(a.output, "w") as f:
        for name, whiteouts, layers in crafted_cases():
            case = {"whiteouts": whiteouts, "layers": layers}
            work = tempfile.mkdtemp(prefix="rtl-")
            try:
                o = oracle_answer(a.oracle, case, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            if a.imprint:
                work = tempfile.mkdtemp(prefix="rtl-")
                try:
                    i = imprint_answer(a.imprint, case, work)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                print("%-40s runtime: %-8s imprint: %-8s %s" % (name, "refuses" if "error" in o else "unpacks",
                      "refuses" if "error" in i else "unpacks", "" if agree(o, i) else "DISAGREE"), file=sys.stderr)
            f.write(encode_case(case, o, "crafted-" + name) + "\n")
    return 0


def cmd_fixtures(a):
    r = random.Random(a.seed)
    gen = Gen(r)
    with open(a.output, "w") as f:
        for n in range(a.count):
            case = gen.case()
            work = tempfile.mkdtemp(prefix="rtl-")
            try:
                o = oracle_answer(a.oracle, case, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            f.write(encode_case(case, o, "seed%d-case%d" % (a.seed, n)) + "\n")
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    l = sub.add_parser("live")
    l.add_argument("--oracle", required=True)
    l.add_argument("--imprint", required=True)
    l.add_argument("--seed", type=int, required=True)
    l.add_argument("--count", type=int, default=1000)
    l.add_argument("--save")
    l.add_argument("--max-failures", type=int, default=5)
    fx = sub.add_parser("fixtures")
    fx.add_argument("--oracle", required=True)
    fx.add_argument("--seed", type=int, required=True)
    fx.add_argument("--count", type=int, default=300)
    fx.add_argument("-o", "--output", required=True)
    cr = sub.add_parser("crafted")
    cr.add_argument("--oracle", required=True)
    cr.add_argument("--imprint")
    cr.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    sys.exit({"live": cmd_live, "fixtures": cmd_fixtures, "crafted": cmd_crafted}[a.cmd](a))


if __name__ == "__main__":
    main()
