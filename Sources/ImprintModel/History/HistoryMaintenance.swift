import Foundation
#if canImport(Glibc)
import Glibc
#endif

// MARK: Export and import

/// The export archive (`schemas/history-export.schema.json` describes its index):
/// one gzip member (RFC 1952) whose content is
/// ```
/// <index JSON on one line>\n
/// then per object: kind (1 byte "d"/"r") | id (32) | identified length (u32 BE) | body length (u32 BE)
///                  | SHA-256 of the attribute part (32) | body (uncompressed)
/// then one 0x00 byte
/// ```
/// The index lists the records the archive carries and the object count; every object a listed record needs is
/// in the archive. Import re-hashes every object before it stores anything.
package enum HistoryArchive {
    package static let mediaType = "application/vnd.imprint.history-export.v1+json"
}

/// What an import did.
package struct HistoryImportResult: Sendable {
    package var recordsAdded = 0
    package var recordsPresent = 0
    package var objectsWritten = 0
    package var objectsPresent = 0
}

extension HistoryStore {
    /// Writes the records `entries` and every object they need to an export archive at `path` (atomically).
    /// - Returns: the number of objects written.
    @discardableResult
    package func export(_ entries: [HistoryEntry], to path: String) throws -> Int {
        let ids = try withLock(exclusive: false) { try reachable(from: entries.map(\.record)) }
        var w = JSONWriter(pretty: false, reserve: 512 + entries.count * 400)
        w.beginObject()
        w.string("mediaType", HistoryArchive.mediaType)
        w.string("created", HistoryTime.rfc3339(nanos: HistoryTime.nowNanos()))
        w.int("objects", ids.count)
        w.beginArray("records")
        for e in entries { e.write(to: &w) }
        w.endArray()
        w.endObject()
        // Streamed: one object in memory at a time.
        try AtomicFile.write(to: path) { fd in
            let gz = GzipEncoder(level: 9) { try AtomicFile.writeAll(fd, $0, path: path) }
            try gz.write(w.bytes + [0x0A])
            for id in ids.sorted() {
                let o = try objects.read(id)
                var head: [UInt8] = [o.kind.rawValue]
                head.append(contentsOf: id.bytes)
                ObjectStore.appendU32(UInt32(o.identifiedLength), to: &head)
                ObjectStore.appendU32(UInt32(o.body.count), to: &head)
                head.append(contentsOf: o.body.withUnsafeBytes { SHA256.hash(UnsafeRawBufferPointer(rebasing: $0[o.identifiedLength...])) }.bytes)
                try gz.write(head)
                try gz.write(o.body)
            }
            try gz.write([0])
            try gz.finish()
        }
        return ids.count
    }

    /// Imports an export archive: streams it, verifies every object, checks every listed record is complete,
    /// then stores the missing objects and refs. Objects are staged in a directory inside the store and moved in
    /// only when everything checked out, so a bad archive leaves the store as it was. Memory is bounded by one
    /// object, however large the archive or what its headers claim. Importing the same archive again changes nothing.
    package func importArchive(_ path: String) throws -> HistoryImportResult {
        let file: FileDescriptorSource
        do { file = try FileDescriptorSource(path: path) } catch let e as ImprintError where e.code == .notFound {
            throw ImprintError(.notFound, "cannot open \(path): no such file")
        }
        let (plain, _) = try Compression.decompressing(file, name: path)
        let reader = ByteReader(plain, name: path)
        let index = try JSONRead.object(try reader.readLine(limit: 32 << 20, what: "index line"), what: "\(path) index")
        guard index["mediaType"] as? String == HistoryArchive.mediaType else {
            throw ImprintError.badInput("\(path) is not an imprint history export (mediaType is not \(HistoryArchive.mediaType))")
        }
        guard let count = JSONRead.count(index["objects"]), let recs = index["records"] as? [[String: Any]] else {
            throw ImprintError.badInput("\(path): index lacks a valid object count or records list")
        }
        // The shared lock for the whole import: a prune (exclusive) must not sweep the staging directory.
        return try withLock(exclusive: false) { try importStreaming(reader, count: count, records: recs, path: path) }
    }

    private func importStreaming(_ reader: ByteReader, count: Int, records recs: [[String: Any]], path: String) throws -> HistoryImportResult {
        let staging = try makeStaging()
        defer { try? FileManager.default.removeItem(atPath: staging.directory) }
        var incoming: [Digest: HistoryObjectKind] = [:]
        for n in 0..<count {
            let head = try reader.read(exactly: 73, what: "the header of object \(n + 1) of \(count)")
            let kindByte = head[0]
            guard let kind = HistoryObjectKind(rawValue: kindByte) else { throw ImprintError.badInput("\(path): unknown object kind \(kindByte)") }
            let id = Digest(bytes: Array(head[1..<33]))!  // trap-ok: exactly 32 bytes
            let ilen = Int(ObjectStore.readU32(head, 33)), blen = Int(ObjectStore.readU32(head, 37))
            let attrSum = Array(head[41..<73])
            guard ilen <= blen, blen <= ObjectStore.maxBodyLength else {
                throw ImprintError.badInput("\(path): object \(id) has bad lengths (\(ilen) of \(blen) bytes)")
            }
            let body = try reader.read(exactly: blen, what: "object \(id)")
            let actual = body.withUnsafeBytes { SHA256.hash(UnsafeRawBufferPointer(rebasing: $0[..<ilen])) }
            guard actual == id else { throw ImprintError.badInput("\(path): object \(id) is corrupt: content hashes to \(actual)") }
            guard body.withUnsafeBytes({ SHA256.hash(UnsafeRawBufferPointer(rebasing: $0[ilen...])) }).bytes == attrSum else {
                throw ImprintError.badInput("\(path): object \(id) is corrupt: attribute section does not match its checksum")
            }
            let o = HistoryObject(kind: kind, id: id, body: body, identifiedLength: ilen)
            if kind == .directory { _ = try DirectoryObject.decode(o) } else { _ = try BuildRecord.parse(body, what: "\(path): record \(id)") }
            if incoming[id] == nil && !objects.contains(id) {
                try staging.writeEncoded(try ObjectStore.encode(kind: kind, body: body, identifiedLength: ilen), id: id)
            }
            incoming[id] = kind
        }
        guard try reader.read(exactly: 1, what: "the end marker") == [0], try reader.atEnd() else {
            throw ImprintError.badInput("\(path): unexpected bytes after \(count) objects")
        }

        // Every listed record must be complete with what the archive and the store hold together.
        func object(_ id: Digest) throws -> HistoryObject {
            if staging.contains(id) { return try staging.read(id) }
            return try objects.read(id)
        }
        var entries: [HistoryEntry] = []
        for r in recs {
            guard let id = (r["record"] as? String).flatMap(Digest.init(hex:)) else { throw ImprintError.badInput("\(path): index record without a valid id") }
            let ro = try object(id)
            guard ro.kind == .record else { throw ImprintError.badInput("\(path): \(id) is not a record") }
            let record = try BuildRecord.parse(ro.body, what: "history record \(id)")
            var stack = [record.root]
            var seen = Set<Digest>()
            while let d = stack.popLast() {
                guard seen.insert(d).inserted else { continue }
                let o = try object(d)
                guard o.kind == .directory else { throw ImprintError.badInput("\(path): \(d) is not a directory object") }
                for (_, c) in try DirectoryObject.decode(o) where c.type == .directory { stack.append(c.digest) }
            }
            entries.append(HistoryEntry(record: id, of: record))
        }

        var result = HistoryImportResult()
        for id in incoming.keys.sorted() {
            if objects.contains(id) { result.objectsPresent += 1; continue }
            try staging.move(id, to: objects)
            result.objectsWritten += 1
        }
        for e in entries {
            let p = recordsDirectory + "/" + refName(e)
            if access(p, F_OK) == 0 { result.recordsPresent += 1; continue }
            try AtomicFile.write(e.refBytes, to: p)
            result.recordsAdded += 1
        }
        return result
    }

    /// Staging directories of imports that were killed (`.import-*`).
    package func stagingDirectories() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { $0.hasPrefix(".import-") }.sorted().map { root + "/" + $0 }
    }

    /// A fresh object directory inside the store (same file system, so staged objects move in by rename).
    private func makeStaging() throws -> ObjectStore {
        var template = Array((root + "/.import-XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw ImprintError.posix("create a staging directory in", root)
        }
        return ObjectStore(directory: String(nulTerminated: template))
    }
}

// MARK: Prune

/// Which records `prune` removes. A record is removed when it satisfies every criterion given and carries
/// none of `keepTags`.
package struct HistoryPrunePolicy: Sendable {
    /// Keep the N newest records.
    package var keepLast: Int?
    /// Remove only records recorded more than this many days ago.
    package var olderThanDays: Int?
    package var keepTags: [String] = []
    package var dryRun = false
    package init(keepLast: Int? = nil, olderThanDays: Int? = nil, keepTags: [String] = [], dryRun: Bool = false) {
        self.keepLast = keepLast; self.olderThanDays = olderThanDays; self.keepTags = keepTags; self.dryRun = dryRun
    }
}

package struct HistoryPruneResult: Sendable {
    package var removedRecords: [HistoryEntry] = []
    package var keptRecords = 0
    package var removedObjects = 0
    package var removedTemporaryFiles = 0
}

extension HistoryStore {
    /// Removes records by `policy`, then every object no kept record references (mark and sweep), holding the
    /// store lock exclusively so no add runs meanwhile. Marking happens before anything is deleted: when a kept
    /// record cannot be read, nothing is removed.
    package func prune(_ policy: HistoryPrunePolicy, now: Int64 = HistoryTime.nowNanos()) throws -> HistoryPruneResult {
        guard policy.keepLast != nil || policy.olderThanDays != nil else {
            throw ImprintError.badInput("prune needs --keep-last or --older-than")
        }
        return try withLock(exclusive: true) {
            let all = try entries()
            let cutoff = policy.olderThanDays.map { now - Int64($0) * 86_400 * 1_000_000_000 }
            var drop: [HistoryEntry] = [], keep: [HistoryEntry] = []
            for (i, e) in all.enumerated() {
                var remove = !e.tags.contains(where: policy.keepTags.contains)
                if let n = policy.keepLast, i < n { remove = false }
                if let cutoff, e.recordedNanos >= cutoff { remove = false }
                if remove { drop.append(e) } else { keep.append(e) }
            }
            var result = HistoryPruneResult(removedRecords: drop, keptRecords: keep.count)
            let live = try reachable(from: keep.map(\.record))
            if policy.dryRun {
                result.removedObjects = objects.enumerate().objects.filter { !live.contains($0.0) }.count
                return result
            }
            for e in drop { unlink(recordsDirectory + "/" + refName(e)); unlink(fileTimesDirectory + "/" + e.record.hex) }
            let (present, temporary) = objects.enumerate()
            for (id, p) in present where !live.contains(id) { unlink(p); result.removedObjects += 1 }
            // No writer runs while we hold the exclusive lock: every temporary file is left over from a killed one.
            let recordTemps = ((try? FileManager.default.contentsOfDirectory(atPath: recordsDirectory)) ?? [])
                .filter { $0.hasPrefix(".") }.map { recordsDirectory + "/" + $0 }
            for p in temporary + recordTemps { unlink(p); result.removedTemporaryFiles += 1 }
            for p in stagingDirectories() { try? FileManager.default.removeItem(atPath: p); result.removedTemporaryFiles += 1 }
            return result
        }
    }
}

// MARK: fsck

/// What `fsck` found.
package struct HistoryFsckReport: Sendable, ExitStatusReporting {
    package var objectsChecked = 0
    package var recordsChecked = 0
    /// Objects whose bytes do not match their id (or cannot be decoded), with the reason.
    package var corrupt: [(id: Digest, reason: String)] = []
    /// Objects a record needs that are absent: (record, object).
    package var missing: [(record: Digest, object: Digest)] = []
    /// Intact objects no record references (left by a killed add or an interrupted prune); harmless.
    package var unreferenced: [Digest] = []
    package var temporaryFiles: [String] = []
    /// Ref files whose summary was unreadable or disagreed with the record, and were rewritten.
    package var repairedRefs: [String] = []
    /// Files under records/ or objects/ that are not named like anything the store writes.
    package var strayFiles: [String] = []

    /// True when the store is sound: nothing corrupt and nothing referenced is missing.
    package var isClean: Bool { corrupt.isEmpty && missing.isEmpty }
    package var exitStatus: Int32 { Self.status(ok: isClean) }
}

extension HistoryStore {
    /// Re-hashes every object, checks every record is complete, rewrites damaged ref summaries from their
    /// records, and lists unreferenced objects.
    package func fsck() throws -> HistoryFsckReport {
        try withLock(exclusive: false) {
            var report = HistoryFsckReport()
            let (present, temporary) = objects.enumerate()
            report.temporaryFiles = temporary + stagingDirectories()
            var good = Set<Digest>()
            var bad = Set<Digest>()
            for (id, path) in present {
                report.objectsChecked += 1
                do {
                    guard let file = try FileBytes.read(path) else { continue }
                    let o = try ObjectStore.decode(file, id: id)
                    if o.kind == .directory { _ = try DirectoryObject.decode(o) } else { _ = try BuildRecord.parse(o.body, what: "history record \(id)") }
                    good.insert(id)
                } catch {
                    report.corrupt.append((id, "\(error)"))
                    bad.insert(id)
                }
            }
            var live: [Digest] = []
            let names = (try? FileManager.default.contentsOfDirectory(atPath: recordsDirectory)) ?? []
            for name in names.sorted() {
                let path = recordsDirectory + "/" + name
                if name.hasPrefix(".") { report.temporaryFiles.append(path); continue }
                guard let dash = name.firstIndex(of: "-"), let id = Digest(hex: String(name[name.index(after: dash)...])) else {
                    report.strayFiles.append(path); continue
                }
                report.recordsChecked += 1
                live.append(id)
                // Read the record itself rather than trusting the enumeration above: an add running beside us may
                // have published it since.
                let r: BuildRecord
                do { r = try record(id) } catch {
                    if !bad.contains(id) {
                        if (error as? ImprintError)?.code == .notFound { report.missing.append((id, id)) } else { report.corrupt.append((id, "\(error)")) }
                        bad.insert(id)
                    }
                    continue
                }
                let expected = HistoryEntry(record: id, of: r)
                if refName(expected) != name {
                    report.strayFiles.append(path); continue
                }
                if (try? FileBytes.read(path)) ?? nil != expected.refBytes {
                    try AtomicFile.write(expected.refBytes, to: path)
                    report.repairedRefs.append(path)
                }
            }
            let reached = try reachable(from: live) { record, object, error in
                guard !bad.contains(object) else { return }
                bad.insert(object)
                if (error as? ImprintError)?.code == .notFound { report.missing.append((record, object)) } else { report.corrupt.append((object, "\(error)")) }
            }
            report.unreferenced = good.subtracting(reached).sorted()
            return report
        }
    }
}
