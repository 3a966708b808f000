import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How a step ended. The raw value is the name used in records and reports.
package enum StepStatus: String, Sendable, CaseIterable {
    /// The command exited 0 and every declared product is present.
    case succeeded
    /// The command exited non-zero, died of a signal imprint did not send, or left a product out.
    case failed
    /// imprint was interrupted (SIGINT, SIGTERM, SIGHUP) or stopped the step because another one failed.
    case interrupted
    /// The step ran longer than its timeout and was terminated.
    case timedOut = "timed-out"
}

/// One fingerprinted material or product: a file (its SHA-256), a directory (its Merkle digest, see
/// `schemas/DIGEST.md`) or a path that does not exist.
package struct Artifact: Sendable {
    package enum Kind: String, Sendable { case file, directory, missing }
    /// The path as given, cleaned (`./a//b/` → `a/b`).
    package var path: String
    package var kind: Kind
    /// Nil only for `missing`.
    package var digest: Digest?
    /// Regular files counted: 1 for a file, the number below a directory.
    package var files: Int
    /// Bytes of regular-file content.
    package var bytes: UInt64

    package init(path: String, kind: Kind, digest: Digest?, files: Int = 0, bytes: UInt64 = 0) {
        self.path = path; self.kind = kind; self.digest = digest; self.files = files; self.bytes = bytes
    }

    /// The combined digest of a set of artifacts: SHA-256 over one line per artifact in path order,
    /// `<kind> <sha256:hex or "-"> <path>\n`. Equal sets give equal digests on every machine.
    package static func combinedDigest(_ artifacts: [Artifact]) -> Digest {
        let h = SHA256()
        for a in artifacts.sorted(by: { Array($0.path.utf8).lexicographicallyPrecedes(Array($1.path.utf8)) }) {
            h.update("\(a.kind.rawValue) \(a.digest?.prefixed ?? "-") \(a.path)\n")
        }
        return h.finish()
    }
}

/// The digest and length of a captured output stream.
package struct StreamDigest: Sendable, Equatable {
    package var digest: Digest
    package var bytes: UInt64
    package init(digest: Digest, bytes: UInt64) { self.digest = digest; self.bytes = bytes }
}

/// What imprint records about one run of one step: the chain-of-custody evidence. Mirrors
/// `schemas/step-record.schema.json`; times are RFC 3339 UTC strings with milliseconds, durations integers.
package struct StepRecord: Sendable {
    package static let schemaVersion = 1

    package var name: String
    /// The argument vector that was executed (`["/bin/sh", "-c", "…"]` for a pipeline step).
    package var command: [String]
    package var workingDirectory: String
    package var status: StepStatus
    /// The child's exit status; nil when it was killed by a signal (then `signal` is set).
    package var exitCode: Int32?
    package var signal: Int32?
    /// Why the step has this status, for a person (`"terminated after 30s timeout"`).
    package var reason: String?
    package var startTime: String
    package var endTime: String
    package var durationMs: Int64
    package var materials: [Artifact]
    package var materialsDigest: Digest
    package var products: [Artifact]
    package var productsDigest: Digest
    package var stdout: StreamDigest
    package var stderr: StreamDigest
    /// The declared environment: name → value, nil when the variable was unset.
    package var environment: [String: String?]
    /// The exclusion patterns (`.dockerignore` syntax) applied inside material and product directories.
    package var exclude: [String]

    package init(name: String, command: [String], workingDirectory: String, status: StepStatus, exitCode: Int32?,
                signal: Int32?, reason: String?, startTime: String, endTime: String, durationMs: Int64,
                materials: [Artifact], products: [Artifact], stdout: StreamDigest, stderr: StreamDigest,
                environment: [String: String?], exclude: [String]) {
        self.name = name; self.command = command; self.workingDirectory = workingDirectory; self.status = status
        self.exitCode = exitCode; self.signal = signal; self.reason = reason; self.startTime = startTime
        self.endTime = endTime; self.durationMs = durationMs; self.materials = materials
        self.materialsDigest = Artifact.combinedDigest(materials); self.products = products
        self.productsDigest = Artifact.combinedDigest(products); self.stdout = stdout; self.stderr = stderr
        self.environment = environment; self.exclude = exclude
    }

    /// The exit status a wrapper should pass on: the child's code, or 128 + signal.
    package var exitStatus: Int32 { exitCode ?? (128 + (signal ?? 0)) }

    // MARK: JSON

    /// The record as JSON with a fixed key order.
    package func jsonBytes(pretty: Bool = true) -> [UInt8] {
        var w = JSONWriter(pretty: pretty)
        write(to: &w, key: nil)
        w.end()
        return w.bytes
    }

    /// Writes the record as one JSON object under `key`.
    package func write(to w: inout JSONWriter, key: String?) {
        w.beginObject(key)
        w.int("schemaVersion", StepRecord.schemaVersion)
        w.string("kind", "imprint.step-record")
        w.string("imprint", Imprint.version)
        w.string("name", name)
        w.beginArray("command"); for a in command { w.string(nil, a) }; w.endArray()
        w.string("workingDirectory", workingDirectory)
        w.string("status", status.rawValue)
        if let exitCode { w.int("exitCode", exitCode) } else { w.null("exitCode") }
        if let signal { w.int("signal", signal) }
        w.string("reason", reason)
        w.string("startTime", startTime)
        w.string("endTime", endTime)
        w.int("durationMs", durationMs)
        w.string("materialsDigest", materialsDigest.prefixed)
        Self.writeArtifacts(materials, key: "materials", to: &w)
        w.string("productsDigest", productsDigest.prefixed)
        Self.writeArtifacts(products, key: "products", to: &w)
        for (k, s) in [("stdout", stdout), ("stderr", stderr)] {
            w.beginObject(k); w.string("digest", s.digest.prefixed); w.int("bytes", s.bytes); w.endObject()
        }
        w.beginObject("environment")
        for k in environment.keys.sorted() {
            if let v = environment[k] ?? nil { w.string(k, v) } else { w.null(k) }
        }
        w.endObject()
        w.beginArray("exclude"); for e in exclude { w.string(nil, e) }; w.endArray()
        w.endObject()
    }

    package static func writeArtifacts(_ list: [Artifact], key: String, to w: inout JSONWriter) {
        w.beginArray(key)
        for a in list {
            w.compact(nil) { w in
                w.beginObject()
                w.string("path", a.path)
                w.string("type", a.kind.rawValue)
                if let d = a.digest { w.string("digest", d.prefixed) } else { w.null("digest") }
                w.int("files", a.files)
                w.int("bytes", a.bytes)
                w.endObject()
            }
        }
        w.endArray()
    }

    /// Reads a record written by `jsonBytes()`.
    /// - Throws: `ImprintError.badInput` naming `what` when the JSON or a field is malformed.
    package init(json: [UInt8], what: String) throws {
        let o = try JSONRead.object(json, what: what)
        func str(_ k: String) throws -> String {
            guard let s = o[k] as? String else { throw ImprintError.badInput("\(what): field \(k) is missing or not a string") }
            return s
        }
        func int(_ k: String, in d: [String: Any]) -> Int64? { (d[k] as? NSNumber)?.int64Value }
        func digest(_ s: Any?, _ k: String) throws -> Digest {
            guard let s = s as? String, let d = Digest(hex: s) else { throw ImprintError.badInput("\(what): field \(k) is not a sha256 digest") }
            return d
        }
        func artifacts(_ k: String) throws -> [Artifact] {
            guard let list = o[k] as? [[String: Any]] else { throw ImprintError.badInput("\(what): field \(k) is missing") }
            return try list.map { a in
                guard let path = a["path"] as? String, let kind = (a["type"] as? String).flatMap(Artifact.Kind.init(rawValue:)) else {
                    throw ImprintError.badInput("\(what): a \(k) entry lacks path or type")
                }
                let d: Digest? = kind == .missing ? nil : try digest(a["digest"], "\(k).digest")
                return Artifact(path: path, kind: kind, digest: d, files: Int(int("files", in: a) ?? 0),
                                bytes: UInt64(max(0, int("bytes", in: a) ?? 0)))
            }
        }
        func stream(_ k: String) throws -> StreamDigest {
            guard let s = o[k] as? [String: Any] else { throw ImprintError.badInput("\(what): field \(k) is missing") }
            return StreamDigest(digest: try digest(s["digest"], "\(k).digest"), bytes: UInt64(max(0, int("bytes", in: s) ?? 0)))
        }
        guard let status = StepStatus(rawValue: try str("status")) else { throw ImprintError.badInput("\(what): unknown status") }
        var env: [String: String?] = [:]
        for (k, v) in (o["environment"] as? [String: Any]) ?? [:] { env[k] = v as? String }
        self.init(name: try str("name"), command: (o["command"] as? [String]) ?? [],
                  workingDirectory: (o["workingDirectory"] as? String) ?? "", status: status,
                  exitCode: int("exitCode", in: o).map { Int32(truncatingIfNeeded: $0) },
                  signal: int("signal", in: o).map { Int32(truncatingIfNeeded: $0) }, reason: o["reason"] as? String,
                  startTime: try str("startTime"), endTime: try str("endTime"), durationMs: int("durationMs", in: o) ?? 0,
                  materials: try artifacts("materials"), products: try artifacts("products"),
                  stdout: try stream("stdout"), stderr: try stream("stderr"), environment: env,
                  exclude: (o["exclude"] as? [String]) ?? [])
        let recorded = try digest(o["materialsDigest"], "materialsDigest")
        if recorded != materialsDigest {
            throw ImprintError.badInput("\(what): materialsDigest does not match its materials")
        }
    }
}

/// Where finished step records go. The record directory is one sink; the history store will be another
/// (the integrator adds a `HistoryStore`-backed sink to the list `imprint run` and `imprint pipeline` use).
package protocol StepRecordSink {
    /// Stores `record`. Called once per step that ran, after it ended, from any thread.
    func add(_ record: StepRecord) throws
}

/// Keeps the latest record of each step as `<directory>/<name>.json`, written atomically.
// why @unchecked Sendable: immutable; each write is an atomic rename of its own file.
package final class FileStepRecordSink: StepRecordSink, @unchecked Sendable {
    // why @unchecked: immutable after init; AtomicFile writes are independent per step name.
    package let directory: String

    package init(directory: String) { self.directory = directory }

    /// The path of `step`'s record.
    package func path(for step: String) -> String { (directory as NSString).appendingPathComponent("\(step).json") }

    package func add(_ record: StepRecord) throws {
        try makeDirectories(directory)
        try AtomicFile.write(record.jsonBytes(), to: path(for: record.name))
    }

    /// The latest record of `step`, or nil when there is none.
    /// - Throws: when a record exists but cannot be read or parsed.
    package func latest(_ step: String) throws -> StepRecord? {
        let p = path(for: step)
        guard FileManager.default.fileExists(atPath: p) else { return nil }
        return try StepRecord(json: try readFile(p, what: "step record"), what: p)
    }
}

extension FileStepRecordSink {
    /// Where `imprint run` and `imprint pipeline` keep step records: `recordDir`, and the history store when one
    /// exists (IMPRINT_HISTORY or the default location).
    /// - Throws: when a history store exists but cannot be opened (its records would silently be lost).
    package static func standardSinks(recordDir: String, history: String = HistoryStore.defaultLocation()) throws -> [StepRecordSink] {
        var sinks: [StepRecordSink] = [FileStepRecordSink(directory: recordDir)]
        if access(history, F_OK) == 0 {
            sinks.append(HistoryStepSink(store: try HistoryStore(at: history, create: false)))
        }
        return sinks
    }
}
