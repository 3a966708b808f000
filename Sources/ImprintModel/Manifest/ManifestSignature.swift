import Foundation

/// An Ed25519 signature over a manifest's root digest, stored as a small JSON document beside the manifest
/// (`manifest.json` → `manifest.sig`; in an image `.imprint/manifest.sig` beside `.imprint/manifest.json`).
///
/// ```json
/// {"mediaType":"application/vnd.imprint.signature.v1+json","algorithm":"ed25519",
///  "digest":"sha256:<root digest>","keyId":"<securesystemslib key id, hex>","signature":"<base64>"}
/// ```
/// Schema: `schemas/signature.schema.json`.
///
/// **Canonical payload.** What is signed is neither the JSON nor the manifest file but exactly the ASCII text
///
///     imprint-manifest-v1 sha256:<64 lowercase hex digits of the root digest>
///
/// (one space, no trailing newline), signed with pure Ed25519 (RFC 8032). The root digest already commits to
/// every entry of the manifest (see `schemas/DIGEST.md`), so signing it signs the whole tree; the fixed prefix
/// keeps the signature from being valid for any other kind of message. Anyone can check a signature without
/// imprint:
///
///     printf 'imprint-manifest-v1 %s' "$(jq -r .digest manifest.sig)" > payload
///     jq -r .signature manifest.sig | base64 -d > sig.bin
///     openssl pkeyutl -verify -pubin -inkey key.pub -rawin -in payload -sigfile sig.bin
package struct ManifestSignature: Sendable, Equatable {
    package static let mediaType = "application/vnd.imprint.signature.v1+json"
    package static let algorithm = "ed25519"
    /// The text before the digest in the canonical payload.
    package static let payloadPrefix = "imprint-manifest-v1 "

    /// The root digest that was signed.
    package var digest: Digest
    /// SHA-256 of the signer's raw 32-byte public key, 64 lowercase hex digits.
    package var keyId: String
    /// The 64-byte Ed25519 signature over `payload(for: digest)`.
    package var signature: [UInt8]

    package init(digest: Digest, keyId: String, signature: [UInt8]) {
        self.digest = digest
        self.keyId = keyId
        self.signature = signature
    }

    /// The canonical signed payload: the ASCII bytes of `imprint-manifest-v1 sha256:<hex>`.
    package static func payload(for rootDigest: Digest) -> [UInt8] {
        Array((payloadPrefix + rootDigest.prefixed).utf8)
    }

    /// Where the signature of the manifest at `manifestPath` lives by default: the same name with `.json`
    /// replaced by `.sig` (`.imprint/manifest.json` → `.imprint/manifest.sig`), or `.sig` appended.
    package static func path(besideManifest manifestPath: String) -> String {
        if manifestPath.hasSuffix(".json") { return String(manifestPath.dropLast(5)) + ".sig" }
        return manifestPath + ".sig"
    }

    /// Signs a manifest's root digest.
    /// - Throws: `failure` only when OpenSSL cannot sign.
    package static func sign(rootDigest: Digest, key: Ed25519PrivateKey) throws -> ManifestSignature {
        ManifestSignature(digest: rootDigest, keyId: key.keyId, signature: try key.sign(payload(for: rootDigest)))
    }

    /// The outcome of checking a signature against a manifest and a public key.
    package enum Verdict: Sendable, Equatable, CustomStringConvertible {
        /// The signature is by this key, over this manifest's digest.
        case valid
        /// The signature was made for another manifest: the manifest changed after signing.
        case digestMismatch(signed: Digest, manifest: Digest)
        /// The signature names another signer than the given public key.
        case keyMismatch(signedBy: String, expected: String)
        /// Key id and digest agree but the Ed25519 signature does not verify: forged or damaged.
        case badSignature

        package var isValid: Bool { self == .valid }

        /// One line for a person.
        package var description: String {
            switch self {
            case .valid:
                return "valid"
            case let .digestMismatch(signed, manifest):
                return "digest mismatch: the signature is for \(signed), the manifest's digest is \(manifest) (the manifest changed after signing)"
            case let .keyMismatch(signedBy, expected):
                return "key id mismatch: signed by key \(signedBy), the public key given is \(expected)"
            case .badSignature:
                return "bad signature: key id and digest match but the Ed25519 signature does not verify (forged or damaged)"
            }
        }
    }

    /// Checks this signature against a manifest's root digest and the signer's public key, in this order:
    /// the key id, the signed digest, then the Ed25519 signature over the canonical payload of `rootDigest`.
    /// - Throws: `failure` only when OpenSSL cannot run the verification.
    package func verdict(rootDigest: Digest, publicKey: Ed25519PublicKey) throws -> Verdict {
        let expectedKey = publicKey.keyId
        // A signature written by an earlier release names the key by the SHA-256 of its raw bytes.
        if keyId != expectedKey && keyId != publicKey.legacyKeyId { return .keyMismatch(signedBy: keyId, expected: expectedKey) }
        if digest != rootDigest { return .digestMismatch(signed: digest, manifest: rootDigest) }
        let ok = try publicKey.verify(Self.payload(for: rootDigest), signature: signature)
        return ok ? .valid : .badSignature
    }

    /// True when the signature is by `publicKey` over `rootDigest`; false otherwise. Call
    /// ``verdict(rootDigest:publicKey:)`` to learn which check failed (digest, key id or signature).
    /// - Throws: `failure` only when OpenSSL cannot run the verification.
    package func verify(rootDigest: Digest, publicKey: Ed25519PublicKey) throws -> Bool {
        try verdict(rootDigest: rootDigest, publicKey: publicKey).isValid
    }

    /// The document as deterministic JSON (fixed key order, two-space indent, trailing newline).
    package func jsonBytes() -> [UInt8] {
        var w = JSONWriter(pretty: true, reserve: 512)
        w.beginObject()
        w.string("mediaType", Self.mediaType)
        w.string("algorithm", Self.algorithm)
        w.string("digest", digest.prefixed)
        w.string("keyId", keyId)
        w.string("signature", Data(signature).base64EncodedString())
        w.endObject()
        w.end()
        return w.bytes
    }

    /// Parses a signature document.
    /// - Throws: `badInput` naming `source` for invalid JSON, another media type or algorithm, or a malformed field;
    ///   `unsupported` for an algorithm other than ed25519.
    package static func parse(_ bytes: [UInt8], source: String) throws -> ManifestSignature {
        let obj = try JSONRead.object(bytes, what: source)
        guard obj["mediaType"] as? String == mediaType else {
            throw ImprintError.badInput("\(source) is not an imprint signature (mediaType is not \(mediaType))")
        }
        guard let alg = obj["algorithm"] as? String else { throw ImprintError.badInput("\(source): no algorithm") }
        guard alg == algorithm else {
            throw ImprintError(.unsupported, "\(source): signature algorithm \(alg) is not supported (only \(algorithm))")
        }
        guard let d = obj["digest"] as? String, d.hasPrefix("sha256:"), let digest = Digest(hex: d) else {
            throw ImprintError.badInput("\(source): digest is not sha256:<64 lowercase hex digits>")
        }
        guard let keyId = obj["keyId"] as? String, keyId.utf8.count == 64,
              keyId.utf8.allSatisfy({ Hex.digits.contains($0) }) else {
            throw ImprintError.badInput("\(source): keyId is not 64 lowercase hex digits")
        }
        guard let s = obj["signature"] as? String, let raw = Data(base64Encoded: s), raw.count == 64 else {
            throw ImprintError.badInput("\(source): signature is not 64 bytes of base64")
        }
        let known: Set<String> = ["mediaType", "algorithm", "digest", "keyId", "signature"]
        if let extra = obj.keys.sorted().first(where: { !known.contains($0) }) {
            throw ImprintError.badInput("\(source): unknown field \(extra)")
        }
        return ManifestSignature(digest: digest, keyId: keyId, signature: Array(raw))
    }
}

extension ManifestSignature {
    /// What `imprint verify-signature` found: the one line to print, and whether the signature verified.
    package struct FileCheck: ExitStatusReporting {
        package var valid: Bool
        package var line: String
        package var exitStatus: Int32 { Self.status(ok: valid) }
    }

    /// `imprint verify-signature`: checks the signature at `signaturePath` of the file at `path` with `publicKey`.
    /// A 64-byte signature file is a raw Ed25519 signature over the file's bytes (a release tarball's); any other
    /// is an imprint signature JSON over a manifest's root digest. Returns the one line to print and whether it
    /// verified; unreadable or malformed input throws.
    package static func checkFile(_ path: String, signaturePath: String, publicKey: Ed25519PublicKey) throws -> FileCheck {
        let sigBytes = try readFile(signaturePath, what: "signature")
        if sigBytes.count == 64 { // JSON signatures are always longer
            let message = try readFile(path, what: "signed file")
            if try publicKey.verify(message, signature: sigBytes) {
                return FileCheck(valid: true, line: "signature valid: \(path) (\(message.count) bytes) signed by key \(publicKey.keyId)")
            }
            return FileCheck(valid: false, line: "signature INVALID: \(path): the Ed25519 signature \(signaturePath) does not verify with key \(publicKey.keyId)")
        }
        let m = try Manifest.parse(try readFile(path, what: "manifest"), source: path)
        let verdict = try ManifestSignature.parse(sigBytes, source: signaturePath).verdict(rootDigest: m.rootDigest, publicKey: publicKey)
        if verdict.isValid { return FileCheck(valid: true, line: "signature valid: \(path) (\(m.rootDigest)) signed by key \(publicKey.keyId)") }
        return FileCheck(valid: false, line: "signature INVALID: \(path): \(verdict)")
    }
}
