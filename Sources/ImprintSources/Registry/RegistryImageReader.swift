import Foundation

/// An `ImageReader` over a registry: resolves the reference (descending into a multi-platform index),
/// fetches manifest and config, and streams layers from `GET /v2/<name>/blobs/<digest>`, each verified
/// against its descriptor while it is read.
package final class RegistryImageReader: ImageReader {
    package let client: RegistryClient
    package let reference: RegistryReference
    package var verifiesUncompressed: Bool { false }
    /// The manifest or index the reference points at (before choosing a platform).
    package private(set) var topDescriptor: Descriptor?

    package init(_ reference: RegistryReference, client: RegistryClient? = nil, options: RegistryOptions = RegistryOptions()) throws {
        self.reference = reference
        self.client = try client ?? RegistryClient(for: reference, options: options)
    }

    /// Resolves the image; `reference` is ignored (the `RegistryReference` carries the tag or digest).
    package func resolve(reference _: String?, platform: Platform?) throws -> ImageInfo {
        let repo = reference.repository
        var (desc, bytes) = try client.manifest(repo, reference: reference.manifestReference)
        topDescriptor = desc
        var depth = 0
        while MediaType.indexTypes.contains(desc.mediaType) {
            depth += 1
            if depth > 4 { throw ImprintError.badInput("\(reference): image indexes nested too deeply") }
            let index = try OCIJSON.decode(ImageIndex.self, from: bytes, what: "image index \(desc.digest)")
            let chosen = try RegistryImageReader.choose(index.manifests, platform: platform, what: "\(reference)")
            (desc, bytes) = try client.manifest(repo, reference: chosen.digest.prefixed)
            if desc.mediaType.isEmpty { desc.mediaType = chosen.mediaType }
        }
        guard MediaType.manifestTypes.contains(desc.mediaType) else {
            throw ImprintError(.unsupported, "\(reference): manifest \(desc.digest) has unsupported media type \"\(desc.mediaType)\"")
        }
        let manifest = try OCIJSON.decode(ImageManifest.self, from: bytes, what: "manifest \(desc.digest)")
        let configBytes = try client.blob(repo, manifest.config)
        let config = try OCIJSON.decode(ImageConfig.self, from: configBytes, what: "image config \(manifest.config.digest)")
        if let platform, !platform.selects(config.platform) {
            throw ImprintError(.notFound, "\(reference): no image for platform \(platform) (available: \(config.platform))")
        }
        return ImageInfo(manifestDescriptor: desc, manifestBytes: bytes, manifest: manifest, configDescriptor: manifest.config,
                         configBytes: configBytes, config: config, layers: ImageInfo.layers(of: manifest, config: config), reference: reference.tag,
                         indexPosition: nil, isDockerFamily: desc.mediaType == MediaType.dockerManifest)
    }

    package func openLayer(_ image: ImageInfo, _ index: Int) throws -> DigestVerifyingSource {
        try client.openBlob(reference.repository, image.layers[index].descriptor)
    }

    package static func choose(_ list: [Descriptor], platform: Platform?, what: String) throws -> Descriptor {
        if list.isEmpty { throw ImprintError(.notFound, "\(what): the image index lists no manifests") }
        // Attestation manifests (buildx) carry platform unknown/unknown; never pick them.
        let images = list.filter { $0.platform?.os != "unknown" }
        if images.count == 1, platform == nil { return images[0] }
        let want = platform ?? Platform.host
        if let m = images.first(where: { $0.platform.map { want.selects($0) } ?? false }) { return m }
        let available = images.compactMap { $0.platform?.description }
        throw ImprintError(.notFound, "\(what): no image for platform \(want) (available: \(available.isEmpty ? "none declared" : available.joined(separator: ", ")))")
    }

    /// The index of the layer `imprint stamp` added: the last layer, when the last history entry that made a
    /// layer says `created_by: "imprint stamp"` or the config carries the `org.imprint.digest` label.
    package static func stampLayerIndex(_ image: ImageInfo) -> Int? {
        guard !image.layers.isEmpty else { return nil }
        if image.config.layerHistory.last == "imprint stamp" { return image.layers.count - 1 }
        if image.config.labels[Imprint.digestLabel] != nil { return image.layers.count - 1 }
        return nil
    }
}
