import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Settles what a timestamp pyc's header cannot: whether its bytecode is the compilation of the source beside it.
///
/// CPython trusts a timestamp pyc whenever the source's size and whole-second mtime match the header, so a pyc
/// compiled from an older `mod.py` of the same size (a same-second edit, an mtime-preserving copy or checkout) runs
/// old code with nothing wrong to see. This compiles the source with an interpreter of the same magic number — the
/// host's `python3`, or `--python`; never anything from the target — and compares the code objects with the pyc's,
/// structurally (marshal bytes are not stable across runs), `co_filename` aside.
package struct BytecodeEquivalence {
    /// The interpreter to compile with; nil for `python3` on PATH.
    package var python: String?

    package init(python: String? = nil) { self.python = python }

    /// One timestamp pyc CPython would use, beside its source.
    package struct Pair: Sendable {
        package var pyc: Bytes
        package var source: Bytes
        package var magicNumber: UInt16
        /// 0, 1 or 2 (`.opt-1.pyc`, `.opt-2.pyc`).
        package var optimize: Int
    }

    /// The timestamp pycs in `tree` whose header matches their source (the ones CPython would use): the cases the
    /// header checks pass and only compiling can settle.
    package static func pairs(in tree: Tree, header: (Bytes, TreeNode) -> PycHeader?) -> [Pair] {
        var out: [Pair] = []
        tree.walk { path, node in
            let comps = path.pathComponents
            guard node.type == .file, comps.count >= 2, comps[comps.count - 2] == Array("__pycache__".utf8),
                  let name = PycCacheName(fileName: comps.last!),  // trap-ok: comps.count >= 2
                  let h = header(path, node), case .timestamp(let mtime, let size) = h.validation else { return }
            let source = (Array(comps.dropLast(2)) + [name.stem + Array(".py".utf8)]).joinedPath
            guard let src = tree.node(at: source), src.type == .file, let srcMtime = src.mtime,
                  UInt32(truncatingIfNeeded: srcMtime) == mtime, size.map({ $0 == UInt32(truncatingIfNeeded: src.size) }) ?? true else { return }
            out.append(Pair(pyc: path, source: source, magicNumber: h.magicNumber, optimize: Int(name.optimization ?? "0") ?? 0))
        }
        return out
    }

    /// The equivalence findings for a directory on disk (`root`, holding `tree`): every timestamp pyc that passes its
    /// header check is compiled against. When the interpreter cannot be run, each such pyc is reported as unverifiable.
    package func findings(tree: Tree, root: String) -> [BytecodeFinding] {
        let base = root.hasSuffix("/") ? String(root.dropLast()) : root
        let pairs = BytecodeEquivalence.pairs(in: tree) { path, node in
            if let h = node.pycHeader { return try? PycHeader.parse(h) }
            return (try? FileBytes.prefix(base + "/" + path.lossyString, count: 16)).flatMap { try? PycHeader.parse($0) }
        }
        return findings(pairs) { base + "/" + $0.lossyString }
    }

    /// The equivalence findings for a streamed target (a tar stream, an image): the pairs' files are the copies
    /// `spool` kept while the source was read. A pair whose files were not kept is reported as unverifiable.
    package func findings(tree: Tree, spool: BytecodeSpool) -> [BytecodeFinding] {
        let pairs = BytecodeEquivalence.pairs(in: tree) { _, node in node.pycHeader.flatMap { try? PycHeader.parse($0) } }
        return findings(pairs) { path in tree.node(at: path).flatMap { spool.path(for: $0.digest) } }
    }

    private func findings(_ pairs: [Pair], locate: (Bytes) -> String?) -> [BytecodeFinding] {
        do {
            return try check(pairs, locate: locate)
        } catch let e as ImprintError {
            return pairs.map { BytecodeFinding(kind: .unverifiableTimestampPyc, severity: .warning, path: $0.pyc, sourcePath: $0.source,
                                                detail: "the header matches the source, but only recompiling can prove the bytecode is that source's: \(e.message)") }
        } catch {
            return []
        }
    }

    /// Compares each pair under the directory `root` (a host path).
    package func check(_ pairs: [Pair], root: String) throws -> [BytecodeFinding] {
        let base = root.hasSuffix("/") ? String(root.dropLast()) : root
        return try check(pairs) { base + "/" + $0.lossyString }
    }

    /// Compares each pair, reading the files where `locate` says they are. Pairs whose magic number the
    /// interpreter does not have, or whose files cannot be located, are reported as unverifiable.
    /// - Throws: `notFound` when the interpreter cannot be run.
    package func check(_ pairs: [Pair], locate: (Bytes) -> String?) throws -> [BytecodeFinding] {
        guard !pairs.isEmpty else { return [] }
        let interpreter = python ?? "python3"
        let magicOut = try runHelper(interpreter, input: Array(#"{"magic": true}"#.utf8))
        guard let magicObj = try? JSONRead.object(magicOut, what: "python magic"), let hex = magicObj["magic"] as? String,
              let bytes = Hex.decode(Substring(hex)), bytes.count == 4 else {
            throw ImprintError(.failure, "\(interpreter) did not report its bytecode magic number")
        }
        let own = UInt16(bytes[0]) | UInt16(bytes[1]) << 8
        var findings: [BytecodeFinding] = []
        var comparable: [(pair: Pair, pyc: String, source: String)] = []
        for p in pairs {
            guard p.magicNumber == own else {
                let needed = PycMagic.version(forNumber: p.magicNumber).map { "Python \($0)" } ?? "the Python of magic number \(p.magicNumber)"
                findings.append(BytecodeFinding(kind: .unverifiableTimestampPyc, severity: .warning, path: p.pyc, sourcePath: p.source,
                                                detail: "the header matches the source, but only recompiling can prove the bytecode is that source's: needs \(needed) (\(interpreter) has magic \(own)); pass --python"))
                continue
            }
            guard let pyc = locate(p.pyc), let source = locate(p.source) else {
                findings.append(BytecodeFinding(kind: .unverifiableTimestampPyc, severity: .warning, path: p.pyc, sourcePath: p.source,
                                                detail: "the header matches the source, but only recompiling can prove the bytecode is that source's: the files were not kept while the source was read"))
                continue
            }
            comparable.append((p, pyc, source))
        }
        guard !comparable.isEmpty else { return findings }
        var w = JSONWriter(pretty: false)
        w.beginObject()
        w.beginArray("pairs")
        for c in comparable {
            w.beginObject()
            w.string("pyc", c.pyc)
            w.string("source", c.source)
            w.int("optimize", c.pair.optimize)
            w.endObject()
        }
        w.endArray()
        w.endObject()
        let out = try runHelper(interpreter, input: w.bytes)
        let results = (try JSONRead.object(out, what: "bytecode comparison"))["results"] as? [[String: Any]] ?? []
        guard results.count == comparable.count else { throw ImprintError(.failure, "\(interpreter) compared \(results.count) of \(comparable.count) pycs") }
        for (c, r) in zip(comparable, results) {
            let p = c.pair
            if let error = r["error"] as? String {
                findings.append(BytecodeFinding(kind: .unverifiableTimestampPyc, severity: .warning, path: p.pyc, sourcePath: p.source,
                                                detail: "cannot compare with its source: \(error)"))
            } else if r["equal"] as? Bool == false {
                var f = BytecodeFinding(kind: .staleCodePyc, severity: .error, path: p.pyc, sourcePath: p.source,
                                        detail: "its header matches \(p.source.lossyString) (same size and mtime), but its bytecode is not that source compiled: CPython runs the OLD code",
                                        pycSide: "compiled from other source", sourceSide: "\(p.source.lossyString) compiled with magic \(own) differs")
                f.runsStaleCode = true
                findings.append(f)
            }
        }
        return findings
    }

    /// Runs the comparison helper with `-I -S` (no site, no user environment), the request on stdin.
    private func runHelper(_ interpreter: String, input: [UInt8]) throws -> [UInt8] {
        let p = Process()
        if interpreter.contains("/") {
            p.executableURL = URL(fileURLWithPath: interpreter)
            p.arguments = ["-I", "-S", "-c", BytecodeEquivalence.helper]
        } else {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [interpreter, "-I", "-S", "-c", BytecodeEquivalence.helper]
        }
        let stdin = Pipe(), stdout = Pipe()
        p.standardInput = stdin
        p.standardOutput = stdout
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch {
            throw ImprintError(.notFound, "cannot run \(interpreter) to compare bytecode with its source: \(error.localizedDescription); pass --python")
        }
        stdin.fileHandleForWriting.write(Data(input))
        try? stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw ImprintError(.failure, "\(interpreter) could not compare bytecode (exit \(p.terminationStatus)); pass --python with a CPython 3.7 or later")
        }
        return Array(out)
    }

    /// The Python side: reports its magic number, or compiles each source and compares the code objects.
    package static let helper = #"""
import importlib.util, json, marshal, math, sys, types
req = json.load(sys.stdin)
if req.get("magic"):
    print(json.dumps({"magic": importlib.util.MAGIC_NUMBER.hex()}))
    sys.exit(0)
ATTRS = ("co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_nlocals", "co_stacksize", "co_flags", "co_code",
         "co_names", "co_varnames", "co_freevars", "co_cellvars", "co_name", "co_qualname", "co_firstlineno",
         "co_linetable", "co_lnotab", "co_exceptiontable")
def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, types.CodeType):
        for attr in ATTRS:
            if hasattr(a, attr) and getattr(a, attr) != getattr(b, attr):
                return False
        return same(a.co_consts, b.co_consts)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, complex):
        return repr(a) == repr(b)
    return a == b
results = []
for p in req["pairs"]:
    try:
        with open(p["pyc"], "rb") as f:
            data = f.read()
        loaded = marshal.loads(data[16:])
        with open(p["source"], "rb") as f:
            source = f.read()
        compiled = compile(source, p["source"], "exec", dont_inherit=True, optimize=p["optimize"])
        results.append({"equal": same(loaded, compiled)})
    except Exception as e:
        results.append({"error": "%s: %s" % (type(e).__name__, e)})
print(json.dumps({"results": results}))
"""#
}
