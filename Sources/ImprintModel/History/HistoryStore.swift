import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A store of build manifests: deduplicated directory objects plus one record per build.
///
/// Layout of the store directory:
/// ```
/// objects/<2 hex>/<62 hex>   immutable, zlib-compressed, content-addressed objects (ObjectStore)
/// records/<19-digit ns>-<64 hex record id>   one small uncompressed summary per record (HistoryEntry JSON)
/// lock                       flock(2): shared while adding or importing, exclusive while pruning
/// ```
/// Adding writes the missing directory objects (children before parents), then the record object, then the
/// ref file, each with write-to-temporary-and-rename. A process killed at any point leaves at worst unreferenced
/// objects or temporary files, which `fsck` reports and `prune` removes.
package final class HistoryStore {
    package let root: String
    package let objects: ObjectStore
    package var recordsDirectory: String { root + "/records" }

    /// `$IMPRINT_HISTORY`, else `$XDG_DATA_HOME/imprint/history`, else `~/.local/share/imprint/history`.
    package static func defaultLocation(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let p = environment["IMPRINT_HISTORY"], !p.isEmpty { return p }
        if let x = environment["XDG_DATA_HOME"], !x.isEmpty { return x + "/imprint/history" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.local/share/imprint/history"
    }

    /// Opens the store at `path`, creating it when `create` is true.
    /// - Throws: `notFound` when the store does not exist and `create` is false.
    package init(at path: String, create: Bool = true) throws {
        root = path
        objects = ObjectStore(directory: path + "/objects")
        if create {
            for d in [path, path + "/objects", path + "/records"] {
                do { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) } catch {
                    throw ImprintError(.io, "cannot create history store directory \(d): \(JSONRead.reason(error))")
                }
            }
        } else {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path + "/records", isDirectory: &isDir), isDir.boolValue else {
                throw ImprintError(.notFound, "no history store at \(path)")
            }
        }
    }

    // MARK: Locking

    /// Runs `body` holding the store lock: `LOCK_SH` for adds and reads that must not race a prune, `LOCK_EX`
    /// for prune.
    package func withLock<T>(exclusive: Bool, _ body: () throws -> T) throws -> T {
        let path = root + "/lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw ImprintError.posix("open the lock file", path) }
        defer { close(fd) } // closing releases the lock
        if Syscall.retrying({ flock(fd, exclusive ? LOCK_EX : LOCK_SH) }) != 0 { throw ImprintError.posix("lock", path) }
        return try body()
    }

    // MARK: Adding

    /// Adds a manifest as a new record. Convenience for `add(_:tree:)` with a record made from `manifest`.
    @discardableResult
    package func add(_ manifest: Manifest, tags: [String] = [], imageDigest: String? = nil) throws -> HistoryEntry {
        var r = BuildRecord(manifest: manifest)
        r.tags = tags
        r.imageDigest = imageDigest
        return try add(r, tree: manifest.tree)
    }

    /// `history add`: one record per manifest file, each carrying `tags`, `imageDigest` and the step records
    /// read from `stepFiles`. Every file is read and parsed before the first record is published (a bad file adds
    /// nothing); `published` hears of each record as it lands.
    @discardableResult
    package func add(manifestFiles: [String], tags: [String], imageDigest: String?, stepFiles: [String],
                    published: (HistoryEntry) -> Void = { _ in }) throws -> [HistoryEntry] {
        let steps = try stepFiles.map { try readFile($0, what: "step record") }
        let records = try manifestFiles.map { path -> (BuildRecord, Tree) in
            let m = try Manifest.parse(try readFile(path, what: "manifest"), source: path)
            var r = BuildRecord(manifest: m)
            r.tags = tags
            r.imageDigest = imageDigest
            for s in steps { try r.addStepRecord(s) }
            return (r, m.tree)
        }
        return try records.map { r, tree in
            let e = try add(r, tree: tree)
            published(e)
            return e
        }
    }

    /// Stores `tree` (only the directory objects not yet present) and `record`, then publishes the record.
    /// - Parameter tree: the build's tree with current digests; `tree.rootDigest` must equal `record.root`.
    @discardableResult
    package func add(_ record: BuildRecord, tree: Tree) throws -> HistoryEntry {
        guard tree.rootDigest == record.root else {
            throw ImprintError.badInput("record root \(record.root) does not match the tree's digest \(tree.rootDigest)")
        }
        return try withLock(exclusive: false) {
            try storeDirectory(tree.root)
            let id = try objects.write(kind: .record, body: record.jsonBytes())
            let entry = HistoryEntry(record: id, of: record)
            try publish(entry)
            return entry
        }
    }

    private func storeDirectory(_ dir: TreeNode) throws {
        for (_, child) in dir.children where child.type == .directory { try storeDirectory(child) }
        if objects.contains(dir.digest) { return }
        let (body, ilen) = DirectoryObject.encode(dir)
        let id = try objects.write(kind: .directory, body: body, identifiedLength: ilen)
        guard id == dir.digest else {
            throw ImprintError.badInput("directory digest \(dir.digest) is stale (its records hash to \(id)); compute the tree's digests first")
        }
    }

    func refName(_ e: HistoryEntry) -> String {
        let n = String(max(0, e.recordedNanos))
        return String(repeating: "0", count: max(0, 19 - n.count)) + n + "-" + e.record.hex
    }

    private func publish(_ entry: HistoryEntry) throws {
        try AtomicFile.write(entry.refBytes, to: recordsDirectory + "/" + refName(entry))
    }

    // MARK: Reading

    /// Every record's summary, newest first. Reads only the small ref files.
    package func entries() throws -> [HistoryEntry] {
        let names = try refNames()
        if let cached = cachedEntries(names) { return cached }
        // Reading and parsing a thousand small files is most of `history list`: on all cores.
        let results = parallelMap(Array(names.reversed())) { try self.entry(refName: $0.0, id: $0.1) }
        var out: [HistoryEntry] = []
        out.reserveCapacity(names.count)
        for r in results {
            if let e = try r.get() { out.append(e) }
        }
        if out.count == names.count { writeSummaryIndex(names: names.map(\.0), newestFirst: out) }
        return out
    }

    /// `records.index`: every ref file's name and summary in one file, so listing reads one file instead of one per
    /// record. A cache only: it is used when it names exactly the ref files present (so an add, import or prune by
    /// any process invalidates it), else rebuilt; nothing else reads it, and a store without it is complete.
    var summaryIndexPath: String { root + "/records.index" }

    private func cachedEntries(_ names: [(String, Digest)]) -> [HistoryEntry]? {
        guard !names.isEmpty, let data = try? FileBytes.read(summaryIndexPath) else { return nil }
        let lines = data.split(separator: 0x0A, omittingEmptySubsequences: true)
        guard lines.count == names.count else { return nil }
        let path = summaryIndexPath
        let parsed = parallelMap(Array(zip(lines, names))) { pair -> HistoryEntry? in
            let (line, (name, id)) = pair
            guard let tab = line.firstIndex(of: 0x09), line[line.startIndex..<tab].elementsEqual(name.utf8),
                  let e = try? HistoryEntry.parse(Array(line[(tab + 1)...]), what: path), e.record == id else { return nil }
            return e
        }
        var out: [HistoryEntry] = []
        out.reserveCapacity(names.count)
        for e in parsed.reversed() {
            guard let e else { return nil }
            out.append(e)
        }
        return out
    }

    private func writeSummaryIndex(names: [String], newestFirst entries: [HistoryEntry]) {
        var bytes: [UInt8] = []
        for (name, e) in zip(names, entries.reversed()) {
            bytes.append(contentsOf: name.utf8)
            bytes.append(0x09)
            bytes.append(contentsOf: e.refBytes.filter { $0 != 0x0A })
            bytes.append(0x0A)
        }
        // Best effort: a read-only store lists from the ref files every time.
        try? AtomicFile.write(bytes, to: summaryIndexPath)
    }

    /// The summary in one ref file; nil when the file has gone (pruned meanwhile).
    private func entry(refName name: String, id: Digest) throws -> HistoryEntry? {
        let path = recordsDirectory + "/" + name
        guard let data = try FileBytes.read(path) else { return nil }
        if let e = try? HistoryEntry.parse(data, what: path), e.record == id { return e }
        // A damaged summary: fall back to the record itself (fsck rewrites the file).
        return HistoryEntry(record: id, of: try record(id))
    }

    /// Ref file names sorted oldest first, with the record id each names.
    func refNames() throws -> [(String, Digest)] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: recordsDirectory) } catch {
            throw ImprintError(.io, "cannot list \(recordsDirectory): \(JSONRead.reason(error))")
        }
        return names.compactMap { n -> (String, Digest)? in
            guard !n.hasPrefix("."), let dash = n.firstIndex(of: "-"), let id = Digest(hex: String(n[n.index(after: dash)...])) else { return nil }
            return (n, id)
        }.sorted { $0.0 < $1.0 }
    }

    /// Reads and verifies a record object.
    package func record(_ id: Digest) throws -> BuildRecord {
        let o = try objects.read(id, kind: .record)
        return try BuildRecord.parse(o.body, what: "history record \(id)")
    }

    /// The records `refs` name, each once, in the order given; every record when `refs` is empty.
    /// - Throws: `notFound` for a ref that names no record.
    package func select(_ refs: [String]) throws -> [HistoryEntry] {
        let all = try entries()
        if refs.isEmpty { return all }
        var seen = Set<Digest>()
        return try refs.map { try resolve($0, in: all) }.filter { seen.insert($0.record).inserted }
    }

    /// Finds one record by reference: `@` or `@~N` (N-th before the newest, `@~0` is the newest), a tag (the
    /// newest record carrying it), or a unique prefix (at least 4 hex digits, `sha256:` optional) of a record id
    /// or a root digest (the newest record with that root).
    /// - Throws: `notFound` when nothing matches, `badInput` when the prefix is ambiguous.
    package func resolve(_ ref: String, in all: [HistoryEntry]? = nil) throws -> HistoryEntry {
        if all == nil {
            // Fast paths that read one ref file instead of all of them.
            if ref == "@" || ref.hasPrefix("@~"), let n = ref == "@" ? 0 : Int(ref.dropFirst(2)), n >= 0 {
                let names = try refNames()
                guard n < names.count else { throw ImprintError(.notFound, "no history record \(ref): the history has \(names.count) records") }
                let (name, id) = names[names.count - 1 - n]
                if let e = try entry(refName: name, id: id) { return e }
            }
            if let d = Digest(hex: ref), let (name, id) = try refNames().first(where: { $0.1 == d }),
               let e = try entry(refName: name, id: id) {
                return e
            }
        }
        let list = try all ?? entries()
        if ref == "@" || ref.hasPrefix("@~") {
            let n = ref == "@" ? 0 : Int(ref.dropFirst(2))
            guard let n, n >= 0 else { throw ImprintError.badInput("invalid reference \(ref): expected @~N") }
            guard n < list.count else { throw ImprintError(.notFound, "no history record \(ref): the history has \(list.count) records") }
            return list[n]
        }
        if let e = list.first(where: { $0.tags.contains(ref) }) { return e }
        var hex = ref.lowercased()
        if hex.hasPrefix("sha256:") { hex = String(hex.dropFirst(7)) }
        guard hex.count >= 4, hex.allSatisfy({ $0.isHexDigit }) else {
            throw ImprintError(.notFound, "no history record matches \(ref) (not a tag, @~N or digest prefix of 4+ hex digits)")
        }
        let byRecord = list.filter { $0.record.hex.hasPrefix(hex) }
        let byRoot = list.filter { $0.root.hex.hasPrefix(hex) }
        let roots = Set(byRoot.map(\.root))
        if byRecord.count == 1 && byRoot.isEmpty { return byRecord[0] }
        if byRecord.isEmpty && roots.count == 1 { return byRoot[0] }
        if byRecord.isEmpty && byRoot.isEmpty { throw ImprintError(.notFound, "no history record matches \(ref)") }
        throw ImprintError.badInput("reference \(ref) is ambiguous: it matches \(byRecord.count) record ids and \(roots.count) root digests")
    }

    /// Reads one directory object's children.
    package func directory(_ id: Digest) throws -> [(name: Bytes, node: TreeNode)] {
        try DirectoryObject.decode(try objects.read(id, kind: .directory))
    }

    /// Rebuilds the whole tree whose root directory object is `root`.
    package func tree(root: Digest) throws -> Tree {
        let node = TreeNode.directory()
        try load(node, id: root)
        node.mode = 0o755
        let t = Tree(root: node)
        t.computeDigests() // sets directory sizes; the digests come out equal to the verified ids
        guard t.rootDigest == root else { throw ImprintError.badInput("history tree \(root) does not hash to its id") }
        return t
    }

    private func load(_ dir: TreeNode, id: Digest) throws {
        dir.digest = id
        for (name, child) in try directory(id) {
            if child.type == .directory { try load(child, id: child.digest) }
            dir.children[name] = child
        }
    }

    /// The manifest of a record, as `Manifest.jsonBytes()` wrote it when it was added.
    package func manifest(for entry: HistoryEntry) throws -> Manifest {
        let r = try record(entry.record)
        return Manifest(tree: try tree(root: r.root), findings: r.findings, metadata: r.metadata)
    }

    // MARK: Diff

    /// Compares two trees by their directory objects, descending only into subtrees whose ids differ.
    package func diff(from a: Digest, to b: Digest) throws -> [HistoryChange] {
        var out: [HistoryChange] = []
        if a != b { try diffDirectories(prefix: [], a, b, &out) }
        return out
    }

    private func diffDirectories(prefix: Bytes, _ a: Digest, _ b: Digest, _ out: inout [HistoryChange]) throws {
        let ca = try directory(a), cb = try directory(b)
        var i = 0, j = 0
        while i < ca.count || j < cb.count {
            if j >= cb.count || (i < ca.count && ca[i].name.lexicographicallyPrecedes(cb[j].name)) {
                try emitAll(.removed, prefix.appendingPath(ca[i].name), ca[i].node, &out); i += 1
            } else if i >= ca.count || cb[j].name.lexicographicallyPrecedes(ca[i].name) {
                try emitAll(.added, prefix.appendingPath(cb[j].name), cb[j].node, &out); j += 1
            } else {
                let path = prefix.appendingPath(ca[i].name)
                let x = ca[i].node, y = cb[j].node
                if x.type == .directory && y.type == .directory {
                    if x.mode != y.mode { out.append(HistoryChange(kind: .modified, path: path, type: y.type)) }
                    if x.digest != y.digest { try diffDirectories(prefix: path, x.digest, y.digest, &out) }
                } else if x.type != y.type {
                    try emitAll(.removed, path, x, &out)
                    try emitAll(.added, path, y, &out)
                } else if !x.sameContent(as: y) || x.size != y.size {
                    out.append(HistoryChange(kind: .modified, path: path, type: y.type))
                }
                i += 1; j += 1
            }
        }
    }

    private func emitAll(_ kind: HistoryChange.Kind, _ path: Bytes, _ node: TreeNode, _ out: inout [HistoryChange]) throws {
        out.append(HistoryChange(kind: kind, path: path, type: node.type))
        if node.type == .directory {
            for (name, child) in try directory(node.digest) { try emitAll(kind, path.appendingPath(name), child, &out) }
        }
    }

    // MARK: Reachability

    /// Every object id reachable from `records` (the records and all their directory objects).
    /// - Parameter missing: called for each referenced object that is absent or unreadable, instead of throwing.
    func reachable(from records: [Digest], missing: ((Digest, Digest, Error) -> Void)? = nil) throws -> Set<Digest> {
        var seen = Set<Digest>()
        for rid in records {
            guard seen.insert(rid).inserted else { continue }
            let root: Digest
            do { root = try record(rid).root } catch {
                if let missing { missing(rid, rid, error); continue } else { throw error }
            }
            var stack = [root]
            while let id = stack.popLast() {
                guard seen.insert(id).inserted else { continue }
                do {
                    for (_, c) in try directory(id) where c.type == .directory { stack.append(c.digest) }
                } catch {
                    if let missing { missing(rid, id, error) } else { throw error }
                }
            }
        }
        return seen
    }
}

/// One difference between two stored trees.
package struct HistoryChange: Sendable, Equatable {
    package enum Kind: String, Sendable { case added, removed, modified }
    package var kind: Kind
    package var path: Bytes
    package var type: EntryType
}

/// `history diff`'s changes: 1 when the two records' trees differ.
extension Array: ExitStatusReporting where Element == HistoryChange {
    package var exitStatus: Int32 { Self.status(ok: isEmpty) }
}
