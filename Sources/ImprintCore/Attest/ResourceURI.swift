import Foundation

/// What imprint writes where an attestation names a resource by URI (SLSA `resolvedDependencies[].uri`, a VSA's
/// `resourceUri`): always something a consumer can resolve without knowing where imprint ran.
///
/// - a registry image: the package URL `pkg:oci/NAME@sha256:HEX?repository_url=HOST/REPO[&tag=TAG]`, pinned to the
///   digest whether or not the reference named one (the canonical form of packageurl-python);
/// - an image or tree on disk (OCI layout, oci-archive, docker-archive, tar, directory): the absolute `file:` URI;
/// - a running container or process: imprint's own target (`docker:NAME`, `podman:NAME`, `pid:N`), itself a URI;
/// - standard input: none (`nil`).
package enum ResourceURI {
    package static func of(_ target: String, digest: Digest?) throws -> String? {
        if RegistryReference.isRegistry(target) {
            let ref = try RegistryReference(parsing: target)
            guard let d = ref.digest ?? digest else { return nil }
            return purl(ref, digest: d)
        }
        if LiveSource.isLive(target) { return target }
        if target == "-" { return nil }
        let path = try SourceLoader.parse(target).path
        return fileURI(path)
    }

    /// `pkg:oci/NAME@sha256:HEX?repository_url=HOST/REPO[&tag=TAG]`.
    package static func purl(_ ref: RegistryReference, digest: Digest) -> String {
        let name = (ref.repository.split(separator: "/").last.map(String.init) ?? ref.repository).lowercased()
        var uri = "pkg:oci/\(encode(name))@\(digest.prefixed)?repository_url=\(encode(ref.host + "/" + ref.repository, keep: "/:"))"
        if let tag = ref.tag { uri += "&tag=\(encode(tag))" }
        return uri
    }

    /// The absolute `file:` URI of a path (each byte outside the unreserved set and `/` percent-encoded).
    package static func fileURI(_ path: String) -> String {
        let abs = URL(fileURLWithPath: path).standardizedFileURL.path
        return "file://" + encode(abs, keep: "/")
    }

    static func encode(_ s: String, keep: String = "") -> String {
        let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8).union(keep.utf8)
        var out = ""
        for b in s.utf8 {
            if unreserved.contains(b) { out.unicodeScalars.append(Unicode.Scalar(b)) } else { out += String(format: "%%%02X", b) }
        }
        return out
    }
}
