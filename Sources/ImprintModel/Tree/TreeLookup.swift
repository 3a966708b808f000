extension Tree {
    /// What a path names inside the tree, looked up as the kernel does inside a container's root.
    package enum Lookup {
        case found(TreeNode)
        case missing
        case notDirectory
        case loop
    }

    /// The entry at `path` as `lstat` finds it with the tree as the root: symlinks on the way are followed
    /// (absolute targets from the root, `..` stopping at the root, at most 40), the last one only with `followLast`.
    package func lookup(_ path: [Bytes], followLast: Bool = false) -> Lookup {
        var stack: [TreeNode] = [root]
        var pending = Array(path.reversed())
        var links = 0
        while let c = pending.popLast() {
            if c.isEmpty { continue }
            let cur = stack[stack.count - 1]
            guard cur.type == .directory else { return .notDirectory }
            if c == [0x2E] { continue }
            if c == [0x2E, 0x2E] {
                if stack.count > 1 { stack.removeLast() }
                continue
            }
            guard let child = cur.children[c] else { return .missing }
            if child.type == .symlink && (!pending.isEmpty || followLast) {
                links += 1
                if links > 40 { return .loop }
                let target = child.target ?? []
                if target.first == 0x2F { stack = [root] }
                pending.append(contentsOf: target.pathComponents.reversed())
                continue
            }
            stack.append(child)
        }
        return .found(stack[stack.count - 1])
    }

    /// The entry a process in the container reaches at `path`: symlinks followed everywhere, the last one too
    /// (`/app` a symlink to `/srv/app` reaches the directory). Nil when nothing is there.
    package func reach(_ path: Bytes) -> TreeNode? {
        if case .found(let n) = lookup(path.pathComponents, followLast: true) { return n }
        return nil
    }
}
