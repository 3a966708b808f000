import Foundation

/// Media types of the OCI image spec (image-spec `media-types.md`) and their Docker schema 2 equivalents.
package enum MediaType {
    package static let ociIndex = "application/vnd.oci.image.index.v1+json"
    package static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    package static let ociConfig = "application/vnd.oci.image.config.v1+json"
    package static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    package static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    package static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    package static let ociEmpty = "application/vnd.oci.empty.v1+json"
    package static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    package static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    package static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    package static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    package static let dockerLayer = "application/vnd.docker.image.rootfs.diff.tar"

    package static let indexTypes: Set<String> = [ociIndex, dockerManifestList]
    package static let manifestTypes: Set<String> = [ociManifest, dockerManifest]
}

/// A content descriptor (image-spec `descriptor.md`, "Properties"): what a blob is, its digest and size.
package struct Descriptor: Codable, Equatable, Sendable {
    /// `mediaType`; empty when the document left it out (early OCI layouts do so in `index.json`).
    package var mediaType: String
    package var digest: Digest
    /// `size` in bytes: 0 to 2^56 here (a larger claim is refused before anything is read).
    package var size: UInt64
    package var urls: [String]?
    package var annotations: [String: String]?
    /// `data`: the blob's content, base64, embedded.
    package var data: String?
    package var artifactType: String?
    /// `platform` (image-spec `image-index.md`): only in an index's `manifests`.
    package var platform: Platform?
    package var unknown = UnknownFields()

    package enum CodingKeys: String, CodingKey, CaseIterable {
        case mediaType, digest, size, urls, annotations, data, artifactType, platform
    }

    package init(mediaType: String, digest: Digest, size: UInt64, annotations: [String: String]? = nil,
                artifactType: String? = nil) {
        self.mediaType = mediaType; self.digest = digest; self.size = size
        self.annotations = annotations?.isEmpty == true ? nil : annotations
        self.artifactType = artifactType
    }

    /// One annotation, nil when absent.
    package func annotation(_ key: String) -> String? { annotations?[key] }

    package init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mediaType = try c.decodeIfPresent(String.self, forKey: .mediaType) ?? ""
        digest = try c.decode(Digest.self, forKey: .digest)
        // Read as any JSON value first: this decoder reports a number that does not fit the type (-1 as UInt64) as
        // "not valid JSON" without naming the field.
        guard case .number(_, let n?) = try c.decode(JSONValue.self, forKey: .size), n >= 0 else {
            throw DecodingError.dataCorruptedError(forKey: .size, in: c, debugDescription: "not a whole number of bytes")
        }
        guard UInt64(n) <= Limits.maxEntrySize else {
            throw DecodingError.dataCorruptedError(forKey: .size, in: c, debugDescription: "\(n) bytes is more than imprint reads (2^56)")
        }
        size = UInt64(n)
        urls = try c.decodeIfPresent([String].self, forKey: .urls)
        annotations = try c.decodeIfPresent([String: String].self, forKey: .annotations)
        data = try c.decodeIfPresent(String.self, forKey: .data)
        artifactType = try c.decodeIfPresent(String.self, forKey: .artifactType)
        platform = try c.decodeIfPresent(Platform.self, forKey: .platform)
        unknown = try UnknownFields(from: decoder, known: CodingKeys.self)
    }

    package func encode(to encoder: Encoder) throws {
        try unknown.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        if !mediaType.isEmpty { try c.encode(mediaType, forKey: .mediaType) }
        try c.encode(digest, forKey: .digest)
        try c.encode(size, forKey: .size)
        try c.encodeIfPresent(urls, forKey: .urls)
        try c.encodeIfPresent(annotations, forKey: .annotations)
        try c.encodeIfPresent(data, forKey: .data)
        try c.encodeIfPresent(artifactType, forKey: .artifactType)
        try c.encodeIfPresent(platform, forKey: .platform)
    }
}

/// A platform (image-spec `image-index.md`, `manifests[].platform`; the same fields sit at the top of an image
/// config, `config.md`).
package struct Platform: Codable, Equatable, Sendable, CustomStringConvertible {
    package var architecture: String
    package var os: String
    package var osVersion: String?
    package var osFeatures: [String]?
    package var variant: String?
    package var features: [String]?
    package var unknown = UnknownFields()

    package enum CodingKeys: String, CodingKey, CaseIterable {
        case architecture, os, variant, features
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    package init(os: String, architecture: String, variant: String? = nil) {
        self.os = os; self.architecture = architecture; self.variant = variant
    }

    /// Parses `os/arch[/variant]`.
    package init(parsing s: String) throws {
        let parts = s.split(separator: "/").map(String.init)
        guard parts.count == 2 || parts.count == 3 else {
            throw ImprintError.badInput("invalid platform \"\(s)\": expected os/arch[/variant], e.g. linux/amd64")
        }
        self.init(os: parts[0], architecture: parts[1], variant: parts.count == 3 ? parts[2] : nil)
    }

    package init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        architecture = try c.decode(String.self, forKey: .architecture)
        os = try c.decode(String.self, forKey: .os)
        osVersion = try c.decodeIfPresent(String.self, forKey: .osVersion)
        osFeatures = try c.decodeIfPresent([String].self, forKey: .osFeatures)
        variant = try c.decodeIfPresent(String.self, forKey: .variant)
        features = try c.decodeIfPresent([String].self, forKey: .features)
        unknown = try UnknownFields(from: decoder, known: CodingKeys.self)
    }

    package func encode(to encoder: Encoder) throws {
        try unknown.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(architecture, forKey: .architecture)
        try c.encode(os, forKey: .os)
        try c.encodeIfPresent(osVersion, forKey: .osVersion)
        try c.encodeIfPresent(osFeatures, forKey: .osFeatures)
        try c.encodeIfPresent(variant, forKey: .variant)
        try c.encodeIfPresent(features, forKey: .features)
    }

    package var description: String { [os, architecture, variant].compactMap { $0 }.joined(separator: "/") }

    /// True when `self` (what was asked for) selects `other`; a missing variant matches any variant.
    package func selects(_ other: Platform) -> Bool {
        os == other.os && architecture == other.architecture && (variant == nil || variant == other.variant)
    }

    /// The platform this process runs on, as Go names it.
    package static var host: Platform {
        #if arch(x86_64)
        return Platform(os: "linux", architecture: "amd64")
        #elseif arch(arm64)
        return Platform(os: "linux", architecture: "arm64", variant: "v8")
        #else
        return Platform(os: "linux", architecture: "unknown")
        #endif
    }
}
