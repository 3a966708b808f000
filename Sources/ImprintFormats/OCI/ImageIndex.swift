import Foundation

/// An image index (image-spec `image-index.md`, "Image Index Property Descriptions"; Docker's manifest list has
/// the same shape): the manifests of one image for several platforms, or of several images (an OCI layout's
/// `index.json`, `image-layout.md`), or an artifact's referrers (distribution-spec "Listing Referrers").
package struct ImageIndex: Codable, Equatable, Sendable {
    package var schemaVersion: Int
    package var mediaType: String?
    package var artifactType: String?
    package var manifests: [Descriptor]
    package var subject: Descriptor?
    package var annotations: [String: String]?
    package var unknown = UnknownFields()

    package enum CodingKeys: String, CodingKey, CaseIterable {
        case schemaVersion, mediaType, artifactType, manifests, subject, annotations
    }

    /// An OCI index of `manifests`.
    package init(manifests: [Descriptor]) {
        schemaVersion = 2
        mediaType = MediaType.ociIndex
        self.manifests = manifests
    }

    package init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        schemaVersion = try c.decode(Int.self, forKey: .schemaVersion)
        mediaType = try c.decodeIfPresent(String.self, forKey: .mediaType)
        artifactType = try c.decodeIfPresent(String.self, forKey: .artifactType)
        manifests = try c.decode([Descriptor].self, forKey: .manifests)
        subject = try c.decodeIfPresent(Descriptor.self, forKey: .subject)
        annotations = try c.decodeIfPresent([String: String].self, forKey: .annotations)
        unknown = try UnknownFields(from: decoder, known: CodingKeys.self)
    }

    package func encode(to encoder: Encoder) throws {
        try unknown.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(schemaVersion, forKey: .schemaVersion)
        try c.encodeIfPresent(mediaType, forKey: .mediaType)
        try c.encodeIfPresent(artifactType, forKey: .artifactType)
        try c.encode(manifests, forKey: .manifests)
        try c.encodeIfPresent(subject, forKey: .subject)
        try c.encodeIfPresent(annotations, forKey: .annotations)
    }
}

/// An image manifest (image-spec `manifest.md`, "Image Manifest Property Descriptions"; Docker's schema 2
/// manifest has the same shape): one image's config and layers, or an artifact (`artifactType`, `subject`).
package struct ImageManifest: Codable, Equatable, Sendable {
    package var schemaVersion: Int
    package var mediaType: String?
    package var artifactType: String?
    package var config: Descriptor
    package var layers: [Descriptor]
    package var subject: Descriptor?
    package var annotations: [String: String]?
    package var unknown = UnknownFields()

    package enum CodingKeys: String, CodingKey, CaseIterable {
        case schemaVersion, mediaType, artifactType, config, layers, subject, annotations
    }

    package init(mediaType: String = MediaType.ociManifest, artifactType: String? = nil, config: Descriptor,
                layers: [Descriptor], subject: Descriptor? = nil, annotations: [String: String]? = nil) {
        schemaVersion = 2
        self.mediaType = mediaType; self.artifactType = artifactType; self.config = config; self.layers = layers
        self.subject = subject; self.annotations = annotations
    }

    package init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        schemaVersion = try c.decode(Int.self, forKey: .schemaVersion)
        mediaType = try c.decodeIfPresent(String.self, forKey: .mediaType)
        artifactType = try c.decodeIfPresent(String.self, forKey: .artifactType)
        config = try c.decode(Descriptor.self, forKey: .config)
        layers = try c.decode([Descriptor].self, forKey: .layers)
        subject = try c.decodeIfPresent(Descriptor.self, forKey: .subject)
        annotations = try c.decodeIfPresent([String: String].self, forKey: .annotations)
        unknown = try UnknownFields(from: decoder, known: CodingKeys.self)
    }

    package func encode(to encoder: Encoder) throws {
        try unknown.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(schemaVersion, forKey: .schemaVersion)
        try c.encodeIfPresent(mediaType, forKey: .mediaType)
        try c.encodeIfPresent(artifactType, forKey: .artifactType)
        try c.encode(config, forKey: .config)
        try c.encode(layers, forKey: .layers)
        try c.encodeIfPresent(subject, forKey: .subject)
        try c.encodeIfPresent(annotations, forKey: .annotations)
    }
}

/// What a manifest-or-index document says it is, read before choosing which of the two to decode.
package struct DocumentKind: Decodable {
    package var mediaType: String?
    package var manifests: JSONValue?
    package var layers: JSONValue?

    /// The document's own `mediaType`, else guessed from its shape (`manifests`: an index, `layers`: a manifest).
    package var guessed: String {
        if let mediaType, !mediaType.isEmpty { return mediaType }
        if manifests != nil { return MediaType.ociIndex }
        if layers != nil { return MediaType.ociManifest }
        return ""
    }
}
