import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Everything a stamp adds to one image, computed once and written by whichever writer applies it (an OCI layout or
/// archive, a docker-archive, a registry): so stamping, and re-stamping, give the same image everywhere.
package struct StampPlan {
    /// The stamp layer, uncompressed (docker-archive stores it so) and its diff_id.
    package var layerTar: [UInt8]
    package var diffID: Digest
    /// The layer gzip-compressed (OCI layouts and registries store it so) and its digest.
    package var layerBlob: [UInt8]
    package var layerDigest: Digest
    package var configBytes: [UInt8]
    package var configDigest: Digest
    /// The new image manifest, for images that have one (not a classic docker-archive).
    package var manifestBytes: [UInt8]?
    /// True when the image was stamped before: its stamp layer is replaced, not stacked.
    package var replacing: Bool
    /// The root digest of the stamped imprint manifest.
    package var root: Digest
}

/// Appends one deterministic layer holding an imprint manifest to an image, the way `crane append` adds a layer:
/// new layer blob, config (`rootfs.diff_ids`, `history`, label `org.imprint.digest`), manifest and index entry.
///
/// Output keeps the input's format: an OCI layout is updated in place (new blobs, then `index.json` replaced
/// atomically); an oci-archive or docker-archive is written to a new file. Existing blobs are never changed.
/// The same manifest stamped into the same input always gives the same image digest.
package struct ImageStamper {
    /// Where the manifest goes inside the image (relative to `/`).
    package var stampPath = Imprint.defaultStampPath
    /// Modification time of the layer's entries and the history entry (`SOURCE_DATE_EPOCH`, else 0).
    package var epoch: Int64
    package var platform: Platform?
    /// A signature document (`ManifestSignature.jsonBytes()`) stored beside the manifest, as `manifest.sig`.
    package var signatureBytes: [UInt8]?

    /// What a stamp produced.
    package struct Result {
        /// The new manifest digest (for a docker-archive: the new config digest, the Docker image ID).
        package var imageDigest: Digest
        package var configDigest: Digest
        package var layerDigest: Digest
        package var diffID: Digest
        package var manifestRootDigest: Digest
        package var kind: LoadedSource.Kind
        /// The image that was stamped: its manifest digest (a classic docker-archive: its config digest).
        package var baseDigest: Digest? = nil
    }

    package init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        epoch = environment["SOURCE_DATE_EPOCH"].flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) } ?? 0
    }

    /// Stamps `manifestBytes` (a valid imprint manifest) into the image `spec`.
    /// - Parameter output: the new archive (required for archives; must be nil for an OCI layout).
    /// - Throws: `badInput` for an invalid manifest, a missing output path, or any problem reading the image.
    package func stamp(_ spec: String, manifestBytes: [UInt8], output: String?) throws -> Result {
        let manifest = try Manifest.parse(manifestBytes, source: "manifest")
        let stampComponents = Array(stampPath.utf8).pathComponents
        guard !stampComponents.isEmpty, !stampComponents.contains([0x2E, 0x2E]) else {
            throw ImprintError.badInput("invalid stamp path \"\(stampPath)\"")
        }
        let location = try SourceLoader.openImage(spec)
        switch location.kind {
        case .ociLayout:
            if output != nil { throw ImprintError.badInput("an OCI layout is stamped in place; -o is only for oci-archive and docker-archive") }
        default:
            guard let output, !output.isEmpty, output != "-" else {
                throw ImprintError.badInput("stamping a \(location.kind.rawValue) writes a new file: give it with -o OUT")
            }
            if realpathString(output) == realpathString(location.path) {
                throw ImprintError.badInput("-o must not be the input archive itself")
            }
        }
        let image = try location.reader.resolve(reference: location.reference, platform: platform)
        // An image whose own blobs are damaged or missing must not come out stamped (and the new manifest must not
        // reference a blob the output lacks): every layer that stays is read and checked first.
        let replacing = ImageStamper.isStamped(image)
        try ImageStamper.checkLayers(image, reader: location.reader, count: image.layers.count - (replacing ? 1 : 0), source: spec)
        let plan = try self.plan(image, manifestBytes: manifestBytes, root: manifest.rootDigest)

        switch location.kind {
        case .ociLayout, .ociArchive:
            let (manifestDesc, index) = try rewriteIndex(image, location: location, plan: plan)
            let indexBytes = try OCIJSON.encode(index)
            let newBlobs: [(Digest, [UInt8])] = [(plan.layerDigest, plan.layerBlob), (plan.configDigest, plan.configBytes),
                                                 (manifestDesc.digest, plan.manifestBytes ?? [])]
            if location.kind == .ociLayout {
                let store = DirectoryBlobStore(directory: location.path)
                for (d, bytes) in newBlobs where access(store.path(d), F_OK) != 0 {
                    try AtomicFile.write(bytes, to: store.path(d))
                }
                try AtomicFile.write(indexBytes, to: location.path + "/index.json")
            } else {
                try writeArchive(from: location.archive!, to: output!, replacing: ["index.json"],
                                 add: newBlobs.map { ("blobs/sha256/\($0.0.hex)", $0.1) } + [("index.json", indexBytes)])
            }
            return Result(imageDigest: manifestDesc.digest, configDigest: plan.configDigest, layerDigest: plan.layerDigest,
                          diffID: plan.diffID, manifestRootDigest: plan.root, kind: location.kind, baseDigest: image.manifestDescriptor?.digest ?? image.configDescriptor.digest)
        case .dockerArchive:
            guard let reader = location.reader as? DockerArchive, let position = image.indexPosition else {
                throw ImprintError(.failure, "docker-archive reader unavailable")
            }
            // Layers in a docker-archive are uncompressed tars named after their digest; follow the archive's naming.
            let usesBlobs = image.layers.first?.member?.hasPrefix("blobs/sha256/") ?? false
            let layerName = usesBlobs ? "blobs/sha256/\(plan.diffID.hex)" : "\(plan.diffID.hex).tar"
            let configName = usesBlobs ? "blobs/sha256/\(plan.configDigest.hex)" : "\(plan.configDigest.hex).json"
            var list = reader.manifestList
            list[position].config = configName
            list[position].layers = list[position].layers.dropLast(plan.replacing ? 1 : 0) + [layerName]
            let listBytes = try OCIJSON.encode(list)
            // The OCI layout newer `docker save` adds would now describe the unstamped image; leave it out.
            try writeArchive(from: location.archive!, to: output!, replacing: ["manifest.json", "index.json", "oci-layout"],
                             add: [(layerName, plan.layerTar), (configName, plan.configBytes), ("manifest.json", listBytes)])
            return Result(imageDigest: plan.configDigest, configDigest: plan.configDigest, layerDigest: plan.diffID, diffID: plan.diffID,
                          manifestRootDigest: plan.root, kind: .dockerArchive, baseDigest: image.manifestDescriptor?.digest ?? image.configDescriptor.digest)
        default:
            throw ImprintError.badInput("\(spec) is not a container image")
        }
    }

    /// Reads the first `count` layers of `image` and checks each against its digest (the blob digest, or the
    /// diff_id of the uncompressed tar where the format names layers otherwise), on all cores.
    /// - Throws: `badInput`/`notFound` naming the first layer that is missing, truncated or altered.
    package static func checkLayers(_ image: ImageInfo, reader: ImageReader, count: Int, source: String) throws {
        guard count > 0 else { return }
        let lock = NSLock()
        var failures: [Int: Error] = [:]
        // Shared: `failures` (under `lock`); reader and image are only read.
        concurrentWorkers(count) { i in
            do {
                let blob = try reader.openLayer(image, i)
                if reader.verifiesUncompressed, let diffID = image.layers[i].diffID {
                    let (plain, _) = try Compression.decompressing(blob, name: image.layers[i].member ?? image.layers[i].descriptor.digest.prefixed)
                    let h = SHA256()
                    try plain.forEachChunk(bufferSize: 1 << 20) { h.update($0) }
                    try blob.verify()
                    let actual = h.finish()
                    guard actual == diffID else {
                        throw ImprintError.badInput("layer \(i + 1) (\(image.layers[i].member ?? "")) does not match its diff_id \(diffID): it hashes to \(actual)")
                    }
                } else {
                    try blob.verify()
                }
            } catch {
                lock.lock(); failures[i] = error; lock.unlock()
            }
        }
        if let (i, e) = failures.min(by: { $0.key < $1.key }) {
            let reason = (e as? ImprintError)?.message ?? "\(e)"
            throw ImprintError.badInput("\(source): cannot stamp an image whose layer \(i + 1) of \(image.layers.count) is damaged or missing: \(reason)")
        }
    }

    /// The plan for stamping `manifestBytes` (a valid imprint manifest with root digest `root`) into `image`.
    package func plan(_ image: ImageInfo, manifestBytes: [UInt8], root: Digest) throws -> StampPlan {
        let replacing = ImageStamper.isStamped(image)
        let layerTar = try buildLayerTar(manifestBytes)
        let diffID = SHA256.hash(layerTar)
        let layerBlob = try GzipEncoder.compress(layerTar, level: 9)
        let layerDigest = SHA256.hash(layerBlob)
        let configBytes = try OCIJSON.encode(stampedConfig(image.config, diffID: diffID, root: root, replacing: replacing))
        let configDigest = SHA256.hash(configBytes)
        var manifestOut: [UInt8]?
        if var manifest = image.manifest {
            manifest.config.digest = configDigest
            manifest.config.size = UInt64(configBytes.count)
            let layerType = image.isDockerFamily ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip
            if replacing, !manifest.layers.isEmpty { manifest.layers.removeLast() }
            manifest.layers.append(Descriptor(mediaType: layerType, digest: layerDigest, size: UInt64(layerBlob.count)))
            manifestOut = try OCIJSON.encode(manifest)
        }
        return StampPlan(layerTar: layerTar, diffID: diffID, layerBlob: layerBlob, layerDigest: layerDigest,
                         configBytes: configBytes, configDigest: configDigest, manifestBytes: manifestOut,
                         replacing: replacing, root: root)
    }

    /// True when the image's last layer is an imprint stamp (its last history entry says `imprint stamp`).
    package static func isStamped(_ image: ImageInfo) -> Bool {
        guard let last = image.config.history?.last, last.createdBy == "imprint stamp", last.emptyLayer != true,
              !image.layers.isEmpty, !image.config.rootfs.diffIDs.isEmpty else { return false }
        return true
    }

    /// The config of the stamped image: the stamp layer's diff_id, a history entry `imprint stamp` and the
    /// `org.imprint.digest` label. With `replacing`, the previous stamp's diff_id and history entry give way.
    package func stampedConfig(_ original: ImageConfig, diffID: Digest, root: Digest, replacing: Bool) -> ImageConfig {
        var config = original
        config.rootfs.diffIDs = config.rootfs.diffIDs.dropLast(replacing ? 1 : 0) + [diffID]
        var history = config.history ?? []
        if replacing, !history.isEmpty { history.removeLast() }
        history.append(ImageConfig.History(
            created: ManifestMetadata.rfc3339(epoch), createdBy: "imprint stamp",
            comment: "imprint manifest \(root.prefixed) at \(TreePath(stampPath).absolute)"))
        config.history = history
        var runtime = config.config ?? ImageConfig.ContainerConfig()
        var labels = runtime.labels ?? [:]
        labels[Imprint.digestLabel] = root.prefixed
        runtime.labels = labels
        config.config = runtime
        return config
    }

    /// The stamp layer: parent directories (0755), the manifest and its signature if any (0644), sorted, owned by
    /// 0:0, fixed mtime.
    package func buildLayerTar(_ manifestBytes: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        let writer = TarWriter { out.append(contentsOf: $0) }
        let path = TreePath(stampPath)
        let comps = path.components
        for i in 1..<comps.count {
            try writer.writeHeader(TarEntry(path: Array(comps[0..<i]).joinedPath, kind: .directory, mode: 0o755, mtime: epoch))
        }
        try writer.writeFile(TarEntry(path: path.bytes, kind: .file, mode: 0o644, mtime: epoch), content: manifestBytes)
        if let signatureBytes {
            // "manifest.sig" sorts after "manifest.json": entries stay in order.
            let sig = TreePath(ManifestSignature.path(besideManifest: stampPath)).bytes
            try writer.writeFile(TarEntry(path: sig, kind: .file, mode: 0o644, mtime: epoch), content: signatureBytes)
        }
        try writer.finish()
        return out
    }

    /// The new manifest's descriptor and the updated index.json object.
    private func rewriteIndex(_ image: ImageInfo, location: ImageLocation, plan: StampPlan) throws -> (Descriptor, ImageIndex) {
        guard let layout = location.reader as? OCILayout, let manifestBytes = plan.manifestBytes,
              let oldDesc = image.manifestDescriptor, let position = image.indexPosition else {
            throw ImprintError(.failure, "OCI reader unavailable")
        }
        var index = layout.index
        let top = index.manifests[position]
        guard top.digest == oldDesc.digest else {
            throw ImprintError(.unsupported, "\(location.path): the image is inside a nested multi-platform index; stamping nested indexes is not supported")
        }
        var desc = top
        desc.digest = SHA256.hash(manifestBytes)
        desc.size = UInt64(manifestBytes.count)
        desc.annotations = (desc.annotations ?? [:]).merging([Imprint.digestLabel: plan.root.prefixed]) { $1 }
        index.manifests[position] = desc
        return (desc, index)
    }

    /// Writes a new archive: every regular member of `archive` except `replacing` (copied in place order,
    /// read by offset), then `add`. Written to a temporary file and renamed, so no partial output remains.
    private func writeArchive(from archive: TarArchiveIndex, to output: String, replacing: Set<String>,
                              add: [(String, [UInt8])]) throws {
        let addedNames = Set(add.map { $0.0 })
        try AtomicFile.write(to: output) { fd in
            let writer = TarWriter { try AtomicFile.writeAll(fd, $0, path: output) }
            var dirs = Set<String>()
            func parents(_ path: String) throws {
                let comps = path.split(separator: "/").map(String.init)
                for i in stride(from: 1, to: comps.count, by: 1) {
                    let d = comps[0..<i].joined(separator: "/")
                    if dirs.insert(d).inserted {
                        try writer.writeHeader(TarEntry(path: Array(d.utf8), kind: .directory, mode: 0o755))
                    }
                }
            }
            for m in archive.members where !replacing.contains(m.path) && !addedNames.contains(m.path) {
                try parents(m.path)
                try writer.writeHeader(TarEntry(path: Array(m.path.utf8), kind: .file, mode: 0o644, size: m.size))
                try archive.source(m).forEachChunk { try writer.writeContent($0) }
            }
            for (name, bytes) in add {
                try parents(name)
                try writer.writeFile(TarEntry(path: Array(name.utf8), kind: .file, mode: 0o644), content: bytes)
            }
            try writer.finish()
        }
    }

    private func realpathString(_ p: String) -> String? {
        guard let r = realpath(p, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }
}
