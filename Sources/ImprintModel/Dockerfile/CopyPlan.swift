import Foundation

/// Where each build-context file lands in the image: the final stage's `COPY`/`ADD` instructions applied, in
/// order, to the files the builder is sent (the fingerprint's tree). A directory source copies its contents; a file
/// goes to `DEST/name` when the destination is a directory (ends with `/`, or several sources or a wildcard), else
/// to `DEST`; `--parents` keeps the source path; `--chmod` sets the mode; `--exclude` leaves paths out; a later
/// instruction overwrites an earlier one's file at the same place.
package struct CopyPlan {
    package struct Placement {
        /// Absolute path in the image, without the leading slash.
        package var imagePath: Bytes
        /// The context path it comes from.
        package var contextPath: Bytes
        package var node: TreeNode
        /// Index of the instruction in `dockerfile.copies`.
        package var copy: Int
        /// The mode the instruction gives it (`--chmod`), else the context's.
        package var mode: UInt32
    }

    package var dockerfile: Dockerfile
    /// Image path → placement (the last instruction that wrote it).
    package var placements: [Bytes: Placement] = [:]
    /// Destination directories that receive a whole directory's contents (extras inside them are reported).
    package var wholeDirectories: [(imagePath: Bytes, copy: Int)] = []
    /// Source patterns that matched nothing (the builder fails on these).
    package var unmatched: [(copy: Int, source: String)] = []

    package init(dockerfile: Dockerfile, context tree: Tree) throws {
        self.dockerfile = dockerfile
        var index: [Bytes: TreeNode] = [:]
        var paths: [Bytes] = []
        tree.walk { p, n in index[p] = n; paths.append(p) }
        for (ci, c) in dockerfile.copies.enumerated() {
            let excludes = try c.excludes.isEmpty ? nil : DockerIgnore.parse(Array(c.excludes.joined(separator: "\n").utf8), file: "--exclude").checked()
            let wildcard = c.sources.contains(where: CopyPlan.hasMeta)
            let destIsDir = c.destination.hasSuffix("/") || c.sources.count > 1 || wildcard
            let dest = TreePath(c.destination).bytes
            for source in c.sources {
                var matches: [Bytes]
                if source == "." {
                    matches = [[]]
                } else if CopyPlan.hasMeta(source) {
                    matches = paths.filter { CopyPlan.goMatch(Array(source.utf8), $0) }
                } else {
                    let s = Array(source.utf8)
                    matches = index[s] != nil ? [s] : []
                }
                if matches.isEmpty { unmatched.append((ci, source)); continue }
                for m in matches {
                    let isDir = m.isEmpty || index[m]?.type == .directory
                    if isDir {
                        // The directory's contents (with --parents, under its own path).
                        let target = c.parents && !m.isEmpty ? dest.appendingPath(m) : dest
                        wholeDirectories.append((target, ci))
                        for p in paths where !p.isEmpty && (m.isEmpty || p.isPath(under: m)) && p != m {
                            let rel = m.isEmpty ? p : Array(p[(m.count + 1)...])
                            try place(p, at: target.appendingPath(rel), copy: ci, c: c, index: index, excludes: excludes)
                        }
                    } else {
                        let name = m.split(separator: 0x2F).last.map(Array.init) ?? m
                        let target = c.parents ? dest.appendingPath(m) : (destIsDir ? dest.appendingPath(name) : dest)
                        try place(m, at: target, copy: ci, c: c, index: index, excludes: excludes)
                    }
                }
            }
        }
    }

    private mutating func place(_ contextPath: Bytes, at imagePath: Bytes, copy: Int, c: Dockerfile.Copy,
                                index: [Bytes: TreeNode], excludes: DockerIgnore?) throws {
        guard let node = index[contextPath] else { return }
        if let excludes, try excludes.matches(contextPath, parent: nil).excluded { return }
        let mode = c.chmod ?? (node.mode & 0o7777)
        placements[imagePath] = Placement(imagePath: imagePath, contextPath: contextPath, node: node, copy: copy, mode: mode)
    }

    /// The expected image tree: every placed entry (files, symlinks, and the directories the copies create).
    package func expectedTree() -> Tree {
        let t = Tree()
        for (path, p) in placements.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            let n = p.node.shallowCopy()
            n.mode = (n.mode & ~0o7777) | p.mode
            _ = t.insert(path, n)
        }
        t.computeDigests()
        return t
    }

    package static func hasMeta(_ s: String) -> Bool { s.contains { $0 == "*" || $0 == "?" || $0 == "[" } }

    /// Go's `filepath.Match` for slash-separated paths: `*` any run of non-`/`, `?` one non-`/`, `[…]` classes
    /// with ranges and `^`/`!` negation, `\` escapes.
    package static func goMatch(_ pattern: Bytes, _ name: Bytes) -> Bool {
        var p = 0, n = 0
        var starP = -1, starN = -1
        while n < name.count {
            if p < pattern.count {
                let c = pattern[p]
                if c == UInt8(ascii: "*") {
                    starP = p; starN = n; p += 1; continue
                }
                if c == UInt8(ascii: "?") && name[n] != 0x2F { p += 1; n += 1; continue }
                if c == UInt8(ascii: "[") {
                    if let (ok, next) = matchClass(pattern, p, name[n]), ok, name[n] != 0x2F { p = next; n += 1; continue }
                } else if c == UInt8(ascii: "\\") && p + 1 < pattern.count {
                    if pattern[p + 1] == name[n] { p += 2; n += 1; continue }
                } else if c == name[n] {
                    p += 1; n += 1; continue
                }
            }
            // Backtrack: let the last star take one more character (never a separator).
            if starP >= 0 && name[starN] != 0x2F {
                starN += 1; n = starN; p = starP + 1; continue
            }
            return false
        }
        while p < pattern.count && pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }

    package static func matchClass(_ pattern: Bytes, _ start: Int, _ ch: UInt8) -> (Bool, Int)? {
        var i = start + 1
        var negate = false
        if i < pattern.count && (pattern[i] == UInt8(ascii: "^") || pattern[i] == UInt8(ascii: "!")) { negate = true; i += 1 }
        var matched = false
        var first = true
        while i < pattern.count && (pattern[i] != UInt8(ascii: "]") || first) {
            first = false
            var lo = pattern[i]
            if lo == UInt8(ascii: "\\") && i + 1 < pattern.count { i += 1; lo = pattern[i] }
            var hi = lo
            if i + 2 < pattern.count && pattern[i + 1] == UInt8(ascii: "-") && pattern[i + 2] != UInt8(ascii: "]") {
                hi = pattern[i + 2]
                if hi == UInt8(ascii: "\\") && i + 3 < pattern.count { hi = pattern[i + 3]; i += 1 }
                i += 2
            }
            if lo <= ch && ch <= hi { matched = true }
            i += 1
        }
        guard i < pattern.count else { return nil }
        return (matched != negate, i + 1)
    }
}

/// `fingerprint --against REF` with a Dockerfile: for each COPY/ADD from the context, whether its inputs changed
/// since REF (so its layer, and every later one, must be rebuilt) and which files cause it.
package struct CachePrediction: Sendable {
    package struct Step: Sendable {
        package var line: Int
        package var instruction: String
        /// Context files of this instruction that were added, removed or changed since REF.
        package var changed: [(path: String, change: String)]
        /// True when an earlier instruction already rebuilds (its cache key changes everything after it).
        package var afterAMiss: Bool
        package var rebuilds: Bool { !changed.isEmpty || afterAMiss }
    }

    package var steps: [Step]

    package init(dockerfile: Dockerfile, current: Tree, previous: Tree) throws {
        let now = try CopyPlan(dockerfile: dockerfile, context: current)
        let then = try CopyPlan(dockerfile: dockerfile, context: previous)
        func inputs(_ plan: CopyPlan, _ copy: Int) -> [Bytes: TreeNode] {
            var out: [Bytes: TreeNode] = [:]
            for p in plan.placements.values where p.copy == copy && p.node.type != .directory { out[p.contextPath] = p.node }
            return out
        }
        var steps: [Step] = []
        var missed = false
        for (i, c) in dockerfile.copies.enumerated() {
            let a = inputs(then, i), b = inputs(now, i)
            var changed: [(String, String)] = []
            for (path, node) in b {
                if let old = a[path] {
                    if !old.sameContent(as: node) || (old.mode & 0o7777) != (node.mode & 0o7777) { changed.append((path.lossyString, "changed")) }
                } else {
                    changed.append((path.lossyString, "added"))
                }
            }
            for path in a.keys where b[path] == nil { changed.append((path.lossyString, "removed")) }
            changed.sort { $0.0 < $1.0 }
            steps.append(Step(line: c.line, instruction: c.instruction, changed: changed, afterAMiss: missed))
            if !changed.isEmpty { missed = true }
        }
        self.steps = steps
    }

    package func text() -> [String] {
        steps.map { s in
            let head = "line \(s.line) `\(s.instruction)`"
            if !s.changed.isEmpty {
                let files = s.changed.prefix(5).map { "\($0.path) (\($0.change))" }.joined(separator: ", ") + (s.changed.count > 5 ? ", …" : "")
                return "\(head): cache miss, \(s.changed.count) input\(s.changed.count == 1 ? "" : "s") changed: \(files)"
            }
            return s.afterAMiss ? "\(head): rebuilds (an earlier instruction missed the cache); its own inputs are unchanged"
                                : "\(head): inputs unchanged, the cached layer can be reused"
        }
    }
}
