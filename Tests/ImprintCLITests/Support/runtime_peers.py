#!/usr/bin/env python3
"""Unpacks the hand-written image cases of ci/fuzzing/runtime_layers.py with two more real runtimes on this
machine — umoci (`umoci unpack`) and podman (skopeo into a fresh containers-storage, `podman create`,
`podman export`) — and with imprint (`inspect --files`), and prints one JSON object: for each case and reader the
tree (type, mode, path base64, sha256 / target base64 / device numbers) or the refusal.

  runtime_peers.py IMPRINT_BINARY [CASE ...]
"""
import base64, hashlib, json, os, shutil, stat, subprocess, sys, tarfile, tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "ci", "fuzzing"))
import runtime_layers as rl  # noqa: E402

CONF = '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n'


def b64(b):
    return base64.b64encode(b).decode()


def tagged_layout(case, work):
    d = rl.oci_layout(case, work)
    with open(os.path.join(d, "index.json")) as f:
        index = json.load(f)
    index["manifests"][0]["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump(index, f)
    return d


def walk(root):
    out = []
    for dirpath, dirs, files in os.walk(root.encode()):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root.encode())
            st = os.lstat(p)
            perm = "%04o" % (st.st_mode & 0o7777)
            fmt = stat.S_IFMT(st.st_mode)
            if fmt == stat.S_IFREG:
                with open(p, "rb") as f:
                    out.append(["file", perm, b64(rel), hashlib.sha256(f.read()).hexdigest()])
            elif fmt == stat.S_IFDIR:
                out.append(["directory", perm, b64(rel), ""])
            elif fmt == stat.S_IFLNK:
                out.append(["symlink", perm, b64(rel), b64(os.readlink(p))])
            elif fmt == stat.S_IFIFO:
                out.append(["fifo", perm, b64(rel), ""])
            elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
                out.append(["char-device" if fmt == stat.S_IFCHR else "block-device", perm, b64(rel),
                            "%d,%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))])
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(dirpath, d))]
    return sorted(out, key=lambda e: base64.b64decode(e[2]))


def last_line(b):
    lines = [l for l in b.decode("utf-8", "replace").strip().splitlines() if l.strip()]
    return lines[-1] if lines else "failed"


def umoci(case, work):
    d = tagged_layout(case, work)
    p = subprocess.run(["umoci", "unpack", "--image", d + ":latest", work + "/bundle"], capture_output=True)
    if p.returncode != 0:
        return {"error": last_line(p.stderr)}
    return {"entries": walk(work + "/bundle/rootfs")}


def exported(path):
    out, content = [], {}
    with tarfile.open(path, "r|", encoding="utf-8", errors="surrogateescape") as tf:
        for m in tf:
            name = m.name.encode("utf-8", "surrogateescape").strip(b"/")
            while name.startswith(b"./"):
                name = name[2:]
            if name in (b"", b"."):
                continue
            perm = "%04o" % (m.mode & 0o7777)
            if m.isreg():
                content[name] = hashlib.sha256(tf.extractfile(m).read()).hexdigest()
                out.append(["file", perm, b64(name), content[name]])
            elif m.islnk():
                out.append(["file", perm, b64(name), content.get(m.linkname.encode("utf-8", "surrogateescape").strip(b"/"), "?")])
            elif m.isdir():
                out.append(["directory", perm, b64(name), ""])
            elif m.issym():
                out.append(["symlink", perm, b64(name), b64(m.linkname.encode("utf-8", "surrogateescape"))])
            elif m.isfifo():
                out.append(["fifo", perm, b64(name), ""])
            elif m.ischr() or m.isblk():
                out.append(["char-device" if m.ischr() else "block-device", perm, b64(name), "%d,%d" % (m.devmajor, m.devminor)])
    return sorted(out, key=lambda e: base64.b64decode(e[2]))


def podman(case, work, n):
    d = tagged_layout(case, work)
    t = tempfile.mkdtemp(prefix="pd-", dir="/tmp")  # podman refuses a run root longer than 50 characters
    with open(t + "/containers.conf", "w") as f:
        f.write(CONF)
    env = dict(os.environ, CONTAINERS_CONF=t + "/containers.conf")
    # Its own libpod tmpdir: /run/libpod is shared by every podman, and another engine's reset removes it.
    P = ["podman", "--root", t + "/root", "--runroot", t + "/run", "--tmpdir", t + "/libpod", "--storage-driver", "vfs"]
    ref = "localhost/probe:%d" % n
    try:
        p = subprocess.run(["skopeo", "copy", "-q", "oci:%s:latest" % d, "containers-storage:[vfs@%s/root+%s/run]%s" % (t, t, ref)],
                           capture_output=True, env=env)
        if p.returncode != 0:
            return {"error": last_line(p.stderr)}
        p = subprocess.run(P + ["create", ref, "/bin/true"], capture_output=True, env=env)
        if p.returncode != 0:
            return {"error": last_line(p.stderr)}
        cid = p.stdout.decode().split()[-1]
        p = subprocess.run(P + ["export", "-o", work + "/export.tar", cid], capture_output=True, env=env)
        if p.returncode != 0:
            return {"error": last_line(p.stderr)}
        return {"entries": exported(work + "/export.tar")}
    finally:
        subprocess.run(P + ["system", "reset", "-f"], capture_output=True, env=env)
        shutil.rmtree(t, ignore_errors=True)


def main():
    imprint, only = sys.argv[1], set(sys.argv[2:])
    results = {}
    for n, (name, whiteouts, layers) in enumerate(rl.crafted_cases()):
        if not whiteouts or (only and name not in only):
            continue
        case = {"whiteouts": True, "layers": layers}
        work = tempfile.mkdtemp(prefix="peers-")
        try:
            os.makedirs(work + "/i"); os.makedirs(work + "/u"); os.makedirs(work + "/p")
            results[name] = {"imprint": rl.imprint_answer(imprint, case, work + "/i"), "umoci": umoci(case, work + "/u"),
                             "podman": podman(case, work + "/p", n)}
        finally:
            shutil.rmtree(work, ignore_errors=True)
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
