import Foundation

/// One build in the history: the root of its tree plus everything about the build that is not the tree
/// (`schemas/history-record.schema.json`). Stored as a record object whose id is SHA-256 of `jsonBytes()`.
package struct BuildRecord {
    package static let mediaType = "application/vnd.imprint.history-record.v1+json"

    /// The Merkle digest of the build's tree: the id of its root directory object.
    package var root: Digest
    /// When the record was added, in nanoseconds since the epoch (the history's sort key).
    package var recordedNanos: Int64
    package var files = 0, directories = 0, symlinks = 0, other = 0
    package var bytes: UInt64 = 0
    /// The image the build produced, when it was stamped (`sha256:…`).
    package var imageDigest: String?
    /// Free-form labels (`release`, `v1.2.3`); `show` and `prune --keep-tag` select by them.
    package var tags: [String] = []
    /// The manifest's metadata (git, CI variables, tool, ignore file), kept so `show --format json` gives the
    /// manifest back byte for byte.
    package var metadata: ManifestMetadata
    package var findings: [HygieneFinding]
    /// Step records from a CI step runner, each one compact JSON object, in the order added.
    package private(set) var steps: [[UInt8]] = []
    /// Named JSON attachments (compact JSON), sorted by name when written.
    package private(set) var attachments: [String: [UInt8]] = [:]

    /// A record for `manifest`, recorded now.
    package init(manifest: Manifest, recordedNanos: Int64 = HistoryTime.nowNanos()) {
        root = manifest.rootDigest
        self.recordedNanos = recordedNanos
        let s = manifest.tree.statistics
        files = s.files; directories = s.directories; symlinks = s.symlinks; other = s.other; bytes = s.bytes
        metadata = manifest.metadata
        findings = manifest.findings
    }

    /// Appends a step record (any JSON object, e.g. what a CI step runner reports for one step).
    /// - Throws: `badInput` when `json` is not a JSON object.
    package mutating func addStepRecord(_ json: [UInt8]) throws {
        steps.append(try BuildRecord.normalise(json, what: "step record"))
    }

    /// Attaches a named JSON value (object, array or scalar); replaces an attachment of the same name.
    package mutating func attach(_ name: String, json: [UInt8]) throws {
        attachments[name] = try BuildRecord.normalise(json, what: "attachment \(name)", objectOnly: false)
    }

    package var recorded: String { HistoryTime.rfc3339(nanos: recordedNanos) }

    /// The record object's bytes: deterministic JSON (fixed key order, compact attachments).
    package func jsonBytes() -> [UInt8] {
        var w = JSONWriter(pretty: true, reserve: 1024)
        w.beginObject()
        w.string("mediaType", BuildRecord.mediaType)
        w.string("root", root.prefixed)
        w.string("recorded", recorded)
        w.beginObject("summary")
        w.int("files", files); w.int("directories", directories); w.int("symlinks", symlinks); w.int("other", other)
        w.int("bytes", bytes)
        w.endObject()
        w.string("imageDigest", imageDigest)
        w.beginArray("tags"); for t in tags { w.string(nil, t) }; w.endArray()
        metadata.write(into: &w)
        HygieneFinding.write(findings, into: &w)
        if !steps.isEmpty { w.beginArray("steps"); for s in steps { w.raw(nil, s) }; w.endArray() }
        if !attachments.isEmpty {
            w.beginObject("attachments")
            for k in attachments.keys.sorted() { w.raw(k, attachments[k]!) }
            w.endObject()
        }
        w.endObject()
        w.end()
        return w.bytes
    }

    /// Parses a record object's bytes.
    package static func parse(_ data: [UInt8], what: String) throws -> BuildRecord {
        let obj = try JSONRead.object(data, what: what)
        func bad(_ why: String) -> ImprintError { ImprintError.badInput("\(what): \(why)") }
        guard obj["mediaType"] as? String == mediaType else { throw bad("not a history record") }
        guard let root = (obj["root"] as? String).flatMap(Digest.init(hex:)) else { throw bad("invalid root") }
        guard let rec = obj["recorded"] as? String, let nanos = HistoryTime.parse(rec) else { throw bad("invalid recorded time") }
        var r = BuildRecord(root: root, recordedNanos: nanos)
        if let s = obj["summary"] as? [String: Any] {
            r.files = (s["files"] as? NSNumber)?.intValue ?? 0
            r.directories = (s["directories"] as? NSNumber)?.intValue ?? 0
            r.symlinks = (s["symlinks"] as? NSNumber)?.intValue ?? 0
            r.other = (s["other"] as? NSNumber)?.intValue ?? 0
            r.bytes = (s["bytes"] as? NSNumber)?.uint64Value ?? 0
        }
        r.imageDigest = obj["imageDigest"] as? String
        r.tags = obj["tags"] as? [String] ?? []
        if let md = obj["metadata"] as? [String: Any] { r.metadata = ManifestMetadata(json: md) }
        for f in obj["findings"] as? [[String: Any]] ?? [] {
            if let k = (f["kind"] as? String).flatMap(HygieneFinding.Kind.init(rawValue:)) {
                r.findings.append(HygieneFinding(kind: k, path: f["path"] as? String ?? "", message: f["message"] as? String ?? ""))
            }
        }
        for s in obj["steps"] as? [Any] ?? [] { r.steps.append(compactJSON(s)) }
        for (k, v) in obj["attachments"] as? [String: Any] ?? [:] { r.attachments[k] = compactJSON(v) }
        return r
    }

    private init(root: Digest, recordedNanos: Int64) {
        self.root = root
        self.recordedNanos = recordedNanos
        metadata = ManifestMetadata()
        findings = []
    }

    package static func normalise(_ json: [UInt8], what: String, objectOnly: Bool = true) throws -> [UInt8] {
        let v: Any
        do { v = try JSONSerialization.jsonObject(with: Data(json), options: [.fragmentsAllowed]) } catch {
            throw ImprintError.badInput("\(what) is not valid JSON: \(JSONRead.reason(error))")
        }
        if objectOnly && !(v is [String: Any]) { throw ImprintError.badInput("\(what) is not a JSON object") }
        return compactJSON(v)
    }

    package static func compactJSON(_ v: Any) -> [UInt8] {
        var w = JSONWriter(pretty: false, reserve: 256)
        w.value(nil, v)
        return w.bytes
    }
}

/// The summary of one record kept in its ref file, so `list` never decompresses records
/// (`schemas/history-list.schema.json`).
package struct HistoryEntry: Sendable, Equatable {
    /// The record object's id.
    package var record: Digest
    package var root: Digest
    package var recordedNanos: Int64
    package var created: String
    package var tags: [String]
    package var gitCommit: String?
    package var gitBranch: String?
    package var gitDirty: Bool?
    package var imageDigest: String?
    package var files: Int
    package var bytes: UInt64

    package var recorded: String { HistoryTime.rfc3339(nanos: recordedNanos) }

    package init(record: Digest, of r: BuildRecord) {
        self.record = record
        root = r.root
        recordedNanos = r.recordedNanos
        created = r.metadata.created
        tags = r.tags
        gitCommit = r.metadata.gitCommit
        gitBranch = r.metadata.gitBranch
        gitDirty = r.metadata.gitDirty
        imageDigest = r.imageDigest
        files = r.files
        bytes = r.bytes
    }

    /// Writes the summary as one JSON object (into `w`, or compact when used for ref files).
    package func write(to w: inout JSONWriter) {
        w.beginObject()
        w.string("record", record.prefixed)
        w.string("root", root.prefixed)
        w.string("recorded", recorded)
        w.string("created", created)
        w.beginArray("tags"); for t in tags { w.string(nil, t) }; w.endArray()
        if let c = gitCommit {
            w.beginObject("git")
            w.string("commit", c)
            w.string("branch", gitBranch)
            if let d = gitDirty { w.bool("dirty", d) }
            w.endObject()
        }
        w.string("imageDigest", imageDigest)
        w.int("files", files)
        w.int("bytes", bytes)
        w.endObject()
    }

    package var refBytes: [UInt8] {
        var w = JSONWriter(pretty: false, reserve: 400)
        write(to: &w)
        return w.bytes + [0x0A]
    }

    package static func parse(_ data: [UInt8], what: String) throws -> HistoryEntry {
        let o = try JSONValue.parse(data, what: what)
        guard let rec = o["record"]?.string.flatMap(Digest.init(hex:)),
              let root = o["root"]?.string.flatMap(Digest.init(hex:)),
              let recorded = o["recorded"]?.string.flatMap(HistoryTime.parse) else {
            throw ImprintError.badInput("\(what): not a history summary")
        }
        let g = o["git"]
        return HistoryEntry(record: rec, root: root, recordedNanos: recorded, created: o["created"]?.string ?? "",
                            tags: o["tags"]?.array?.compactMap(\.string) ?? [], gitCommit: g?["commit"]?.string,
                            gitBranch: g?["branch"]?.string, gitDirty: g?["dirty"]?.bool,
                            imageDigest: o["imageDigest"]?.string,
                            files: Int(clamping: max(0, o["files"]?.int ?? 0)), bytes: UInt64(max(0, o["bytes"]?.int ?? 0)))
    }

    package init(record: Digest, root: Digest, recordedNanos: Int64, created: String, tags: [String], gitCommit: String?,
         gitBranch: String?, gitDirty: Bool?, imageDigest: String?, files: Int, bytes: UInt64) {
        self.record = record; self.root = root; self.recordedNanos = recordedNanos; self.created = created
        self.tags = tags; self.gitCommit = gitCommit; self.gitBranch = gitBranch; self.gitDirty = gitDirty
        self.imageDigest = imageDigest; self.files = files; self.bytes = bytes
    }
}

/// Times in the history: nanoseconds since the epoch, written as RFC 3339 UTC with nine fraction digits.
package enum HistoryTime {
    package static func nowNanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    package static func rfc3339(nanos: Int64) -> String {
        // Floor division without overflow, for every Int64.
        var s = nanos / 1_000_000_000
        var frac = nanos % 1_000_000_000
        if frac < 0 { s -= 1; frac += 1_000_000_000 }
        return RFC3339.format(seconds: s, fraction: frac, fractionDigits: 9)
    }

    /// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS[.fraction]Z` or `@<epoch seconds>` into nanoseconds.
    /// - Returns: nil for malformed text and for times outside what an Int64 of nanoseconds holds.
    package static func parse(_ text: String) -> Int64? {
        if text.hasPrefix("@") {
            guard let s = Int64(text.dropFirst()) else { return nil }
            let (n, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
            return overflow ? nil : n
        }
        let u = Array(text.utf8)
        func num(_ r: Range<Int>) -> Int? {
            guard r.upperBound <= u.count else { return nil }
            var v = 0
            for c in u[r] { guard c >= 48 && c <= 57 else { return nil }; v = v * 10 + Int(c - 48) }
            return v
        }
        guard u.count >= 10, u[4] == 0x2D, u[7] == 0x2D, let y = num(0..<4), let mo = num(5..<7), let d = num(8..<10),
              (1...12).contains(mo), (1...31).contains(d) else { return nil }
        var h = 0, mi = 0, sec = 0, nanos: Int64 = 0
        if u.count > 10 {
            guard u.count >= 20, u[10] == UInt8(ascii: "T") || u[10] == 0x20, u[13] == 0x3A, u[16] == 0x3A,
                  let hh = num(11..<13), let mm = num(14..<16), let ss = num(17..<19) else { return nil }
            h = hh; mi = mm; sec = ss
            var i = 19
            if u[i] == 0x2E {
                i += 1
                var digits = 0
                while i < u.count, u[i] >= 48, u[i] <= 57 {
                    if digits < 9 { nanos = nanos * 10 + Int64(u[i] - 48); digits += 1 }
                    i += 1
                }
                while digits < 9 { nanos *= 10; digits += 1 }
            }
            guard i == u.count - 1, u[i] == UInt8(ascii: "Z") else { return nil }
        }
        var t = tm()
        t.tm_year = Int32(y - 1900); t.tm_mon = Int32(mo - 1); t.tm_mday = Int32(d)
        t.tm_hour = Int32(h); t.tm_min = Int32(mi); t.tm_sec = Int32(sec)
        guard (0...23).contains(h), (0...59).contains(mi), (0...60).contains(sec) else { return nil }
        var secs = Int64(timegm(&t))
        var fraction = nanos
        // Before the epoch, borrow a second so the product stays in range down to Int64.min.
        if secs < 0 && fraction > 0 { secs += 1; fraction -= 1_000_000_000 }
        let (whole, overflow) = secs.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return nil }
        let (total, overflow2) = whole.addingReportingOverflow(fraction)
        return overflow2 ? nil : total
    }
}
