/// A path inside a tree, in the one form every tree, manifest, layer and report uses: components joined by single
/// slashes, relative to the root, no `.` or `..`, no leading or trailing slash (the root is empty). The
/// initialisers are the only places paths are normalised, so a `TreePath` is always in that form.
package struct TreePath: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The normalised path's bytes (names need not be UTF-8).
    package let bytes: Bytes

    /// The root.
    package static let root = TreePath(normalised: [])

    private init(normalised: Bytes) { bytes = normalised }

    /// A path inside a root, as the kernel resolves it there: empty and `.` components dropped, `..` removes the
    /// component before it and stays at the root when there is none (`/../app/./x` is `app/x`).
    package init(_ path: Bytes) {
        var out: [Bytes] = []
        for c in path.pathComponents where c != [0x2E] {
            if c == [0x2E, 0x2E] { if !out.isEmpty { out.removeLast() }; continue }
            out.append(c)
        }
        bytes = out.joinedPath
    }

    /// `init(_:)` for a path given as text (an option, a configured stamp path, a mount point).
    package init(_ path: String) { self.init(Array(path.utf8)) }

    /// A tar entry's name as container runtimes apply it: `init(_:)`, except that a `..` climbing above the root
    /// is an attack or a broken archive, not something to clamp.
    /// - Throws: `badInput` naming the entry and `source` when it would leave the root.
    package init(tarEntry path: Bytes, source: String) throws {
        var depth = 0
        for c in path.pathComponents where c != [0x2E] {
            depth += c == [0x2E, 0x2E] ? -1 : 1
            if depth < 0 { throw ImprintError.badInput("\(source): tar entry \"\(path.lossyString)\" escapes the root with ..") }
        }
        self.init(path)
    }

    package var isRoot: Bool { bytes.isEmpty }
    package var components: [Bytes] { bytes.pathComponents }
    /// The path as text (invalid UTF-8 replaced; for display and for paths imprint wrote itself).
    package var string: String { bytes.lossyString }
    /// `/` and the path, as messages show paths inside an image or container.
    package var absolute: String { "/" + string }
    package var description: String { string }

    /// `self/other`.
    package func appending(_ other: TreePath) -> TreePath { TreePath(normalised: bytes.appendingPath(other.bytes)) }

    /// The directory holding this path (nil for the root).
    package var parent: TreePath? {
        guard !isRoot else { return nil }
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return .root }
        return TreePath(normalised: Array(bytes[..<slash]))
    }

    /// True when `self` is `other` or lies below it.
    package func isWithin(_ other: TreePath) -> Bool { bytes.isPath(under: other.bytes) }

    /// Byte order, the order of a tree's entries.
    package static func < (a: TreePath, b: TreePath) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}

extension Tree {
    /// The node at `path`, if any.
    package func node(at path: TreePath) -> TreeNode? { node(at: path.bytes) }
    /// The subtree rooted at `path`, if it is a directory.
    package func subtree(at path: TreePath) -> Tree? { subtree(at: path.bytes) }
}
