import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A source read into a tree: what it was, the flattened filesystem, and the image metadata when it is an image.
package struct LoadedSource {
    /// The format of a source, detected from its content.
    package enum Kind: String, Sendable, CaseIterable {
        case ociLayout = "oci-layout"
        case ociArchive = "oci-archive"
        case dockerArchive = "docker-archive"
        /// A filesystem tar (`docker export`, `tar c`), possibly gzip-compressed, from a file or stdin.
        case tarStream = "tar"
        case directory
        /// An imprint manifest JSON file.
        case manifestFile = "manifest"
        /// An image in a registry (`registry://HOST/REPO:TAG`), read through `RegistryImageReader`.
        case registry
        /// A running container (`pid:N`, `docker:NAME`, `podman:NAME`), read through `/proc/PID/root`.
        case container

        /// True for the three image formats.
        package var isImage: Bool { self == .ociLayout || self == .ociArchive || self == .dockerArchive || self == .registry }
    }

    package var kind: Kind
    /// The path that was read (`-` for stdin).
    package var path: String
    /// The filesystem: flattened layers, the tar's entries, the directory, or the manifest's entries.
    /// It includes the embedded manifest file itself, if any (see `removingStamp()`).
    package var tree: Tree
    /// Manifest, config and layers, for images.
    package var image: ImageInfo?
    /// The imprint manifest found at `stampPath` (for a manifest file: the manifest itself).
    package var embeddedManifest: Manifest?
    /// The raw bytes of that manifest, as stored.
    package var embeddedManifestBytes: [UInt8]?
    /// Why a file at `stampPath` was present but not a valid manifest.
    package var embeddedManifestProblem: String?
    /// The in-source path where the manifest was looked for.
    package var stampPath: String
    /// The Python sources and timestamp pycs of a streamed source, kept for the bytecode-equivalence check when
    /// the loader was asked to (`SourceLoader.load(…, spool:)`).
    package var spool: BytecodeSpool?

    /// The tree without the embedded manifest file (and its directory when nothing else is in it), digests
    /// recomputed: what to compare with the manifest's own tree.
    package func removingStamp() -> Tree {
        let copy = Tree(root: LoadedSource.deepCopy(tree.root))
        let p = TreePath(stampPath).bytes
        copy.remove(p)
        var comps = p.pathComponents
        comps.removeLast()
        while !comps.isEmpty, let n = copy.node(at: comps.joinedPath), n.type == .directory, n.children.isEmpty {
            copy.remove(comps.joinedPath)
            comps.removeLast()
        }
        copy.computeDigests()
        return copy
    }

    package static func deepCopy(_ n: TreeNode) -> TreeNode {
        let c = n.shallowCopy()
        c.pycHeader = n.pycHeader
        for (k, v) in n.children { c.children[k] = deepCopy(v) }
        return c
    }
    package init(kind: Kind, path: String, tree: Tree, image: ImageInfo? = nil, embeddedManifest: Manifest? = nil, embeddedManifestBytes: [UInt8]? = nil, embeddedManifestProblem: String? = nil, stampPath: String, spool: BytecodeSpool? = nil) {
        self.kind = kind; self.path = path; self.tree = tree; self.image = image; self.embeddedManifest = embeddedManifest; self.embeddedManifestBytes = embeddedManifestBytes; self.embeddedManifestProblem = embeddedManifestProblem; self.stampPath = stampPath; self.spool = spool
    }
}

/// Where an image can be found once a source specification has been parsed.
package struct ImageLocation {
    package var kind: LoadedSource.Kind
    package var path: String
    package var reference: String?
    package var reader: ImageReader
    /// The indexed archive, for the archive formats.
    package var archive: TarArchiveIndex?
}

/// The one entry point to read anything imprint can compare: images (OCI layout, oci-archive, docker-archive),
/// filesystem tars (file or `-` for stdin, plain or gzip), directories and imprint manifest files.
package enum SourceLoader {
    /// Reads `spec` into a tree.
    /// - Parameters:
    ///   - spec: a path, optionally with a transport prefix (`oci:`, `oci-archive:`, `docker-archive:`) and a
    ///     `:TAG` suffix choosing one image of several; `-` reads a tar stream from stdin.
    ///   - platform: `os/arch[/variant]` to choose from a multi-platform index.
    ///   - stampPath: where the embedded manifest is looked for (default `Imprint.defaultStampPath`).
    ///   - withTree: false to read only the image metadata (fast `inspect`).
    ///   - registry: how `registry://` sources are reached (plain HTTP, deadline, credentials' environment).
    ///   - spool: where a streamed source's Python files are kept for the bytecode checks (verify, stamp --check).
    /// - Throws: `ImprintError` with one line naming the problem (missing or corrupt blob, escaping tar entry,
    ///   unsupported compression, no matching platform...).
    package static func load(_ spec: String, platform: String? = nil, stampPath: String = Imprint.defaultStampPath,
                            withTree: Bool = true, registry: RegistryOptions = RegistryOptions(),
                            spool: BytecodeSpool? = nil) throws -> LoadedSource {
        var loaded = try loadUnspooled(spec, platform: platform, stampPath: stampPath, withTree: withTree, registry: registry, spool: spool)
        if loaded.kind == .tarStream || loaded.kind.isImage { loaded.spool = spool }
        return loaded
    }

    private static func loadUnspooled(_ spec: String, platform: String?, stampPath: String, withTree: Bool,
                                      registry: RegistryOptions, spool: BytecodeSpool?) throws -> LoadedSource {
        let capture = TreePath(stampPath).bytes
        if spec == "-" {
            let (tree, captured) = try readTarStream(FileDescriptorSource(fd: 0, name: "stdin"), name: "stdin", capture: capture, spool: spool)
            return finish(LoadedSource(kind: .tarStream, path: "-", tree: tree, stampPath: stampPath), captured)
        }
        if LiveSource.isLive(spec) {
            // A running container: its whole filesystem as its processes see it (pseudo file systems left out).
            let live = try LiveSource.open(spec)
            let tree = try live.walk("/")
            return finish(LoadedSource(kind: .container, path: spec, tree: tree, stampPath: stampPath),
                          try live.readFile("/" + stampPath))
        }
        if RegistryReference.isRegistry(spec) {
            let (src, captured) = try RegistrySource.load(spec, platform: try platform.map { try Platform(parsing: $0) },
                                                          stampPath: stampPath, withTree: withTree, registry: registry, spool: spool)
            return finish(src, captured)
        }
        let parsed = try parse(spec)
        let chosenPlatform = try platform.map { try Platform(parsing: $0) }
        switch parsed.kind {
        case .directory:
            var walker = ContextWalker(recordOwnership: true)
            walker.progress = nil
            walker.excludedPaths = LiveSource.pseudoMounts(below: parsed.path)
            let (tree, _) = try walker.walk(parsed.path)
            var captured: [UInt8]?
            let file = (parsed.path as NSString).appendingPathComponent(stampPath)
            if access(file, F_OK) == 0 { captured = try readFile(file, what: "embedded manifest") }
            return finish(LoadedSource(kind: .directory, path: parsed.path, tree: tree, stampPath: stampPath), captured)
        case .manifestFile:
            let bytes = try readFile(parsed.path, what: "manifest")
            let m = try Manifest.parse(bytes, source: parsed.path)
            return LoadedSource(kind: .manifestFile, path: parsed.path, tree: m.tree, embeddedManifest: m,
                                embeddedManifestBytes: bytes, stampPath: stampPath)
        case .tarStream:
            let (tree, captured) = try readTarStream(try FileDescriptorSource(path: parsed.path), name: parsed.path, capture: capture, spool: spool)
            return finish(LoadedSource(kind: .tarStream, path: parsed.path, tree: tree, stampPath: stampPath), captured)
        case .container:
            throw ImprintError.badInput("\(spec): a running container is named pid:N, docker:NAME or podman:NAME")
        case .ociLayout, .ociArchive, .dockerArchive, .registry:
            let location = try openImage(parsed)
            let info = try location.reader.resolve(reference: location.reference, platform: chosenPlatform)
            var src = LoadedSource(kind: location.kind, path: location.path, tree: Tree(), image: info, stampPath: stampPath)
            if !withTree { return src }
            let (tree, captured) = try flatten(location.reader, info, capture: capture, spool: spool)
            src.tree = tree
            return finish(src, captured)
        }
    }

    /// Opens an image without reading its layers.
    package static func openImage(_ spec: String) throws -> ImageLocation {
        let parsed = try parse(spec)
        guard parsed.kind.isImage else {
            throw ImprintError.badInput("\(spec) is not a container image (detected: \(parsed.kind.rawValue))")
        }
        return try openImage(parsed)
    }

    package static func openImage(_ parsed: (kind: LoadedSource.Kind, path: String, reference: String?, archive: TarArchiveIndex?)) throws -> ImageLocation {
        switch parsed.kind {
        case .ociLayout:
            return ImageLocation(kind: .ociLayout, path: parsed.path, reference: parsed.reference, reader: try OCILayout(directory: parsed.path))
        case .ociArchive:
            let a = try parsed.archive ?? TarArchiveIndex(path: parsed.path)
            return ImageLocation(kind: .ociArchive, path: parsed.path, reference: parsed.reference, reader: try OCILayout(archive: a), archive: a)
        case .dockerArchive:
            let a = try parsed.archive ?? TarArchiveIndex(path: parsed.path)
            return ImageLocation(kind: .dockerArchive, path: parsed.path, reference: parsed.reference, reader: try DockerArchive(archive: a), archive: a)
        default:
            throw ImprintError.badInput("\(parsed.path) is not a container image")
        }
    }

    // MARK: Detection

    /// Splits `[transport:]path[:ref]` and detects the format of `path` from its content.
    package static func parse(_ spec: String) throws -> (kind: LoadedSource.Kind, path: String, reference: String?, archive: TarArchiveIndex?) {
        var rest = spec
        var forced: LoadedSource.Kind?
        for (prefix, kind) in [("oci:", LoadedSource.Kind.ociLayout), ("oci-archive:", .ociArchive), ("docker-archive:", .dockerArchive), ("dir:", nil)] as [(String, LoadedSource.Kind?)] {
            if rest.hasPrefix(prefix) && !exists(rest) {
                rest = String(rest.dropFirst(prefix.count))
                forced = kind
                break
            }
        }
        var path = rest
        var reference: String?
        if !exists(rest) {
            // `path:ref`: the first colon whose left side exists (a docker-archive ref may itself contain colons).
            var found = false
            var idx = rest.startIndex
            while let colon = rest[idx...].firstIndex(of: ":") {
                let left = String(rest[..<colon])
                if exists(left) {
                    path = left
                    reference = String(rest[rest.index(after: colon)...])
                    if reference?.isEmpty == true { reference = nil }
                    found = true
                    break
                }
                idx = rest.index(after: colon)
            }
            if !found { throw ImprintError(.notFound, "cannot read \(spec): no such file or directory") }
        }
        var st = stat()
        guard stat(path, &st) == 0 else { throw ImprintError.posix("read", path) }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            if access(path + "/oci-layout", F_OK) == 0 { return (.ociLayout, path, reference, nil) }
            if forced == .ociLayout { throw ImprintError.badInput("\(path) is not an OCI image layout (no oci-layout file)") }
            return (.directory, path, reference, nil)
        }
        let head = try FileDescriptorSource(path: path, offset: 0, length: min(UInt64(st.st_size), 512))
        var bytes = [UInt8](repeating: 0, count: Int(min(Int64(st.st_size), 512)))
        _ = try bytes.withUnsafeMutableBytes { try head.readFully(into: $0) }
        if let first = bytes.first(where: { ![0x20, 0x0A, 0x0D, 0x09].contains($0) }), first == UInt8(ascii: "{") {
            return (.manifestFile, path, reference, nil)
        }
        let compression = Compression.detect(bytes)
        if compression != .none { return (.tarStream, path, reference, nil) }
        guard TarArchiveIndex.looksLikeTar(bytes) else {
            throw ImprintError.badInput("\(path) is not a tar archive, image, directory or imprint manifest")
        }
        let archive = try TarArchiveIndex(path: path)
        if archive.member("manifest.json") != nil && forced != .ociArchive { return (.dockerArchive, path, reference, archive) }
        if archive.member("index.json") != nil && archive.member("oci-layout") != nil { return (.ociArchive, path, reference, archive) }
        if let forced, forced.isImage {
            throw ImprintError.badInput("\(path) is not a \(forced.rawValue) (no index.json/manifest.json)")
        }
        return (.tarStream, path, reference, nil)
    }

    private static func exists(_ p: String) -> Bool { !p.isEmpty && access(p, F_OK) == 0 }

    // MARK: Reading trees

    package static func finish(_ s: LoadedSource, _ captured: [UInt8]?) -> LoadedSource {
        var s = s
        guard let captured else { return s }
        s.embeddedManifestBytes = captured
        do {
            s.embeddedManifest = try Manifest.parse(captured, source: "embedded manifest \(s.stampPath)")
        } catch let e as ImprintError {
            s.embeddedManifestProblem = e.message
        } catch {
            s.embeddedManifestProblem = "\(error)"
        }
        return s
    }

    /// A filesystem tar (plain or gzip) into a tree; decompression runs on its own thread.
    package static func readTarStream(_ raw: ByteSource, name: String, capture: Bytes, spool: BytecodeSpool? = nil) throws -> (Tree, [UInt8]?) {
        let prefetch = PrefetchingSource(open: { try Compression.decompressing(raw, name: name).0 })
        defer { prefetch.cancel(); prefetch.waitUntilDone() }
        let flattener = LayerFlattener(capturePath: capture)
        flattener.whiteouts = false
        flattener.spool = spool
        let reader = TarReader(prefetch, name: name)
        try flattener.apply(reader, layer: nil)
        // What follows the archive is read too, as a runtime does: a corrupt or cut gzip stream is an error.
        try prefetch.forEachChunk(bufferSize: 64 << 10) { _ in }
        return (flattener.finish(), flattener.capturedFinal)
    }

    /// Applies an image's layers in order. Each layer is read, verified and inflated on a producer thread
    /// (up to `lookahead` layers at once) while this thread parses and hashes.
    package static func flatten(_ reader: ImageReader, _ image: ImageInfo, capture: Bytes?,
                               lookahead: Int = max(1, ProcessInfo.processInfo.activeProcessorCount - 1),
                               spool: BytecodeSpool? = nil) throws -> (Tree, [UInt8]?) {
        let flattener = LayerFlattener(capturePath: capture)
        flattener.spool = spool
        let pipelines = image.layers.indices.map { layerPipeline(reader, image, $0) }
        defer { for p in pipelines { p.cancel(); p.waitUntilDone() } }
        for i in image.layers.indices {
            for j in i..<min(image.layers.count, i + lookahead + 1) { pipelines[j].start() }
            let reader = TarReader(pipelines[i], name: layerName(image, i))
            try flattener.apply(reader, layer: i)
            // Drain what follows the end-of-archive blocks so verification (and its errors) complete.
            try pipelines[i].forEachChunk(bufferSize: 64 << 10) { _ in }
        }
        return (flattener.finish(), flattener.capturedFinal)
    }
}

extension SourceLoader {
    /// How messages name layer `i` of `image`.
    package static func layerName(_ image: ImageInfo, _ i: Int) -> String {
        "layer \(i + 1) (\(image.layers[i].member ?? image.layers[i].descriptor.digest.prefixed))"
    }

    /// The uncompressed tar of layer `i`, read, verified (blob digest, and diff_id where the reader needs it)
    /// and inflated on its own thread once started. Drain it to the end so verification runs.
    package static func layerPipeline(_ reader: ImageReader, _ image: ImageInfo, _ i: Int) -> PrefetchingSource {
        let layer = image.layers[i]
        let name = layerName(image, i)
        let state = LayerVerification()
        return PrefetchingSource(open: {
            let raw = try reader.openLayer(image, i)
            state.raw = raw
            var (tar, _) = try Compression.decompressing(raw, name: name)
            if reader.verifiesUncompressed, let diffID = layer.diffID {
                let v = DigestVerifyingSource(tar, digest: diffID, size: nil, name: "\(name) diff_id")
                state.uncompressed = v
                tar = v
            }
            return tar
        }, finish: {
            do {
                try state.raw?.verify()
                try state.uncompressed?.verify()
            } catch let e as ImprintError {
                throw ImprintError(e.code, e.message.replacingOccurrences(of: "blob \(name) diff_id", with: "\(name): uncompressed content (diff_id)"))
            }
        }, explain: { error in
            // A layer that fails to decompress or parse is most often a corrupted blob: say so when it is.
            guard let raw = state.raw, !(error is CancellationError) else { return error }
            do { try raw.verify() } catch let mismatch { return mismatch }
            return error
        })
    }
}

/// The verifiers of one layer, filled in on the producer thread and checked there after the data ended.
// why @unchecked: written and read only on the layer's producer thread.
package final class LayerVerification: @unchecked Sendable {
    package var raw: DigestVerifyingSource?
    package var uncompressed: DigestVerifyingSource?
}
