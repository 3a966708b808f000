import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What the docker CLI does around the legacy builder's context walk when a pattern of the ignore file is not a
/// valid expression (the only case where it differs from a plain walk):
///
/// - `ValidateContextDirectory` walks the context first (never entering an excluded directory) and checks each path
///   with `MatchesOrParentMatches`: a pattern that fails there stops the build ("checking context: syntax error in
///   pattern");
/// - then `TarWithOptions` walks with `MatchesUsingParentResults`: a pattern that fails there is logged and ends the
///   walk, and the tar is closed as it is. The context is cut at that path: it and everything after it in walk
///   order (names in byte order, a directory before what it holds) are not sent.
///
/// docker/cli v29.7.2 cli/command/image/build/context.go:44–83; moby/go-archive v0.3.3 archive.go:855–898.
package enum LegacyContext {
    /// Whether the legacy rules apply to this ignore file at all: the legacy builder, with a pattern that fails.
    package static func applies(_ ignore: DockerIgnore) -> Bool {
        ignore.semantics == .classic && ignore.patterns.contains { $0.matcher.compileError != nil }
    }

    /// `ValidateContextDirectory`'s pattern check.
    /// - Throws: `badInput` naming the pattern when it fails on a path the check looks at.
    package static func validate(_ root: String, ignore: DockerIgnore) throws {
        func walk(_ abs: Bytes, _ rel: Bytes) throws {
            for (name, st) in try ContextListing.listDirectory(abs) {
                let childRel = rel.isEmpty ? name : rel + [0x2F] + name
                do {
                    if try ignore.excludedOnOpen(childRel) { continue }  // an excluded directory is not entered
                } catch let e as ImprintError {
                    throw ImprintError.badInput("checking context: \(e.message)")
                }
                if (st.st_mode & S_IFMT) == S_IFDIR { try walk(abs + [0x2F] + name, childRel) }
            }
        }
        try walk(Array(root.utf8), [])
    }

    /// Whether `a` comes before `b` in the walk's order: component by component in byte order, a directory before
    /// everything below it.
    package static func precedes(_ a: Bytes, _ b: Bytes) -> Bool {
        let ca = a.split(separator: 0x2F, omittingEmptySubsequences: false), cb = b.split(separator: 0x2F, omittingEmptySubsequences: false)
        for (x, y) in zip(ca, cb) where !x.elementsEqual(y) { return x.lexicographicallyPrecedes(y) }
        return ca.count < cb.count
    }

    /// Drops every entry at or after `cut` in walk order; directories that only led there and hold nothing sent
    /// (`provisional`) go too.
    package static func cut(_ tree: Tree, at cut: Bytes, provisional: Set<ObjectIdentifier>) {
        func visit(_ dir: TreeNode, _ rel: Bytes) {
            var kept: [(name: Bytes, node: TreeNode)] = []
            for (name, child) in dir.sortedChildren {
                let path = rel.isEmpty ? name : rel + [0x2F] + name
                if !precedes(path, cut) { continue }
                if child.type == .directory {
                    visit(child, path)
                    if child.childCount == 0 && provisional.contains(ObjectIdentifier(child)) { continue }
                }
                kept.append((name, child))
            }
            dir.setSortedChildren(kept)
        }
        visit(tree.root, [])
    }
}
