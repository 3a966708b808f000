/// The Python probe `imprint probe python` writes: a standard-library module the application imports first, which
/// records which bytes CPython loaded for each of the application's modules (`RuntimeEvidence` reads what it serves).
package enum PythonProbe {
    /// The file name the probe expects to be imported under.
    package static let fileName = "imprint_probe.py"
    package static let identifier = "imprint-probe/1"

    package static let source = #"""
"""imprint probe: which bytes this Python process actually loaded, for `imprint verify URL` and `imprint wait`.

Import it first, before the application's own modules (standard library only; written by `imprint probe python`):

    import imprint_probe                    # first line of the entry point
    ...
    @app.get("/imprint")                    # any framework: serve imprint_probe.evidence() as JSON
    def imprint(): return imprint_probe.evidence()

For every module loaded from under the application root (the directory this file is in, or IMPRINT_APP_ROOT) it
records, at import time, the bytes the code came from: the source, or the pyc CPython used instead (then also
whether that bytecode is the compilation of the source beside it), or a sourceless pyc. It also records the
manifest digest as read at process start (IMPRINT_MANIFEST, else ROOT/.imprint/manifest.json, else
/.imprint/manifest.json) and when the process started. Nothing is sent anywhere; evidence() only returns a dict.

Every process also keeps its own evidence in IMPRINT_EVIDENCE_DIR (default /tmp/imprint-evidence), one file per
process (PID-STARTTICKS.json, rewritten shortly after each import and in every forked worker), so that
`imprint verify docker:NAME` judges every process, and evidence() also lists every live process of the same
application (same root) in the container ("processes"): a prefork server's answer covers all its workers, whichever worker answers. "instance"
identifies the process across hosts, containers and host networking (boot id, mount namespace, pid, start time).
"""
import hashlib
import json
import os
import socket
import sys
import threading
import time
import types

PROBE = "imprint-probe/1"
ROOT = os.path.realpath(os.environ.get("IMPRINT_APP_ROOT") or os.path.dirname(os.path.abspath(__file__)))
EVIDENCE_DIR = os.environ.get("IMPRINT_EVIDENCE_DIR") or "/tmp/imprint-evidence"

_lock = threading.Lock()
_reads = {}        # path -> sha256 hex of the bytes last read through a loader
_compiled = {}     # source path -> sha256 hex of the source bytes compiled to code
_from_pyc = {}     # source path -> (pyc path, code object) when the code came from a pyc
_modules = {}      # module name -> record


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def _under_root(path):
    try:
        p = os.path.realpath(path)
    except (TypeError, ValueError):
        return False
    return p == ROOT or p.startswith(ROOT + os.sep)


def _relative(path):
    return os.path.relpath(os.path.realpath(path), ROOT)


def _start_ticks(pid="self"):
    """The process start time in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    try:
        with open("/proc/%s/stat" % pid, "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except Exception:
        return None


def _started():
    """The process start time in nanoseconds since the epoch (from /proc), else now."""
    try:
        ticks = _start_ticks()
        with open("/proc/stat", "rb") as f:
            btime = next(int(l.split()[1]) for l in f if l.startswith(b"btime "))
        return btime * 1_000_000_000 + ticks * (1_000_000_000 // os.sysconf("SC_CLK_TCK"))
    except Exception:
        return time.time_ns()


def _identity():
    """What tells this process apart from every other: the machine's boot id, the container's mount namespace
    (distinct per container, also on host networking), the pid and its start time."""
    ident = {"pid": os.getpid(), "startTicks": _start_ticks()}
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            ident["bootId"] = f.read().strip()
    except OSError:
        pass
    try:
        ident["mountNamespace"] = os.stat("/proc/self/ns/mnt").st_ino
    except OSError:
        pass
    key = "%s/%s/%s/%s" % (ident.get("bootId"), ident.get("mountNamespace"), ident["pid"], ident["startTicks"])
    return ident, hashlib.sha256(key.encode()).hexdigest()[:16]


def _manifest():
    candidates = [os.environ.get("IMPRINT_MANIFEST"), os.path.join(ROOT, ".imprint", "manifest.json"), "/.imprint/manifest.json"]
    for path in candidates:
        if not path:
            continue
        try:
            with open(path, "rb") as f:
                data = json.load(f)
            entries = {e["path"]: e.get("sha256") for e in data.get("entries", []) if e.get("type") == "file"}
            return {"path": path, "digest": data.get("digest")}, entries
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None, {}


STARTED = _started()
IDENTITY, INSTANCE = _identity()
MANIFEST, _ENTRIES = _manifest()


def _same_code(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, types.CodeType):
        for attr in ("co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_nlocals", "co_stacksize", "co_flags", "co_code",
                     "co_names", "co_varnames", "co_freevars", "co_cellvars", "co_name", "co_qualname", "co_firstlineno",
                     "co_linetable", "co_lnotab", "co_exceptiontable"):
            if hasattr(a, attr) and getattr(a, attr) != getattr(b, attr):
                return False
        return _same_code(a.co_consts, b.co_consts)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same_code(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and a != a:
        return b != b
    return a == b


def _install():
    import importlib._bootstrap_external as ext

    original_get_data = ext.FileLoader.get_data

    def get_data(self, path):
        data = original_get_data(self, path)
        if _under_root(path):
            with _lock:
                _reads[os.path.realpath(path)] = _sha(data)
        return data

    ext.FileLoader.get_data = get_data

    original_source_to_code = ext.SourceLoader.source_to_code

    def source_to_code(self, data, path, *args, **kwargs):
        if isinstance(path, str) and _under_root(path):
            with _lock:
                _compiled[os.path.realpath(path)] = _sha(bytes(data) if not isinstance(data, bytes) else data)
        return original_source_to_code(self, data, path, *args, **kwargs)

    ext.SourceLoader.source_to_code = source_to_code

    original_compile_bytecode = ext._compile_bytecode

    def compile_bytecode(data, name=None, bytecode_path=None, source_path=None):
        code = original_compile_bytecode(data, name, bytecode_path, source_path)
        if source_path and _under_root(source_path):
            with _lock:
                _from_pyc[os.path.realpath(source_path)] = (bytecode_path, code)
        return code

    ext._compile_bytecode = compile_bytecode

    original_get_code = ext.SourceLoader.get_code

    def get_code(self, fullname):
        path = None
        try:
            path = os.path.realpath(self.get_filename(fullname))
        except Exception:
            pass
        if path and _under_root(path):
            with _lock:
                _compiled.pop(path, None)
                _from_pyc.pop(path, None)
        code = original_get_code(self, fullname)
        if path and _under_root(path):
            try:
                _record(fullname, path)
            except Exception:
                pass
        return code

    ext.SourceLoader.get_code = get_code

    original_sourceless_get_code = ext.SourcelessFileLoader.get_code

    def sourceless_get_code(self, fullname):
        code = original_sourceless_get_code(self, fullname)
        try:
            path = os.path.realpath(self.get_filename(fullname))
            if _under_root(path):
                _record(fullname, path)
        except Exception:
            pass
        return code

    ext.SourcelessFileLoader.get_code = sourceless_get_code


def _record(name, path):
    rec = {"module": name, "path": _relative(path)}
    if path.endswith(".pyc"):
        rec["loadedFrom"] = "sourceless"
        rec["sha256"] = _reads.get(path)
    elif path in _compiled and path not in _from_pyc:
        rec["loadedFrom"] = "source"
        rec["sha256"] = _compiled[path]
    elif path in _from_pyc:
        pyc, code = _from_pyc[path]
        rec["loadedFrom"] = "bytecode"
        rec["pyc"] = _relative(pyc)
        rec["sha256"] = _reads.get(os.path.realpath(pyc))
        try:
            with open(path, "rb") as f:
                source = f.read()
            rec["sourceSha256"] = _sha(source)
            optimize = {"": 0, ".opt-1": 1, ".opt-2": 2}.get(os.path.splitext(os.path.splitext(pyc)[0])[1] if ".opt-" in pyc else "", 0)
            rec["codeMatchesSource"] = _same_code(code, compile(source, path, "exec", dont_inherit=True, optimize=optimize))
        except Exception as e:
            rec["sourceError"] = "%s: %s" % (type(e).__name__, e)
    else:
        return
    if _ENTRIES:
        rec["manifestSha256"] = _ENTRIES.get(rec["path"])
    with _lock:
        _modules[name] = rec
    _changed()


def _record_main():
    """The entry script runs before the probe is imported; record it as it is now (at process start)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or not _under_root(path) or not path.endswith(".py"):
        return
    try:
        with open(path, "rb") as f:
            sha = _sha(f.read())
    except OSError:
        return
    rec = {"module": "__main__", "path": _relative(path), "loadedFrom": "source", "sha256": sha}
    if _ENTRIES:
        rec["manifestSha256"] = _ENTRIES.get(rec["path"])
    with _lock:
        _modules["__main__"] = rec


def _own():
    with _lock:
        modules = sorted(_modules.values(), key=lambda r: r["module"])
    return {
        "probe": PROBE,
        "pid": os.getpid(),
        "instance": INSTANCE,
        "identity": IDENTITY,
        "hostname": socket.gethostname(),
        "started": STARTED,
        "startedAt": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(STARTED // 1_000_000_000)) + ".%09dZ" % (STARTED % 1_000_000_000),
        "python": "%d.%d.%d" % sys.version_info[:3],
        "root": ROOT,
        "manifest": MANIFEST,
        "modules": modules,
    }


# Each process's evidence file, written a moment after its last import (so a burst of imports is one write).
_dirty = threading.Event()


def _evidence_file(pid, ticks):
    return os.path.join(EVIDENCE_DIR, "%d-%s.json" % (pid, ticks))


def _write_own():
    try:
        os.makedirs(EVIDENCE_DIR, exist_ok=True)
        path = _evidence_file(os.getpid(), IDENTITY.get("startTicks"))
        tmp = "%s.tmp-%d" % (path, os.getpid())
        with open(tmp, "w") as f:
            json.dump(_own(), f, sort_keys=True)
        os.replace(tmp, path)
    except Exception:
        pass


def _flusher():
    while True:
        _dirty.wait()
        time.sleep(0.2)
        _dirty.clear()
        _write_own()


def _start_flusher():
    threading.Thread(target=_flusher, name="imprint-probe", daemon=True).start()


def _changed():
    _dirty.set()


def _after_fork():
    """In a forked worker: its own identity and start time, its own flusher, and its evidence (the code it
    inherited from the master is the code it runs)."""
    global STARTED, IDENTITY, INSTANCE, _dirty
    STARTED = _started()
    IDENTITY, INSTANCE = _identity()
    _dirty = threading.Event()
    _start_flusher()
    _changed()


def _live(pid, ticks):
    return ticks is not None and _start_ticks(pid) == ticks


def _others():
    """The evidence of every other live process of this container that imported the probe for the same
    application root."""
    out = []
    try:
        names = sorted(os.listdir(EVIDENCE_DIR))
    except OSError:
        return out
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            pid_text, ticks_text = name[:-5].split("-", 1)
            pid, ticks = int(pid_text), int(ticks_text)
        except ValueError:
            continue
        if pid == os.getpid() or not _live(pid, ticks):
            continue
        try:
            with open(os.path.join(EVIDENCE_DIR, name)) as f:
                other = json.load(f)
        except (OSError, ValueError):
            continue
        # Only this application's processes: another application on the same host or in the same container
        # shares the directory but not the root, and its code is not this application's.
        if isinstance(other, dict) and other.get("root") == ROOT:
            out.append(other)
    return out


def evidence():
    """What this process loaded, and every other live process of the container that imported the probe: a
    JSON-ready dict (schemas/probe-evidence.schema.json)."""
    own = _own()
    own["processes"] = [dict(own)] + _others()
    return own


def evidence_json():
    return json.dumps(evidence(), sort_keys=True)


_install()
_record_main()
_start_flusher()
_changed()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
"""#
}
