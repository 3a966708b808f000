import Foundation

/// Loading `registry://` sources; `SourceLoader.load` hands them here.
package enum RegistrySource {
    /// Reads a `registry://` image: metadata, and (with `withTree`) every layer flattened into a tree.
    /// - Returns: the source and the captured content of `stampPath` (for `SourceLoader` to parse).
    package static func load(_ spec: String, platform: Platform?, stampPath: String, withTree: Bool,
                     registry: RegistryOptions, spool: BytecodeSpool? = nil) throws -> (LoadedSource, [UInt8]?) {
        let reader = try RegistryImageReader(RegistryReference(parsing: spec), options: registry)
        let info = try reader.resolve(reference: nil, platform: platform)
        var src = LoadedSource(kind: .registry, path: spec, tree: Tree(), image: info, stampPath: stampPath)
        if !withTree { return (src, nil) }
        let (tree, captured) = try SourceLoader.flatten(reader, info, capture: TreePath(stampPath).bytes, spool: spool)
        src.tree = tree
        return (src, captured)
    }

    /// Reads only the stamp layer of an image (see `RegistryImageReader.stampLayerIndex`) and returns the file
    /// at `stampPath` in it, or nil when the image has no stamp layer or the file is not in it.
    package static func stampLayerContent(_ reader: ImageReader, _ image: ImageInfo, stampPath: String) throws -> [UInt8]? {
        guard let index = RegistryImageReader.stampLayerIndex(image) else { return nil }
        let capture = TreePath(stampPath).bytes
        let (_, captured) = try SourceLoader.flatten(reader, image.onlyLayer(index), capture: capture, lookahead: 1)
        return captured
    }
}

extension SourceLoader {
    /// Like `load`, but for images reads only what the embedded manifest needs: manifest, config and the stamp
    /// layer (the last layer, when `imprint stamp` added it). Falls back to `load` when the image has no stamp
    /// layer or the manifest is not in it (a Dockerfile COPY put it elsewhere). The returned `tree` is empty
    /// when only the stamp layer was read.
    package static func loadEmbeddedManifestOnly(_ spec: String, platform: String? = nil, stampPath: String = Imprint.defaultStampPath,
                                                registry: RegistryOptions = RegistryOptions()) throws -> LoadedSource {
        guard RegistryReference.isRegistry(spec) else { return try load(spec, platform: platform, stampPath: stampPath, registry: registry) }
        let reader = try RegistryImageReader(RegistryReference(parsing: spec), options: registry)
        let info = try reader.resolve(reference: nil, platform: try platform.map { try Platform(parsing: $0) })
        guard let captured = try RegistrySource.stampLayerContent(reader, info, stampPath: stampPath) else {
            return try load(spec, platform: platform, stampPath: stampPath, registry: registry)
        }
        var src = LoadedSource(kind: .registry, path: spec, tree: Tree(), image: info, stampPath: stampPath)
        src.embeddedManifestBytes = captured
        do {
            src.embeddedManifest = try Manifest.parse(captured, source: "embedded manifest \(stampPath)")
        } catch let e as ImprintError {
            src.embeddedManifestProblem = e.message
        }
        return src
    }

    /// The imprint manifest stamped into a registry image, fetching only manifest, config and the stamp layer
    /// (for `verify --expect` against `registry://…`).
    /// - Parameter ref: `registry://HOST[:PORT]/REPO[:TAG|@sha256:…]`.
    /// - Throws: `notFound` when the image has no embedded manifest; `badInput` when it is not valid;
    ///   registry and digest errors as one line.
    package static func embeddedManifest(fromRegistry ref: String, platform: String? = nil, stampPath: String = Imprint.defaultStampPath,
                                        registry: RegistryOptions = RegistryOptions()) throws -> (Manifest, [UInt8]) {
        let src = try loadEmbeddedManifestOnly(ref, platform: platform, stampPath: stampPath, registry: registry)
        if let problem = src.embeddedManifestProblem {
            throw ImprintError.badInput("\(ref): the file at /\(stampPath) is not a valid imprint manifest: \(problem)")
        }
        guard let m = src.embeddedManifest, let bytes = src.embeddedManifestBytes else {
            throw ImprintError(.notFound, "\(ref) has no imprint manifest at /\(stampPath)")
        }
        return (m, bytes)
    }
}
