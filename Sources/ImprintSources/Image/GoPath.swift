/// Go's `path/filepath` functions on Unix, on raw bytes (names need not be UTF-8), as container runtimes apply
/// them to tar entry names and link targets.
package enum GoPath {
    package static let slash = UInt8(ascii: "/")
    package static let dot: Bytes = [UInt8(ascii: ".")]
    package static let dotdot: Bytes = [UInt8(ascii: "."), UInt8(ascii: ".")]

    /// The non-empty components of `path` ("a//b/" has two).
    package static func components(_ path: Bytes) -> [Bytes] {
        path.split(separator: slash, omittingEmptySubsequences: true).map { Array($0) }
    }

    /// `filepath.Clean`.
    package static func clean(_ path: Bytes) -> Bytes {
        if path.isEmpty { return dot }
        let rooted = path[0] == slash
        var out: [Bytes] = []
        var leadingDotdots = 0
        for c in components(path) {
            if c == dot { continue }
            if c == dotdot {
                if out.count > leadingDotdots { out.removeLast() } else if !rooted { out.append(dotdot); leadingDotdots += 1 }
                continue
            }
            out.append(c)
        }
        if out.isEmpty { return rooted ? [slash] : dot }
        var result: Bytes = rooted ? [slash] : []
        result.append(contentsOf: out.joinedPath)
        return result
    }

    /// `filepath.Split`: everything up to and including the last slash, and the rest.
    package static func split(_ path: Bytes) -> (dir: Bytes, file: Bytes) {
        guard let i = path.lastIndex(of: slash) else { return ([], path) }
        return (Array(path[...i]), Array(path[(i + 1)...]))
    }

    /// `filepath.Join(a, b)`.
    package static func join(_ a: Bytes, _ b: Bytes) -> Bytes {
        if a.isEmpty && b.isEmpty { return [] }
        if a.isEmpty { return clean(b) }
        if b.isEmpty { return clean(a) }
        return clean(a + [slash] + b)
    }

    /// `filepath.Join("/", p)`: `p` as an absolute, clean path (`..` stops at the root).
    package static func rooted(_ p: Bytes) -> Bytes { clean([slash] + p) }

    package static func isAbsolute(_ p: Bytes) -> Bool { p.first == slash }
}
