import Foundation

/// An imprint manifest found inside a target: stamped at `/.imprint/manifest.json`, or emitted into the build
/// context (`fingerprint --emit`) and copied into the image with it (`/app/.imprint/manifest.json`).
package struct EmbeddedManifest {
    package var manifest: Manifest
    /// Its bytes, as stored.
    package var bytes: [UInt8]
    /// Where it is in the target (`/.imprint/manifest.json`).
    package var source: String
    /// For an emitted manifest: the context root it was emitted into ("" for the target's root); nil for a stamp.
    package var contextRoot: String?
    /// The signature stored beside it (`manifest.sig`), if any.
    package var signatureBytes: [UInt8]?

    /// Finds the manifest of `tree`: the stamp path at the root, else an emitted one (`X/.imprint/manifest.json`
    /// whose manifest lists that path as excluded) up to five levels down.
    /// - Parameter read: the bytes of a file of the tree (captured while streaming, or read from disk).
    /// - Throws: `badInput` when a file at those places is not a valid manifest.
    package static func find(in tree: Tree, read: (Bytes) throws -> [UInt8]) throws -> EmbeddedManifest? {
        let stamp = Array(Imprint.defaultStampPath.utf8)
        func signature(beside path: Bytes) throws -> [UInt8]? {
            let sig = TreePath(ManifestSignature.path(besideManifest: path.lossyString)).bytes
            guard let n = tree.node(at: sig), n.type == .file else { return nil }
            return try read(sig)
        }
        if let n = tree.node(at: stamp), n.type == .file {
            let bytes = try read(stamp)
            let m = try Manifest.parse(bytes, source: "/" + Imprint.defaultStampPath)
            return EmbeddedManifest(manifest: m, bytes: bytes, source: "/" + Imprint.defaultStampPath,
                                    contextRoot: m.metadata.excluded.contains(Imprint.defaultStampPath) ? "" : nil,
                                    signatureBytes: try signature(beside: stamp))
        }
        var candidates: [Bytes] = []
        tree.walk { path, node in
            guard node.type == .file, path.pathComponents.count <= 7, path.count > stamp.count,
                  path.suffix(stamp.count + 1).elementsEqual([0x2F] + stamp) else { return }
            candidates.append(path)
        }
        for p in candidates {
            let bytes = try read(p)
            let m = try Manifest.parse(bytes, source: "/" + p.lossyString)
            guard m.metadata.excluded.contains(Imprint.defaultStampPath) else { continue }
            return EmbeddedManifest(manifest: m, bytes: bytes, source: "/" + p.lossyString,
                                    contextRoot: Array(p.dropLast(stamp.count + 1)).lossyString, signatureBytes: try signature(beside: p))
        }
        return nil
    }
}
extension EmbeddedManifest {
    /// The bytes of the manifest a source carries (`imprint extract`): stamped at `stampPath`, else emitted into
    /// the build context (`fingerprint --emit`) and copied along, found where `imprint verify` finds it. From a
    /// registry only the manifest, config and stamp layer are read unless the stamp is missing.
    /// - Throws: `notFound` when there is none; `badInput` when the file at `stampPath` is not a valid manifest.
    package static func extract(from source: String, platform: String?, stampPath: String = Imprint.defaultStampPath,
                               registry: RegistryOptions = RegistryOptions()) throws -> [UInt8] {
        let loaded = try SourceLoader.loadEmbeddedManifestOnly(source, platform: platform, stampPath: stampPath, registry: registry)
        if let problem = loaded.embeddedManifestProblem {
            throw ImprintError.badInput("\(source): the file at /\(loaded.stampPath) is not a valid imprint manifest: \(problem)")
        }
        if let bytes = loaded.embeddedManifestBytes { return bytes }
        let full = loaded.tree.root.childCount == 0 && RegistryReference.isRegistry(source)
            ? try SourceLoader.load(source, platform: platform, stampPath: stampPath, registry: registry) : loaded
        if stampPath == Imprint.defaultStampPath, loaded.kind != .manifestFile,
           let embedded = try VerifyTarget.from(full, spec: source).embedded {
            return embedded.bytes
        }
        throw ImprintError(.notFound, "\(source) has no imprint manifest at /\(loaded.stampPath) or emitted into a context (…/.imprint/manifest.json); stamp it with `imprint stamp`, or pass --path")
    }
}
