/// containerd's layer applier (`archive.Apply` → `applyNaive`, containerd v1.6 `archive/tar.go`, with
/// continuity's `fs.RootPath`) run on an in-memory `Tree` instead of a directory: the tree ends as the
/// runtime's root filesystem does, or the layer is refused where the runtime refuses it.
///
/// Per entry, in the runtime's order: the name is cleaned; its parent is resolved inside the root (symlinks
/// followed, absolute ones from the root, `..` stopping at the root; at most 255 links); the parent is created
/// (mode 0755) when missing and must be a directory; whiteout names are checked and applied; whatever exists at
/// the path is removed unless a directory meets a directory (then only the metadata changes); the entry is
/// created. Hard links share one inode (a mode set through one changes all). A pax global header creates
/// nothing but still removes what its name names. After the last entry, every directory entry of the layer must
/// still resolve to something (the runtime sets its times then).
package final class RuntimeFilesystem {
    package let tree: Tree
    private var layer: Int?
    private var whiteouts = true
    private var source = ""
    /// Paths (resolved, joined) the current layer created: an opaque marker keeps them.
    private var unpacked = Set<Bytes>()
    /// The current layer's directory entries, by cleaned name.
    private var directoryNames: [(name: Bytes, offset: UInt64)] = []
    /// Hard-link groups by member.
    private var inodes: [ObjectIdentifier: Inode] = [:]

    /// The paths that share one inode.
    package final class Inode {
        package var members: [TreeNode]
        package init(_ members: [TreeNode]) { self.members = members }
    }

    /// The kernel's limits: a path (PATH_MAX, with its NUL) and one name (NAME_MAX). A runtime refuses names
    /// beyond them (ENAMETOOLONG), a little earlier for paths, by the length of its own root directory.
    package static let maxPath = 4095
    package static let maxName = 255
    package static let whiteoutPrefix = Array(".wh.".utf8)
    package static let opaqueMarker = Array(".wh..wh..opq".utf8)

    package init(_ tree: Tree) { self.tree = tree }

    package func beginLayer(_ layer: Int?, whiteouts: Bool, source: String) {
        self.layer = layer
        self.whiteouts = whiteouts
        self.source = source
        unpacked = []
        directoryNames = []
    }

    /// The runtime's last step: it sets each directory entry's times through its name, which must still lead
    /// somewhere.
    package func endLayer() throws {
        for (name, offset) in directoryNames {
            let path = try rootPath(name, name: name, offset: offset)
            switch lookup(path) {
            case .found: continue
            case .missing, .notDirectory, .loop:
                throw refusal("the directory no longer exists when the runtime sets its times (containerd refuses the layer)",
                              name: name, offset: offset)
            }
        }
        directoryNames = []
    }

    // MARK: Applying one entry

    package func apply(_ change: LayerChange) throws {
        let name = change.name
        let offset: UInt64
        switch change {
        case .entry(_, _, _, let o), .hardlink(_, _, _, let o), .global(_, let o), .unsupported(_, _, let o): offset = o
        }
        let (dir, base) = GoPath.split(name)
        let parent = try rootPath(dir, name: name, offset: offset)
        var path = parent
        let baseName = GoPath.rooted(base)
        if baseName != [GoPath.slash] { path.append(Array(baseName.dropFirst())) }
        if path.isEmpty { return }  // the root itself: the runtime skips it
        try checkResolved(path, name: name, offset: offset)
        if !parent.isEmpty { try makeParent(parent, name: name, offset: offset) }
        let last = path[path.count - 1]
        let container = Array(path.dropLast())
        if last.starts(with: RuntimeFilesystem.whiteoutPrefix) && last != RuntimeFilesystem.opaqueMarker {
            let original = Array(last.dropFirst(RuntimeFilesystem.whiteoutPrefix.count))
            if original.isEmpty || original == GoPath.dot || original == GoPath.dotdot {
                throw refusal("invalid whiteout name \"\(last.lossyString)\" (containerd refuses the layer)", name: name, offset: offset)
            }
            if whiteouts {
                removeAll(container + [original])
                return
            }
        }
        if whiteouts && last == RuntimeFilesystem.opaqueMarker {
            hideLowerEntries(container)
            return
        }
        var isDirectory = false
        if case .entry(_, let node, _, _) = change, node.type == .directory { isDirectory = true }
        if case .found(let existing) = lookup(path), !(existing.type == .directory && isDirectory) {
            removeAll(path)
        }
        switch change {
        case .entry(_, let node, _, _):
            if node.type == .directory, case .found(let existing) = lookup(path), existing.type == .directory {
                existing.mode = node.mode; existing.uid = node.uid; existing.gid = node.gid; existing.mtime = node.mtime
                if let x = node.xattrs { existing.xattrs = (existing.xattrs ?? [:]).merging(x) { $1 } }
                existing.layer = layer
                existing.implicit = false
            } else {
                if node.type == .symlink && (node.target ?? []).isEmpty {
                    throw refusal("symlink with an empty target (the runtime refuses the layer)", name: name, offset: offset)
                }
                try place(node, at: path, name: name, offset: offset)
            }
            if node.type == .directory { directoryNames.append((name, offset)) }
        case .hardlink(_, let target, let metadata, _):
            try link(target, at: path, metadata: metadata, name: name, offset: offset)
        case .global:
            break
        case .unsupported(_, let flag, _):
            throw refusal(RuntimeFilesystem.unsupportedReason(flag), name: name, offset: offset)
        }
        unpacked.insert(path.joinedPath)
    }

    package static func unsupportedReason(_ flag: UInt8) -> String {
        let shown = flag >= 0x20 && flag < 0x7f ? "'\(Character(Unicode.Scalar(flag)))' (\(flag))" : "\(flag)"
        switch flag {
        case UInt8(ascii: "S"):
            return "GNU sparse entry (type flag \(shown)): containerd, podman and umoci refuse the layer (they unpack only pax-format sparse files)"
        case UInt8(ascii: "7"):
            return "contiguous file (type flag \(shown)): containerd, podman and umoci refuse the layer (GNU tar would extract it as a regular file)"
        default:
            return "type flag \(shown) is no file type: containerd, podman and umoci refuse the layer (GNU tar, bsdtar and Python would extract it as a regular file)"
        }
    }

    private func place(_ node: TreeNode, at path: [Bytes], name: Bytes, offset: UInt64) throws {
        guard case .found(let dir) = lookup(Array(path.dropLast())), dir.type == .directory else {
            throw refusal("its parent is not a directory", name: name, offset: offset)
        }
        node.layer = layer
        node.implicit = false
        dir.children[path[path.count - 1]] = node
    }

    /// `os.Link(target, path)` after containerd's `hardlinkRootPath`, then the entry's owner, mode and time on
    /// the shared inode.
    private func link(_ target: Bytes, at path: [Bytes], metadata: TreeNode, name: Bytes, offset: UInt64) throws {
        let (dir, base) = GoPath.split(target)
        var resolved = try rootPath(dir, name: name, offset: offset)
        if base == GoPath.dotdot {
            if !resolved.isEmpty { resolved.removeLast() }
        } else if !base.isEmpty && base != GoPath.dot {
            resolved.append(base)
        }
        let shown = "\"\(target.lossyString)\""
        let existing: TreeNode
        switch lookup(resolved) {
        case .found(let n) where n.type == .directory:
            throw refusal("hard link to \(shown), a directory (the runtime refuses the layer)", name: name, offset: offset)
        case .found(let n):
            existing = n
        case .missing, .notDirectory, .loop:
            throw refusal("hard link to \(shown), which does not exist (the runtime refuses the layer)", name: name, offset: offset)
        }
        let node = existing.shallowCopy()
        node.hardlink = resolved.joinedPath
        try place(node, at: path, name: name, offset: offset)
        let inode = inodes[ObjectIdentifier(existing)] ?? Inode([existing])
        inode.members.append(node)
        inodes[ObjectIdentifier(existing)] = inode
        inodes[ObjectIdentifier(node)] = inode
        for m in inode.members {
            m.uid = metadata.uid; m.gid = metadata.gid; m.mtime = metadata.mtime
            if m.type != .symlink { m.mode = metadata.mode }
        }
    }

    /// containerd's `mkparent`: missing directories are created 0755; an existing one must be a directory.
    private func makeParent(_ parent: [Bytes], name: Bytes, offset: UInt64) throws {
        var cur = tree.root
        for (i, c) in parent.enumerated() {
            if let next = cur.children[c] {
                guard next.type == .directory else {
                    throw refusal("its parent \"\(Array(parent[...i]).joinedPath.lossyString)\" is not a directory (the runtime refuses the layer)",
                                  name: name, offset: offset)
                }
                cur = next
            } else {
                let d = TreeNode.directory(mode: 0o755)
                d.implicit = true
                d.layer = layer
                cur.children[c] = d
                cur = d
            }
        }
    }

    /// `os.RemoveAll`: the entry and everything below it; nothing when it does not exist.
    private func removeAll(_ path: [Bytes]) {
        guard let last = path.last, case .found(let dir) = lookup(Array(path.dropLast()), followLast: true),
              dir.type == .directory else { return }
        dir.children.removeValue(forKey: last)
    }

    /// The opaque marker: everything in `dir` that the current layer did not create goes (the walk keeps
    /// directories this layer created and looks inside them).
    private func hideLowerEntries(_ dir: [Bytes]) {
        guard case .found(let start) = lookup(dir), start.type == .directory else { return }
        var stack: [(TreeNode, Bytes)] = [(start, dir.joinedPath)]
        while let (node, path) = stack.popLast() {
            for (name, child) in node.sortedChildren {
                let p = path.appendingPath(name)
                if !unpacked.contains(p) {
                    node.children.removeValue(forKey: name)
                } else if child.type == .directory {
                    stack.append((child, p))
                }
            }
        }
    }

    // MARK: Resolving names

    package typealias Lookup = Tree.Lookup

    package func lookup(_ path: [Bytes], followLast: Bool = false) -> Lookup { tree.lookup(path, followLast: followLast) }

    /// continuity's `fs.RootPath(root, path)`: `path` resolved inside the root, every symlink on the way
    /// followed as the runtime follows it (targets joined lexically, then resolved again).
    package func rootPath(_ path: Bytes, name: Bytes, offset: UInt64) throws -> [Bytes] {
        if path.isEmpty { return [] }
        if let fast = plainPath(path) { return fast }
        var p = path
        var links = 0
        while true {
            let before = links
            let next = try walkLinks(p, links: &links, name: name, offset: offset)
            p = next
            if before == links {
                let rooted = GoPath.rooted(next)
                if p == rooted { return GoPath.components(rooted) }
                p = rooted
            }
        }
    }

    /// The common case, without the general algorithm: every existing component of the cleaned path is a
    /// directory (what is missing resolves to itself). Nil when a symlink or a file is on the way.
    private func plainPath(_ path: Bytes) -> [Bytes]? {
        var comps = GoPath.components(path)
        while comps.first == GoPath.dotdot { comps.removeFirst() }
        var cur: TreeNode? = tree.root
        for c in comps {
            if c == GoPath.dot || c == GoPath.dotdot { return nil }
            guard let dir = cur else { continue }
            guard let next = dir.children[c] else { cur = nil; continue }
            guard next.type == .directory else { return nil }
            cur = next
        }
        return comps
    }

    private func walkLinks(_ path: Bytes, links: inout Int, name: Bytes, offset: UInt64) throws -> Bytes {
        let comps = GoPath.components(path)
        if comps.isEmpty { return [GoPath.slash] }
        var dir: Bytes
        var i = 0
        if GoPath.isAbsolute(path) {
            dir = [GoPath.slash]
        } else {
            dir = try walkLink(comps[0], links: &links, name: name, offset: offset).path
            i = 1
        }
        while i < comps.count {
            let (next, isLink) = try walkLink(GoPath.join(dir, comps[i]), links: &links, name: name, offset: offset)
            dir = !isLink || GoPath.isAbsolute(next) ? next : GoPath.join(dir, next)
            i += 1
        }
        return dir
    }

    private func walkLink(_ path: Bytes, links: inout Int, name: Bytes, offset: UInt64) throws -> (path: Bytes, isLink: Bool) {
        if links > 255 { throw refusal("too many levels of symbolic links (the runtime refuses the layer)", name: name, offset: offset) }
        let p = GoPath.rooted(path)
        if p == [GoPath.slash] { return (p, false) }
        switch lookup(GoPath.components(p)) {
        case .missing:
            return (p, false)
        case .notDirectory:
            throw refusal("a component of its path is not a directory (the runtime refuses the layer)", name: name, offset: offset)
        case .loop:
            throw refusal("too many levels of symbolic links (the runtime refuses the layer)", name: name, offset: offset)
        case .found(let n):
            guard n.type == .symlink else { return (p, false) }
            links += 1
            return (n.target ?? [], true)
        }
    }

    // MARK: Limits and messages

    /// Refuses a name (or link target) the kernel cannot create: longer than PATH_MAX, or a component longer
    /// than NAME_MAX. This also bounds the depth of every tree a tar stream can build.
    package static func checkLength(_ name: Bytes, what: String, raw: Bytes, source: String, offset: UInt64) throws {
        var longest = 0, run = 0
        for c in name {
            if c == GoPath.slash { run = 0 } else { run += 1; longest = max(longest, run) }
        }
        if name.count > maxPath || longest > maxName {
            let shown = raw.count > 80 ? Array(raw.prefix(60)).lossyString + "…" : raw.lossyString
            let limit = name.count > maxPath ? "\(name.count) bytes, over the kernel's \(maxPath + 1) (PATH_MAX)"
                : "a name of \(longest) bytes, over the kernel's \(maxName) (NAME_MAX)"
            throw ImprintError.badInput("cannot apply \(source): the \(what) of entry \"\(shown)\" at offset \(offset) is \(limit): no runtime can create it")
        }
    }

    private func checkResolved(_ path: [Bytes], name: Bytes, offset: UInt64) throws {
        let length = path.reduce(0) { $0 + $1.count + 1 } - 1
        if length > RuntimeFilesystem.maxPath {
            throw refusal("it resolves to a path of \(length) bytes, over the kernel's \(RuntimeFilesystem.maxPath + 1) (PATH_MAX)", name: name, offset: offset)
        }
    }

    private func refusal(_ why: String, name: Bytes, offset: UInt64) -> ImprintError {
        let shown = name.count > 80 ? Array(name.prefix(60)).lossyString + "…" : name.lossyString
        return ImprintError.badInput("cannot apply \(source): entry \"\(shown)\" at offset \(offset): \(why)")
    }
}
