import Foundation

/// What `verify` (and `stamp --check`, and `extract`) compare: a deployed tree, the manifest embedded in it if any,
/// and the Python bytecode checks that suit its kind.
package struct VerifyTarget {
    package var tree: Tree
    package var kind: String
    package var embedded: EmbeddedManifest?
    /// The bytecode checks for this kind of target, on the context's subtree (`at`: where it sits).
    package var bytecode: (Tree, _ at: Bytes) -> [BytecodeFinding]
    /// For an image: each layer's `created_by` from the config history (nil where the history has none).
    package var layerHistory: [String?] = []
    /// For an image: its digest (the manifest's; a docker-archive's image ID).
    package var imageDigest: Digest?

    /// Reads `spec` (a directory, a tar stream or file, an image) and finds its embedded manifest.
    /// - Throws: `badInput` for a manifest file (it is not a deployed tree) or an embedded manifest that is invalid.
    package static func load(_ spec: String, platform: String? = nil, python: String? = nil, registry: RegistryOptions = RegistryOptions()) throws -> VerifyTarget {
        try from(try SourceLoader.load(spec, platform: platform, registry: registry, spool: try BytecodeSpool()), spec: spec, python: python)
    }

    /// A loaded source as a verify target.
    /// - Parameter python: the interpreter that proves timestamp pycs by recompiling their sources (nil: `python3`).
    package static func from(_ src: LoadedSource, spec: String, python: String? = nil) throws -> VerifyTarget {
        if src.kind == .manifestFile {
            throw ImprintError.badInput("\(spec) is a manifest, not a deployed tree; pass it with --manifest and verify a directory, tar or image")
        }
        let isDirectory = src.kind == .directory
        let root = src.path
        // Bytes of a file in the target: captured while streaming, or read from disk for a directory.
        let read: (Bytes) throws -> [UInt8] = { path in
            if let c = src.tree.node(at: path)?.capturedContent { return c }
            if isDirectory { return try readFile((root as NSString).appendingPathComponent(path.lossyString), what: "manifest") }
            if TreePath(path) == TreePath(Imprint.defaultStampPath), let b = src.embeddedManifestBytes { return b }
            throw ImprintError(.notFound, "\(spec): /\(path.lossyString) was not captured")
        }
        if let problem = src.embeddedManifestProblem { throw ImprintError.badInput(problem) }
        let embedded = try EmbeddedManifest.find(in: src.tree, read: read)
        let bytecode: (Tree, Bytes) -> [BytecodeFinding] = { subtree, at in
            if isDirectory {
                let dir = (root as NSString).appendingPathComponent(at.lossyString)
                return BytecodeChecker.check(tree: subtree, content: BytecodeChecker.directoryReader(root: dir))
                    + BytecodeEquivalence(python: python).findings(tree: subtree, root: dir)
            }
            var hashes: [Bytes: [UInt32: UInt64]] = [:]
            subtree.walk { path, node in if let h = node.pySourceHashes { hashes[path] = h } }
            let headers = BytecodeChecker(content: nil, sourceHashes: hashes).check(subtree)
            // Timestamp pycs whose header passes are compiled against, from the copies kept while streaming.
            guard let spool = src.spool else { return headers }
            return headers + BytecodeEquivalence(python: python).findings(tree: subtree, spool: spool)
        }
        var target = VerifyTarget(tree: src.tree, kind: src.kind.rawValue, embedded: embedded, bytecode: bytecode)
        if let image = src.image {
            target.imageDigest = image.digest
            let history = image.config.layerHistory
            target.layerHistory = image.layers.indices.map { $0 < history.count ? history[$0] : nil }
        }
        return target
    }
}

extension VerifyTarget {
    /// The copy plan to verify with: when the manifest records the Dockerfile's copies and no `--at` overrides
    /// them, for targets that are a whole image filesystem (images, containers, tar streams, `/`).
    package func copyPlan(for manifest: Manifest, at: String?, emittedAt: String?, directory: String?) throws -> CopyPlan? {
        guard at == nil, emittedAt == nil, let d = manifest.metadata.dockerfile, !d.parsed.copies.isEmpty else { return nil }
        if kind == "directory" {
            guard let directory, URL(fileURLWithPath: directory).standardizedFileURL.path == "/" else { return nil }
        }
        return try CopyPlan(dockerfile: d.parsed, context: manifest.tree)
    }
}
