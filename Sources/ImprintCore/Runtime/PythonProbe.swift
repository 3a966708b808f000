/// The Python probe `imprint probe python` writes: a standard-library module the application imports first, which
/// records which bytes CPython loaded for each of the application's modules (`RuntimeEvidence` reads what it serves).
public enum PythonProbe {
    /// The file name the probe expects to be imported under.
    public static let fileName = "imprint_probe.py"
    public static let identifier = "imprint-probe/1"

    public static let source = #"""
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


def _started():
    """The process start time in nanoseconds since the epoch (from /proc), else now."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        ticks = int(fields[19])
        with open("/proc/stat", "rb") as f:
            btime = next(int(l.split()[1]) for l in f if l.startswith(b"btime "))
        return btime * 1_000_000_000 + ticks * (1_000_000_000 // os.sysconf("SC_CLK_TCK"))
    except Exception:
        return time.time_ns()


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


def evidence():
    """What this process loaded: a JSON-ready dict (schemas/probe-evidence.schema.json)."""
    with _lock:
        modules = sorted(_modules.values(), key=lambda r: r["module"])
    return {
        "probe": PROBE,
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "started": STARTED,
        "startedAt": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(STARTED // 1_000_000_000)) + ".%09dZ" % (STARTED % 1_000_000_000),
        "python": "%d.%d.%d" % sys.version_info[:3],
        "root": ROOT,
        "manifest": MANIFEST,
        "modules": modules,
    }


def evidence_json():
    return json.dumps(evidence(), sort_keys=True)


_install()
_record_main()
"""#
}
