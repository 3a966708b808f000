import Foundation

/// One layer of an image: its descriptor and the diff_id the config records for it.
public struct ImageLayer: Sendable {
    public var descriptor: Descriptor
    /// sha256 of the uncompressed layer tar (`rootfs.diff_ids[i]`), when the config has one.
    public var diffID: Digest?
    /// For a docker-archive: the archive member holding the layer.
    public var member: String?

    package init(descriptor: Descriptor, diffID: Digest? = nil, member: String? = nil) {
        self.descriptor = descriptor; self.diffID = diffID; self.member = member
    }
}

/// What imprint knows about an image after resolving a reference: manifest, config and layers.
public struct ImageInfo: Sendable {
    /// The descriptor of the image manifest (nil for a classic docker-archive, which has none).
    public var manifestDescriptor: Descriptor?
    public var manifestBytes: [UInt8]?
    public var manifest: ImageManifest?
    public var configDescriptor: Descriptor
    public var configBytes: [UInt8]
    public var config: ImageConfig
    public var layers: [ImageLayer]
    /// The tag or reference that selected the image, if any.
    public var reference: String?
    /// docker-archive `RepoTags`.
    public var repoTags: [String] = []
    /// The index (or docker-archive manifest list) entry position of the chosen manifest.
    public var indexPosition: Int?
    /// True when the manifest is a Docker schema 2 manifest (layers get Docker media types).
    public var isDockerFamily: Bool

    package init(manifestDescriptor: Descriptor?, manifestBytes: [UInt8]?, manifest: ImageManifest?, configDescriptor: Descriptor,
                 configBytes: [UInt8], config: ImageConfig, layers: [ImageLayer], reference: String? = nil, repoTags: [String] = [],
                 indexPosition: Int? = nil, isDockerFamily: Bool) {
        self.manifestDescriptor = manifestDescriptor; self.manifestBytes = manifestBytes; self.manifest = manifest
        self.configDescriptor = configDescriptor; self.configBytes = configBytes; self.config = config; self.layers = layers
        self.reference = reference; self.repoTags = repoTags; self.indexPosition = indexPosition; self.isDockerFamily = isDockerFamily
    }

    /// The manifest digest; for a classic docker-archive, the config digest (the Docker image ID).
    public var digest: Digest { manifestDescriptor?.digest ?? configDescriptor.digest }

    /// The image's platform from its config.
    public var platform: Platform { config.platform }

    /// The same image with only layer `index` (readers open layers through `layers[i]`, so reading this reads
    /// just that layer).
    public func onlyLayer(_ index: Int) -> ImageInfo {
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
public protocol ImageReader: AnyObject {
    /// Chooses one image by tag and platform and reads (and verifies) its manifest and config.
    func resolve(reference: String?, platform: Platform?) throws -> ImageInfo
    /// The compressed bytes of layer `index`, verified against the descriptor as they are read
    /// (`verify()` must be called after the data was consumed).
    func openLayer(_ image: ImageInfo, _ index: Int) throws -> DigestVerifyingSource
    /// True when layer blobs are verified through their diff_id (uncompressed) rather than their blob digest.
    var verifiesUncompressed: Bool { get }
}
