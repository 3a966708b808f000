import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Fingerprints the materials or products of a step: a file gets its SHA-256, a directory its Merkle digest
/// from `ContextWalker` (exclusions applied inside it, as `.dockerignore` patterns apply inside a build context).
package struct ArtifactHasher {
    /// Patterns in `.dockerignore` syntax, matched against paths relative to each directory artifact.
    package var exclude: DockerIgnore
    /// Directories (relative to the working directory) never hashed: the record directory, so that writing
    /// records does not change the materials of the next run.
    package var alwaysExcluded: [String]
    package var workers: Int

    package init(exclude: DockerIgnore = .empty, alwaysExcluded: [String] = [],
                workers: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.exclude = exclude
        self.alwaysExcluded = alwaysExcluded.map { DockerIgnore.goClean($0) }
        self.workers = workers
    }

    /// Parses exclusion patterns given on the command line or in a pipeline file.
    package static func patterns(_ list: [String], origin: String) throws -> DockerIgnore {
        try DockerIgnore.parse(Array(list.joined(separator: "\n").utf8), file: origin).checked()
    }

    /// The cleaned form of a path argument (`./out//a/` → `out/a`).
    package static func clean(_ path: String) -> String { DockerIgnore.goClean(path) }

    /// Fingerprints each path. A path that does not exist gives a `missing` artifact.
    /// - Returns: the artifacts in the order given, and the trees of directory artifacts (by path) for lookups.
    /// - Throws: `ImprintError` when a path exists but cannot be read.
    package func fingerprint(_ paths: [String]) throws -> (artifacts: [Artifact], trees: [String: Tree]) {
        var out: [Artifact] = []
        var trees: [String: Tree] = [:]
        var seen = Set<String>()
        for raw in paths {
            let path = Self.clean(raw)
            if !seen.insert(path).inserted { continue }
            var st = stat()
            if stat(path, &st) != 0 {
                if errno == ENOENT || errno == ENOTDIR { out.append(Artifact(path: path, kind: .missing, digest: nil)); continue }
                throw ImprintError.posix("stat", path)
            }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                let excluded = alwaysExcluded.compactMap { relative($0, under: path) }.map { Array($0.utf8) }
                let walker = ContextWalker(ignore: exclude, excludedPaths: Set(excluded), workers: workers)
                let (tree, _) = try walker.walk(path)
                try followSymlinks(in: tree, at: path)
                let stats = tree.statistics
                trees[path] = tree
                out.append(Artifact(path: path, kind: .directory, digest: tree.rootDigest, files: stats.files, bytes: stats.bytes))
            case S_IFREG:
                // A symlink to a file is followed (as in-toto does); hash what it points to.
                var real = path
                if let r = realpath(path, nil) { real = String(cString: r); free(r) }
                let node = TreeNode(type: .file, mode: UInt32(st.st_mode), size: UInt64(st.st_size))
                try FileHasher.hash([FileHasher.Job(path: Array(real.utf8), node: node)], workers: 1)
                out.append(Artifact(path: path, kind: .file, digest: node.digest, files: 1, bytes: node.size))
            default:
                throw ImprintError.badInput("cannot fingerprint \(path): not a regular file or directory")
            }
        }
        return (out, trees)
    }

    /// Records, for every symlink in `tree` (walked at `dir`) that leads to a regular file, that file's content
    /// digest, as in-toto-run records a symlink: so a symlink dropped into a step's products, or a file replaced by
    /// one, shows in its link. Symlinks to directories or to nothing are left out, as in-toto leaves them out.
    package func followSymlinks(in tree: Tree, at dir: String) throws {
        var links: [Bytes] = []
        tree.walk { rel, node in if node.type == .symlink { links.append(rel) } }
        for rel in links {
            let full = dir + "/" + rel.lossyString
            var st = stat()
            guard stat(full, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            var real = full
            if let r = realpath(full, nil) { real = String(cString: r); free(r) }
            let node = TreeNode(type: .file, mode: UInt32(st.st_mode), size: UInt64(st.st_size))
            try FileHasher.hash([FileHasher.Job(path: Array(real.utf8), node: node)], workers: 1)
            tree.symlinkTargets[rel] = node.digest
        }
    }

    /// `path` relative to `dir` when it lies inside it (both cleaned, relative to the working directory).
    package func relative(_ path: String, under dir: String) -> String? {
        if dir == "." { return path == "." ? nil : path }
        if path.hasPrefix(dir + "/") { return String(path.dropFirst(dir.count + 1)) }
        return nil
    }
}

/// Looks up the digest of a path inside a set of fingerprinted artifacts: the artifact itself, or an entry
/// inside a directory artifact's tree.
package struct ArtifactIndex {
    package var artifacts: [String: Artifact] = [:]
    package var trees: [String: Tree] = [:]

    package init(artifacts: [Artifact], trees: [String: Tree]) {
        for a in artifacts { self.artifacts[a.path] = a }
        self.trees = trees
    }

    /// The digest `path` had: nil when the set does not cover it; `.some(nil)` when it was missing.
    package func digest(of path: String) -> Digest?? {
        if let a = artifacts[path] { return .some(a.digest) }
        for (dir, tree) in trees {
            let rel: String
            if dir == "." { rel = path } else if path.hasPrefix(dir + "/") { rel = String(path.dropFirst(dir.count + 1)) } else { continue }
            guard let node = tree.node(at: Array(rel.utf8)) else { return nil }  // absent or excluded
            return .some(node.digest)
        }
        return nil
    }
}
