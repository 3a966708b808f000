/// One difference between two trees, with both sides.
package struct TreeChange {
    /// The class of a difference. Verify calls `removed` "missing" and `added` "extra".
    package enum Kind: String, CaseIterable, Sendable {
        case added, removed
        case content          // file bytes differ (digest, size)
        case mode             // permission bits
        case type             // file became a directory, a symlink...
        case symlinkTarget = "symlink-target"
        case owner            // uid/gid
        case hardlink         // hard-link target differs
        case mtime
        case xattrs
        case device           // device numbers
    }

    package var kind: Kind
    package var path: Bytes
    /// The left (expected, "A") side; nil for `added`.
    package var left: TreeNode?
    /// The right (actual, "B") side; nil for `removed`.
    package var right: TreeNode?
}

/// Compares two trees, walking only into directories whose digests differ.
package struct TreeComparison {
    /// Also compare uid/gid and hard links (images and tar streams carry them; context manifests do not).
    package var compareOwners = false
    /// Also compare mtimes and xattrs (`diff --metadata`).
    package var compareTimes = false
    /// Entries for which this returns false are left out on both sides (`--only`, `--ignore`, `--include`).
    package var filter: ((Bytes, TreeNode) -> Bool)?
    /// For an added or removed directory, also report every entry below it.
    package var expandDirectories = true

    package init() {}

    /// Directories entered (for tests and progress): identical subtrees are never entered.
    package private(set) var directoriesVisited = 0

    package mutating func compare(_ left: Tree, _ right: Tree) -> [TreeChange] {
        var out: [TreeChange] = []
        let needMeta = compareOwners || compareTimes
        if needMeta {
            left.computeMetaDigests(times: compareTimes)
            right.computeMetaDigests(times: compareTimes)
        }
        compareDirectory(left.root, right.root, prefix: [], into: &out)
        return out
    }

    private func identical(_ l: TreeNode, _ r: TreeNode) -> Bool {
        guard l.sameContent(as: r) else { return false }
        if compareOwners || compareTimes { return l.metaDigest == r.metaDigest }
        return true
    }

    private mutating func compareDirectory(_ l: TreeNode, _ r: TreeNode, prefix: Bytes, into out: inout [TreeChange]) {
        if filter == nil && identical(l, r) { return }
        directoriesVisited += 1
        let lc = l.sortedChildren, rc = r.sortedChildren
        var i = 0, j = 0
        while i < lc.count || j < rc.count {
            let order: Int
            if i >= lc.count { order = 1 } else if j >= rc.count { order = -1 } else if lc[i].name == rc[j].name { order = 0 } else {
                order = lc[i].name.lexicographicallyPrecedes(rc[j].name) ? -1 : 1
            }
            if order < 0 {
                let (name, node) = lc[i]; i += 1
                report(.removed, prefix.appendingPath(name), node, nil, into: &out)
            } else if order > 0 {
                let (name, node) = rc[j]; j += 1
                report(.added, prefix.appendingPath(name), nil, node, into: &out)
            } else {
                let (name, a) = lc[i], b = rc[j].node; i += 1; j += 1
                let path = prefix.appendingPath(name)
                if filter == nil && identical(a, b) { continue }
                compareEntries(path, a, b, into: &out)
            }
        }
    }

    private mutating func compareEntries(_ path: Bytes, _ a: TreeNode, _ b: TreeNode, into out: inout [TreeChange]) {
        if let filter {
            let keepA = filter(path, a), keepB = filter(path, b)
            if !keepA && !keepB {
                if a.type == .directory && b.type == .directory { compareDirectory(a, b, prefix: path, into: &out) }
                return
            }
            if !keepA { report(.added, path, nil, b, into: &out); return }
            if !keepB { report(.removed, path, a, nil, into: &out); return }
        }
        if a.type != b.type {
            out.append(TreeChange(kind: .type, path: path, left: a, right: b))
            // Everything below a directory that is no longer one is gone (or new).
            if a.type == .directory { reportBelow(.removed, path, a, into: &out) }
            if b.type == .directory { reportBelow(.added, path, b, into: &out) }
            return
        }
        if a.canonicalMode != b.canonicalMode { out.append(TreeChange(kind: .mode, path: path, left: a, right: b)) }
        if compareOwners {
            if a.uid != b.uid || a.gid != b.gid { out.append(TreeChange(kind: .owner, path: path, left: a, right: b)) }
            if a.hardlink != b.hardlink, a.type == .file { out.append(TreeChange(kind: .hardlink, path: path, left: a, right: b)) }
        }
        if compareTimes {
            if a.type != .directory && a.mtime != b.mtime { out.append(TreeChange(kind: .mtime, path: path, left: a, right: b)) }
            if (a.xattrs ?? [:]) != (b.xattrs ?? [:]) { out.append(TreeChange(kind: .xattrs, path: path, left: a, right: b)) }
        }
        switch a.type {
        case .directory:
            compareDirectory(a, b, prefix: path, into: &out)
        case .file:
            if a.digest != b.digest || a.size != b.size { out.append(TreeChange(kind: .content, path: path, left: a, right: b)) }
        case .symlink:
            if a.target != b.target { out.append(TreeChange(kind: .symlinkTarget, path: path, left: a, right: b)) }
        case .charDevice, .blockDevice:
            if a.digest != b.digest { out.append(TreeChange(kind: .device, path: path, left: a, right: b)) }
        case .fifo, .socket:
            break
        }
    }

    private func report(_ kind: TreeChange.Kind, _ path: Bytes, _ l: TreeNode?, _ r: TreeNode?, into out: inout [TreeChange]) {
        let node = (l ?? r)!
        if let filter, !filter(path, node) {
            // Filtered out itself, but something below may still be wanted.
            if node.type == .directory { reportBelow(kind, path, node, into: &out) }
            return
        }
        out.append(TreeChange(kind: kind, path: path, left: l, right: r))
        if node.type == .directory && expandDirectories { reportBelow(kind, path, node, into: &out) }
    }

    private func reportBelow(_ kind: TreeChange.Kind, _ path: Bytes, _ dir: TreeNode, into out: inout [TreeChange]) {
        for (name, child) in dir.sortedChildren {
            report(kind, path.appendingPath(name), kind == .removed ? child : nil, kind == .added ? child : nil, into: &out)
        }
    }
}

extension Tree {
    /// Computes `metaDigest` for every node: the content digest plus owners, hard links and, when `times`,
    /// mtimes and xattrs. Lets comparisons of image trees skip subtrees whose metadata is equal as well.
    package func computeMetaDigests(times: Bool) { Tree.meta(root, times: times) }

    @discardableResult
    private static func meta(_ node: TreeNode, times: Bool) -> Digest {
        let h = SHA256()
        var record: [UInt8] = []
        func add(_ n: TreeNode) {
            record.removeAll(keepingCapacity: true)
            record.append(contentsOf: "\(n.type.letter) \(n.canonicalMode) \(n.uid) \(n.gid) ".utf8)
            n.digest.appendHex(to: &record)
            if let hl = n.hardlink { record.append(contentsOf: " h:".utf8); record.append(contentsOf: hl) }
            if times {
                record.append(contentsOf: " t:\(n.mtime ?? -1)".utf8)
                for (k, v) in (n.xattrs ?? [:]).sorted(by: { $0.key < $1.key }) {
                    record.append(contentsOf: " x:\(k)=".utf8); record.append(contentsOf: v)
                }
            }
            h.update(record)
        }
        add(node)
        if node.type == .directory {
            for (name, child) in node.sortedChildren {
                let d = meta(child, times: times)
                h.update(name)
                h.update([0])
                var hex: [UInt8] = []
                d.appendHex(to: &hex)
                h.update(hex)
            }
        }
        let d = h.finish()
        node.metaDigest = d
        return d
    }
}
