import Foundation

/// One layer of an image: its descriptor and the diff_id the config records for it.
package struct ImageLayer: Sendable {
    package var descriptor: Descriptor
    /// sha256 of the uncompressed layer tar (`rootfs.diff_ids[i]`), when the config has one.
    package var diffID: Digest?
    /// For a docker-archive: the archive member holding the layer.
    package var member: String?

    package init(descriptor: Descriptor, diffID: Digest? = nil, member: String? = nil) {
        self.descriptor = descriptor; self.diffID = diffID; self.member = member
    }
}

/// What imprint knows about an image after resolving a reference: manifest, config and layers.
package struct ImageInfo: Sendable {
    /// The descriptor of the image manifest (nil for a classic docker-archive, which has none).
    package var manifestDescriptor: Descriptor?
    package var manifestBytes: [UInt8]?
    package var manifest: ImageManifest?
    package var configDescriptor: Descriptor
    package var configBytes: [UInt8]
    package var config: ImageConfig
    package var layers: [ImageLayer]
    /// The tag or reference that selected the image, if any.
    package var reference: String?
    /// docker-archive `RepoTags`.
    package var repoTags: [String] = []
    /// The index (or docker-archive manifest list) entry position of the chosen manifest.
    package var indexPosition: Int?
    /// True when the manifest is a Docker schema 2 manifest (layers get Docker media types).
    package var isDockerFamily: Bool

    package init(manifestDescriptor: Descriptor?, manifestBytes: [UInt8]?, manifest: ImageManifest?, configDescriptor: Descriptor,
                 configBytes: [UInt8], config: ImageConfig, layers: [ImageLayer], reference: String? = nil, repoTags: [String] = [],
                 indexPosition: Int? = nil, isDockerFamily: Bool) {
        self.manifestDescriptor = manifestDescriptor; self.manifestBytes = manifestBytes; self.manifest = manifest
        self.configDescriptor = configDescriptor; self.configBytes = configBytes; self.config = config; self.layers = layers
        self.reference = reference; self.repoTags = repoTags; self.indexPosition = indexPosition; self.isDockerFamily = isDockerFamily
    }

    /// The manifest digest; for a classic docker-archive, the config digest (the Docker image ID).
    package var digest: Digest { manifestDescriptor?.digest ?? configDescriptor.digest }

    /// The image's platform from its config.
    package var platform: Platform { config.platform }

    /// The same image with only layer `index` (readers open layers through `layers[i]`, so reading this reads
    /// just that layer).
    package func onlyLayer(_ index: Int) -> ImageInfo {
        var one = self
        one.layers = [layers[index]]
        return one
    }

    /// The layers of `manifest`, each with the diff_id `config` records for it.
    package static func layers(of manifest: ImageManifest, config: ImageConfig) -> [ImageLayer] {
        let diffIDs = config.rootfs.diffIDs
        return manifest.layers.enumerated().map { i, d in ImageLayer(descriptor: d, diffID: i < diffIDs.count ? diffIDs[i] : nil) }
    }
}

/// Something images can be read from: an OCI layout (directory or archive) or a docker-archive.
package protocol ImageReader: AnyObject {
    /// Chooses one image by tag and platform and reads (and verifies) its manifest and config.
    func resolve(reference: String?, platform: Platform?) throws -> ImageInfo
    /// The compressed bytes of layer `index`, verified against the descriptor as they are read
    /// (`verify()` must be called after the data was consumed).
    func openLayer(_ image: ImageInfo, _ index: Int) throws -> DigestVerifyingSource
    /// True when layer blobs are verified through their diff_id (uncompressed) rather than their blob digest.
    var verifiesUncompressed: Bool { get }
}
