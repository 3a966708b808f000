import Foundation

/// Media types of the OCI image spec (image-spec `media-types.md`) and their Docker schema 2 equivalents.
public enum MediaType {
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    public static let dockerLayer = "application/vnd.docker.image.rootfs.diff.tar"

    static let indexTypes: Set<String> = [ociIndex, dockerManifestList]
    static let manifestTypes: Set<String> = [ociManifest, dockerManifest]
}

/// A platform as in image-spec `image-index.md` (`os`, `architecture`, `variant`).
public struct Platform: Equatable, Sendable, CustomStringConvertible {
    public var os: String
    public var architecture: String
    public var variant: String?

    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os; self.architecture = architecture; self.variant = variant
    }

    /// Parses `os/arch[/variant]`.
    public init(parsing s: String) throws {
        let parts = s.split(separator: "/").map(String.init)
        guard parts.count == 2 || parts.count == 3 else {
            throw ImprintError.badInput("invalid platform \"\(s)\": expected os/arch[/variant], e.g. linux/amd64")
        }
        self.init(os: parts[0], architecture: parts[1], variant: parts.count == 3 ? parts[2] : nil)
    }

    init?(json: Any?) {
        guard let d = json as? [String: Any], let os = d["os"] as? String, let arch = d["architecture"] as? String else { return nil }
        self.init(os: os, architecture: arch, variant: d["variant"] as? String)
    }

    public var description: String { [os, architecture, variant].compactMap { $0 }.joined(separator: "/") }

    /// True when `self` (what was asked for) selects `other`; a missing variant matches any variant.
    public func selects(_ other: Platform) -> Bool {
        os == other.os && architecture == other.architecture && (variant == nil || variant == other.variant)
    }

    /// The platform this process runs on, as Go names it.
    public static var host: Platform {
        #if arch(x86_64)
        return Platform(os: "linux", architecture: "amd64")
        #elseif arch(arm64)
        return Platform(os: "linux", architecture: "arm64", variant: "v8")
        #else
        return Platform(os: "linux", architecture: "unknown")
        #endif
    }
}

/// A content descriptor (image-spec `descriptor.md`): what a blob is, its digest and size.
public struct Descriptor: Sendable {
    public var mediaType: String
    public var digest: Digest
    public var size: UInt64
    public var annotations: [String: String]
    public var platform: Platform?
    /// The descriptor as it appeared in its JSON document, to preserve fields imprint does not model.
    public var json: [String: Any] {
        get { raw.value }
        set { raw = JSONBox(newValue) }
    }
    private var raw: JSONBox

    public init(mediaType: String, digest: Digest, size: UInt64, annotations: [String: String] = [:]) {
        self.mediaType = mediaType; self.digest = digest; self.size = size; self.annotations = annotations
        var d: [String: Any] = ["mediaType": mediaType, "digest": digest.prefixed, "size": size]
        if !annotations.isEmpty { d["annotations"] = annotations }
        raw = JSONBox(d)
    }

    /// Parses a descriptor object. `what` names the document for error messages.
    public init(json: Any?, what: String) throws {
        guard let d = json as? [String: Any] else { throw ImprintError.badInput("\(what): descriptor is not an object") }
        guard let ds = d["digest"] as? String else { throw ImprintError.badInput("\(what): descriptor has no digest") }
        guard ds.hasPrefix("sha256:"), let digest = Digest(hex: ds) else {
            throw ImprintError(.unsupported, "\(what): unsupported or malformed digest \(ds) (only sha256 is supported)")
        }
        guard let size = JSONRead.size(d["size"]) else { throw ImprintError.badInput("\(what): descriptor \(ds) has no valid size") }
        self.mediaType = d["mediaType"] as? String ?? ""
        self.digest = digest
        self.size = size
        self.annotations = d["annotations"] as? [String: String] ?? [:]
        self.platform = Platform(json: d["platform"])
        self.raw = JSONBox(d)
    }

    /// The JSON object for this descriptor with the modelled fields written back over the original ones.
    public var jsonObject: [String: Any] {
        var d = raw.value
        d["mediaType"] = mediaType
        d["digest"] = digest.prefixed
        d["size"] = NSNumber(value: size)
        if annotations.isEmpty { d.removeValue(forKey: "annotations") } else { d["annotations"] = annotations }
        return d
    }
}

/// Boxes a JSON dictionary so types holding one can still be `Sendable`.
// why @unchecked: the dictionary comes from JSONSerialization and is never mutated after boxing.
final class JSONBox: @unchecked Sendable {
    let value: [String: Any]
    init(_ value: [String: Any]) { self.value = value }
}

/// Serialises JSON the way imprint writes image metadata: sorted keys, no escaped slashes, compact.
public enum CanonicalJSON {
    public static func bytes(_ object: Any) throws -> [UInt8] {
        do {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            return Array(data)
        } catch {
            throw ImprintError(.failure, "cannot serialise JSON: \(error)")
        }
    }

    /// Parses a JSON object, failing with a message naming `what`.
    public static func object(_ bytes: [UInt8], what: String) throws -> [String: Any] {
        try JSONRead.object(bytes, what: what)
    }
}
