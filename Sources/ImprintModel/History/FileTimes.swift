import Foundation

/// What a builder's cache compares instead of content: each file's size, mode and modification time (ns), kept
/// beside a history record (`<store>/file-times/<record>`, zlib) together with its content digest and the
/// context's path. Outside every digest and not deduplicated; written by `fingerprint --record`.
///
/// BuildKit decides from that metadata whether a local file changed, so a file whose bytes changed while size,
/// mtime and mode stayed the same can ship inside a stale cached layer (`cp -p`, `rsync -a`, `tar -x`, `touch -r`,
/// an mtime-restoring checkout, a same-second edit on a coarse-mtime filesystem). `staleRisks` finds them.
package struct FileTimes: Sendable {
    package struct Entry: Sendable, Equatable {
        package var size: UInt64
        package var mode: UInt32
        package var mtimeNanos: Int64
        package var digest: Digest
    }

    package static let magic = Array("imprint-file-times-v1\n".utf8)

    /// The context's real path when it was fingerprinted.
    package var context: String
    package var files: [Bytes: Entry]

    /// The files of a tree walked with `recordFileTimes`.
    package init(tree: Tree, context: String) {
        self.context = FileTimes.realPath(context)
        var files: [Bytes: Entry] = [:]
        tree.walk { path, node in
            if node.type == .file, let m = node.mtimeNanos {
                files[path] = Entry(size: node.size, mode: node.mode & 0o7777, mtimeNanos: m, digest: node.digest)
            }
        }
        self.files = files
    }

    package init(context: String, files: [Bytes: Entry]) { self.context = context; self.files = files }

    package static func realPath(_ p: String) -> String {
        URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath().path
    }

    package func encoded() throws -> [UInt8] {
        var body = FileTimes.magic
        appendBytes(Array(context.utf8), to: &body)
        for (path, e) in files.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            appendBytes(path, to: &body)
            appendVarint(e.size, to: &body)
            appendVarint(UInt64(e.mode), to: &body)
            appendVarint(UInt64(bitPattern: e.mtimeNanos), to: &body)
            body.append(contentsOf: e.digest.bytes)
        }
        var out = Array("\(body.count)\n".utf8)
        out.append(contentsOf: try Compression.zlibCompress(body))
        return out
    }

    /// - Throws: `badInput` naming `what` when the bytes are not file times.
    package static func decode(_ data: [UInt8], what: String) throws -> FileTimes {
        func bad() -> ImprintError { ImprintError.badInput("\(what): not imprint file times") }
        guard let nl = data.firstIndex(of: 0x0A), nl < 16, let length = Int(String(decoding: data[..<nl], as: UTF8.self)),
              length <= 1 << 30 else { throw bad() }
        let body = try Compression.zlibUncompress(data[(nl + 1)...], expectedLength: length)
        guard body.starts(with: magic) else { throw bad() }
        var k = magic.count
        func varint() throws -> UInt64 { try DirectoryObject.readVarint(body, &k) { _ in bad() } }
        func bytes(_ n: UInt64) throws -> [UInt8] {
            guard n <= UInt64(body.count - k) else { throw bad() }
            defer { k += Int(n) }
            return Array(body[k..<(k + Int(n))])
        }
        let ctx = try bytes(try varint())
        var files: [Bytes: Entry] = [:]
        while k < body.count {
            let path = try bytes(try varint())
            let size = try varint(), mode = try varint(), m = try varint()
            guard let digest = Digest(bytes: try bytes(32)), mode <= 0o7777 else { throw bad() }
            files[path] = Entry(size: size, mode: UInt32(mode), mtimeNanos: Int64(bitPattern: m), digest: digest)
        }
        return FileTimes(context: String(decoding: ctx, as: UTF8.self), files: files)
    }

    /// Files of `tree` (walked with `recordFileTimes`) whose content differs from what these times recorded while
    /// size, mode and modification time are the same: a builder comparing metadata sees no change.
    package func staleRisks(in tree: Tree, against name: String) -> [HygieneFinding] {
        var out: [HygieneFinding] = []
        tree.walk { path, node in
            guard node.type == .file, let m = node.mtimeNanos, let old = files[path] else { return }
            if old.digest != node.digest && old.size == node.size && old.mtimeNanos == m && old.mode == node.mode & 0o7777 {
                out.append(HygieneFinding(kind: .cacheStaleRisk, path: path.lossyString, message:
                    "content changed since \(name) (\(old.digest.short) → \(node.digest.short)) but size, modification time and mode did not: "
                    + "a builder that compares metadata (BuildKit's local context) can reuse a cached COPY layer with the old bytes; "
                    + "touch the file, or build that stage with --no-cache-filter (or --no-cache)"))
            }
        }
        return out
    }

    private func appendBytes(_ b: [UInt8], to out: inout [UInt8]) {
        appendVarint(UInt64(b.count), to: &out)
        out.append(contentsOf: b)
    }

    private func appendVarint(_ v: UInt64, to out: inout [UInt8]) { DirectoryObject.appendVarint(v, to: &out) }
}

extension HistoryStore {
    package var fileTimesDirectory: String { root + "/file-times" }

    /// Keeps `times` beside `record`.
    package func saveFileTimes(_ times: FileTimes, record: Digest) throws {
        try createParentDirectory(of: fileTimesDirectory + "/x")
        try AtomicFile.write(try times.encoded(), to: fileTimesDirectory + "/" + record.hex)
    }

    /// The file times kept beside `record`, or nil when it has none.
    package func fileTimes(record: Digest) throws -> FileTimes? {
        let path = fileTimesDirectory + "/" + record.hex
        guard let data = try FileBytes.read(path) else { return nil }
        return try FileTimes.decode(data, what: path)
    }

    /// The newest record of the context at `context` that has file times.
    package func latestFileTimes(context: String) throws -> (HistoryEntry, FileTimes)? {
        let real = FileTimes.realPath(context)
        for e in try entries() {
            if let t = try fileTimes(record: e.record), t.context == real { return (e, t) }
        }
        return nil
    }
}
