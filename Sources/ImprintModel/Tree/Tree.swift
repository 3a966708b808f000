/// The kind of a tree entry. The raw value is the name used in manifests and reports.
package enum EntryType: String, Sendable, CaseIterable, Codable {
    case file, directory, symlink, fifo
    case charDevice = "char-device"
    case blockDevice = "block-device"
    case socket

    /// The one-letter code used in the canonical digest form; the same letters as GNU find's `%y`.
    package var letter: UInt8 {
        switch self {
        case .file: return UInt8(ascii: "f")
        case .directory: return UInt8(ascii: "d")
        case .symlink: return UInt8(ascii: "l")
        case .fifo: return UInt8(ascii: "p")
        case .charDevice: return UInt8(ascii: "c")
        case .blockDevice: return UInt8(ascii: "b")
        case .socket: return UInt8(ascii: "s")
        }
    }
}

/// Facts a feature keeps about an entry beside the model's own fields (`TreeNode.facts`).
package protocol EntryFacts: AnyObject, Sendable {}

/// One entry of a tree: a file, directory, symlink or special file.
///
/// `digest` means: SHA-256 of the content for a file, SHA-256 of the target text for a symlink, SHA-256 of
/// `"<major>,<minor>"` for a device, SHA-256 of nothing for a FIFO, and the Merkle digest of the children for a
/// directory (computed by `Tree.computeDigests()`).
package final class TreeNode {
    package var type: EntryType
    /// Permission bits including setuid, setgid and sticky (`mode & 0o7777`).
    package var mode: UInt32
    package var size: UInt64
    package var digest: Digest
    /// Symlink target text.
    package var target: Bytes?
    /// For an entry that came from a tar hard link: the path it links to.
    package var hardlink: Bytes?
    package var uid: UInt32 = 0
    package var gid: UInt32 = 0
    /// Seconds since the epoch, when the source has them (directories, tars). Never part of a digest.
    package var mtime: Int64?
    /// For entries walked from a live filesystem: the later of mtime and ctime, in nanoseconds since the epoch (when
    /// the entry last changed in any way). Never part of a digest.
    package var changedNanos: Int64?
    /// The modification time in nanoseconds, for a walked file when asked for (`ContextWalker.recordFileTimes`).
    /// Never part of a digest: it is what a builder's cache compares instead of the content.
    package var mtimeNanos: Int64?
    package var xattrs: [String: Bytes]?
    package var devMajor: UInt32 = 0
    package var devMinor: UInt32 = 0
    /// Index of the image layer that last wrote this entry, when the tree was flattened from an image.
    package var layer: Int?
    /// Digest over content plus owners/hard links (and times when asked); see `Tree.computeMetaDigests`.
    package var metaDigest: Digest?
    /// What a streaming source kept of this entry for a feature that cannot read the stream again: the feature
    /// declares its own kind and reads it through an extension of its own (`PythonFacts`: a `.pyc`'s header and a
    /// `.py`'s source hashes; `CapturedFile`: imprint's own small files). One kind per entry; immutable, so a copied
    /// node shares it and never changes its original. Never part of a digest.
    package var facts: (any EntryFacts)?
    /// A directory that exists only because something below it does (no entry of its own was seen).
    package var implicit = false
    /// The children by name. Trees built by `ContextWalker` keep their children only as a sorted array (built once
    /// per directory); this dictionary is then made on first use, so walks, digests and manifests never pay for it.
    package var children: [Bytes: TreeNode] {
        get {
            if let childMap { return childMap }
            let map = makeChildMap()
            childMap = map
            return map
        }
        set {
            childMap = newValue
            sortedCache = nil
        }
        _modify {
            if childMap == nil { childMap = makeChildMap() }
            sortedCache = nil
            // Moved out while it is changed so it stays uniquely referenced (no copy on write).
            var map = childMap.take()!
            defer { childMap = map }
            yield &map
        }
    }
    /// When non-nil, the truth about the children (at least one of `childMap` and `sortedCache` is non-nil).
    private var childMap: [Bytes: TreeNode]? = [:]
    private var sortedCache: [(name: Bytes, node: TreeNode)]?

    private func makeChildMap() -> [Bytes: TreeNode] {
        guard let sortedCache else { return [:] }
        var map = [Bytes: TreeNode](minimumCapacity: sortedCache.count)
        for (name, node) in sortedCache { map[name] = node }
        return map
    }

    /// Replaces the children with `sorted`, which must be sorted by name bytes with no name twice.
    package func setSortedChildren(_ sorted: [(name: Bytes, node: TreeNode)]) {
        sortedCache = sorted
        childMap = nil
    }

    /// The number of children, without making the dictionary.
    package var childCount: Int { sortedCache?.count ?? childMap?.count ?? 0 }

    package init(type: EntryType, mode: UInt32, size: UInt64 = 0, digest: Digest = .empty, target: Bytes? = nil) {
        self.type = type
        self.mode = mode & 0o7777
        self.size = size
        self.digest = digest
        self.target = target
    }

    package static func directory(mode: UInt32 = 0o755) -> TreeNode { TreeNode(type: .directory, mode: mode) }

    package static func symlink(_ target: Bytes) -> TreeNode {
        TreeNode(type: .symlink, mode: 0o777, size: UInt64(target.count), digest: SHA256.hash(target), target: target)
    }

    package static func device(_ type: EntryType, mode: UInt32, major: UInt32, minor: UInt32) -> TreeNode {
        let n = TreeNode(type: type, mode: mode, digest: SHA256.hash(Array("\(major),\(minor)".utf8)))
        n.devMajor = major
        n.devMinor = minor
        return n
    }

    /// Children sorted by name bytes.
    package var sortedChildren: [(name: Bytes, node: TreeNode)] {
        if let sortedCache { return sortedCache }
        let sorted = (childMap ?? [:]).sorted { $0.key.lexicographicallyPrecedes($1.key) }.map { (name: $0.key, node: $0.value) }
        sortedCache = sorted
        return sorted
    }

    /// A copy of this node without its children.
    package func shallowCopy() -> TreeNode {
        let n = TreeNode(type: type, mode: mode, size: size, digest: digest, target: target)
        n.hardlink = hardlink; n.uid = uid; n.gid = gid; n.mtime = mtime; n.xattrs = xattrs; n.changedNanos = changedNanos
        n.devMajor = devMajor; n.devMinor = devMinor; n.layer = layer; n.implicit = implicit
        n.facts = facts
        return n
    }

    /// True when type, mode and digest agree: for directories this means the whole subtree is identical.
    package func sameContent(as other: TreeNode) -> Bool {
        type == other.type && canonicalMode == other.canonicalMode && digest == other.digest
    }

    /// The mode as it enters the digest: symlink permissions mean nothing on Linux and are always 0777.
    package var canonicalMode: UInt32 { type == .symlink ? 0o777 : mode }
}

/// A tree of entries rooted at an unnamed directory, with Merkle directory digests.
///
/// Every source imprint reads (a context directory, a tar stream, an image's flattened layers, a manifest, a
/// history record) produces one of these; verify and diff compare two of them.
package final class Tree {
    package let root: TreeNode
    /// For the trees of a step's artifacts: the content digest of the regular file each symlink points to, by the
    /// symlink's path (in-toto records a symlink so; one to a directory, or to nothing, is not recorded).
    package var symlinkTargets: [Bytes: Digest] = [:]

    package init(root: TreeNode = .directory()) { self.root = root }

    /// The Merkle digest of the root: the fingerprint. Valid after `computeDigests()`.
    package var rootDigest: Digest { root.digest }

    package func node(at path: Bytes) -> TreeNode? {
        var cur = root
        for comp in path.pathComponents {
            guard cur.type == .directory, let next = cur.children[comp] else { return nil }
            cur = next
        }
        return cur
    }

    /// Inserts `node` at `path`, creating implicit parent directories (mode 0755) as needed.
    ///
    /// Replacing a directory with a directory keeps the existing children (as a tar layer does); replacing it
    /// with anything else drops them.
    @discardableResult
    package func insert(_ path: Bytes, _ node: TreeNode) -> TreeNode {
        let comps = path.pathComponents
        guard let last = comps.last else {
            // The root itself: only its metadata can change.
            if node.type == .directory { root.mode = node.mode; root.mtime = node.mtime; root.layer = node.layer }
            return root
        }
        var cur = root
        for comp in comps.dropLast() {
            if let next = cur.children[comp], next.type == .directory {
                cur = next
            } else {
                let dir = TreeNode.directory()
                dir.implicit = true
                dir.layer = node.layer
                cur.children[comp] = dir
                cur = dir
            }
        }
        if node.type == .directory, let existing = cur.children[last], existing.type == .directory {
            node.children = existing.children
        }
        cur.children[last] = node
        return node
    }

    /// Removes the entry at `path` and everything below it. Returns the removed node.
    @discardableResult
    package func remove(_ path: Bytes) -> TreeNode? {
        let comps = path.pathComponents
        guard let last = comps.last else { return nil }
        guard let parent = node(at: Array(comps.dropLast()).joinedPath), parent.type == .directory else { return nil }
        return parent.children.removeValue(forKey: last)
    }

    /// Computes every directory's Merkle digest bottom-up (see `schemas/DIGEST.md`).
    package func computeDigests() { Tree.computeDigest(root) }

    private static func computeDigest(_ dir: TreeNode) {
        let h = SHA256()
        var record: [UInt8] = []
        record.reserveCapacity(256)
        computeDigest(dir, hasher: h, record: &record)
    }

    /// Bottom-up without recursion (a tree may be as deep as its longest path allows): each directory is digested
    /// after all directories below it.
    private static func computeDigest(_ dir: TreeNode, hasher h: SHA256, record: inout [UInt8]) {
        var stack: [(node: TreeNode, expanded: Bool)] = [(dir, false)]
        while let (node, expanded) = stack.popLast() {
            if expanded {
                digestDirectory(node, hasher: h, record: &record)
                continue
            }
            stack.append((node, true))
            for (_, child) in node.sortedChildren.reversed() where child.type == .directory { stack.append((child, false)) }
        }
    }

    /// Sets the digest and size of `dir` from its children, whose digests must be final.
    package static func digestDirectory(_ dir: TreeNode, hasher h: SHA256, record: inout [UInt8]) {
        var total: UInt64 = 0
        for (name, child) in dir.sortedChildren {
            Tree.canonicalRecord(name: name, node: child, into: &record)
            h.update(record)
            // Saturating: sizes come from untrusted sources (tar headers, manifests) and only inform reports.
            let add = child.type == .directory || child.type == .file ? child.size : 0
            let (sum, overflow) = total.addingReportingOverflow(add)
            total = overflow ? .max : sum
        }
        dir.digest = h.finish()
        dir.size = total
    }

    /// The canonical record of one child inside its directory's digest input:
    /// `<type letter> <mode as 4 octal digits> <64 hex digest> <name>\0`.
    package static func canonicalRecord(name: Bytes, node: TreeNode, into record: inout [UInt8]) {
        record.removeAll(keepingCapacity: true)
        record.append(node.type.letter)
        record.append(0x20)
        appendOctalMode(node.canonicalMode, to: &record)
        record.append(0x20)
        node.digest.appendHex(to: &record)
        record.append(0x20)
        record.append(contentsOf: name)
        record.append(0)
    }

    /// Visits every entry below the root depth-first, children in name order, parents before children.
    package func walk(_ body: (Bytes, TreeNode) throws -> Void) rethrows {
        try Tree.walk(root, prefix: [], body)
    }

    /// Pre-order without recursion: a stack of directory iterators.
    private static func walk(_ dir: TreeNode, prefix: Bytes, _ body: (Bytes, TreeNode) throws -> Void) rethrows {
        var stack: [(prefix: Bytes, children: [(name: Bytes, node: TreeNode)], next: Int)] = [(prefix, dir.sortedChildren, 0)]
        while !stack.isEmpty {
            let top = stack.count - 1
            if stack[top].next == stack[top].children.count { stack.removeLast(); continue }
            let (name, child) = stack[top].children[stack[top].next]
            stack[top].next += 1
            let path = stack[top].prefix.appendingPath(name)
            try body(path, child)
            if child.type == .directory { stack.append((path, child.sortedChildren, 0)) }
        }
    }

    /// Like `walk`, without a new path array per entry: `path` is one buffer, changed after `body` returns (a body
    /// that keeps it keeps a copy). `nameStart` is where the entry's own name begins in `path`. Returning false
    /// from `body` skips what lies below that entry.
    package func walkEntries(_ body: (_ path: [UInt8], _ nameStart: Int, _ node: TreeNode) -> Bool) {
        var path: [UInt8] = []
        path.reserveCapacity(512)
        Tree.walkEntries(root, path: &path, body)
    }

    private static func walkEntries(_ dir: TreeNode, path: inout [UInt8],
                                    _ body: (_ path: [UInt8], _ nameStart: Int, _ node: TreeNode) -> Bool) {
        let base = path.count
        for (name, child) in dir.sortedChildren {
            if base > 0 { path.append(UInt8(ascii: "/")) }
            let nameStart = path.count
            path.append(contentsOf: name)
            if body(path, nameStart, child) && child.type == .directory { walkEntries(child, path: &path, body) }
            path.removeSubrange(base...)
        }
    }

    /// A part of the walk that can be visited on its own: one entry, and everything below it when `withSubtree`.
    package struct WalkPiece {
        package let path: [UInt8]
        package let nameStart: Int
        package let node: TreeNode
        package let withSubtree: Bool
    }

    /// The walk cut into at least `target` pieces when the tree allows, in walk order: visiting the pieces one
    /// after another (`walkEntries(of:)`) visits what `walkEntries` does. Directories are split level by level.
    package func walkPieces(target: Int) -> [WalkPiece] {
        var pieces = root.sortedChildren.map { WalkPiece(path: $0.name, nameStart: 0, node: $0.node, withSubtree: true) }
        while pieces.count < target && pieces.contains(where: { $0.withSubtree && $0.node.type == .directory && $0.node.childCount > 0 }) {
            var next: [WalkPiece] = []
            for p in pieces {
                guard p.withSubtree && p.node.type == .directory && p.node.childCount > 0 else { next.append(p); continue }
                next.append(WalkPiece(path: p.path, nameStart: p.nameStart, node: p.node, withSubtree: false))
                for (name, child) in p.node.sortedChildren {
                    next.append(WalkPiece(path: p.path + [UInt8(ascii: "/")] + name, nameStart: p.path.count + 1, node: child, withSubtree: true))
                }
            }
            pieces = next
        }
        return pieces
    }

    /// `walkEntries` over one piece.
    package func walkEntries(of piece: WalkPiece, _ body: (_ path: [UInt8], _ nameStart: Int, _ node: TreeNode) -> Bool) {
        guard body(piece.path, piece.nameStart, piece.node), piece.withSubtree, piece.node.type == .directory else { return }
        var path = piece.path
        path.reserveCapacity(512)
        Tree.walkEntries(piece.node, path: &path, body)
    }

    /// All entries in walk order.
    package var entries: [(path: Bytes, node: TreeNode)] {
        var out: [(Bytes, TreeNode)] = []
        walk { out.append(($0, $1)) }
        return out
    }

    /// The subtree at `path` as a tree of its own (sharing nodes), or nil when absent or not a directory.
    package func subtree(at path: Bytes) -> Tree? {
        guard let n = node(at: path), n.type == .directory else { return nil }
        return Tree(root: n)
    }

    /// Counts of entries by type and the total size of regular files.
    package var statistics: (files: Int, directories: Int, symlinks: Int, other: Int, bytes: UInt64) {
        var f = 0, d = 0, l = 0, o = 0
        var bytes: UInt64 = 0
        // Paths are not needed: visits the nodes without building them (and without recursion).
        var pending = [root]
        while let dir = pending.popLast() {
            for (_, n) in dir.sortedChildren {
                switch n.type {
                case .file:
                    f += 1
                    let (sum, overflow) = bytes.addingReportingOverflow(n.size)
                    bytes = overflow ? .max : sum
                case .directory: d += 1; pending.append(n)
                case .symlink: l += 1
                default: o += 1
                }
            }
        }
        return (f, d, l, o, bytes)
    }
}


/// Appends `octalMode(mode)` (four octal digits of the permission bits) without building a String.
@inline(__always)
package func appendOctalMode(_ mode: UInt32, to out: inout [UInt8]) {
    let m = mode & 0o7777
    out.append(0x30 + UInt8((m >> 9) & 7))
    out.append(0x30 + UInt8((m >> 6) & 7))
    out.append(0x30 + UInt8((m >> 3) & 7))
    out.append(0x30 + UInt8(m & 7))
}
