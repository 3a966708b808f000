import Foundation
import Testing
@testable import ImprintCore

private func hex(_ s: String) -> [UInt8] { Hex.decode(Substring(s))! }

/// Writes `text` to a fresh temporary file, calls `body` with its path, removes it.
private func withTempFile<T>(_ text: String, _ body: (String) throws -> T) throws -> T {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("imprint-key-\(UUID().uuidString)").path
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

/// A PKCS#8 PEM for a raw Ed25519 seed (RFC 8410 §7: the fixed DER prefix, then the 32-byte seed).
private func pkcs8PEM(seed: [UInt8]) -> String {
    let der = hex("302e020100300506032b657004220420") + seed
    return "-----BEGIN PRIVATE KEY-----\n\(Data(der).base64EncodedString())\n-----END PRIVATE KEY-----\n"
}

@Suite struct Ed25519Tests {
    // RFC 8032 §7.1, TEST 1 and TEST 2.
    static let seed1 = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
    static let pub1 = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    static let sig1 = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    static let seed2 = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
    static let pub2 = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
    static let sig2 = "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"

    @Test(arguments: [(seed1, pub1, "", sig1), (seed2, pub2, "72", sig2)])
    func rfc8032Vectors(seed: String, pub: String, message: String, signature: String) throws {
        try withTempFile(pkcs8PEM(seed: hex(seed))) { path in
            let key = try Ed25519PrivateKey(pemFile: path)
            #expect(Hex.encode(key.publicKey.rawBytes) == pub)
            #expect(key.publicKey.legacyKeyId == SHA256.hash(hex(pub)).hex)
            // securesystemslib's key id: SHA-256 of the canonical JSON of the key.
            let canonical = #"{"keytype":"ed25519","keyval":{"public":"\#(pub)"},"scheme":"ed25519"}"#
            #expect(key.keyId == SHA256.hash(Array(canonical.utf8)).hex)
            #expect(Hex.encode(try key.sign(hex(message))) == signature)
            let raw = try Ed25519PublicKey(rawBytes: hex(pub))
            #expect(try raw.verify(hex(message), signature: hex(signature)))
            #expect(raw.keyId == key.keyId)
        }
    }

    @Test func generatedKeysRoundTripThroughPEM() throws {
        let key = try Ed25519PrivateKey.generate()
        let keyPEM = String(decoding: try key.pemBytes(), as: UTF8.self)
        let pubPEM = String(decoding: try key.publicKey.pemBytes(), as: UTF8.self)
        #expect(keyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        #expect(pubPEM.hasPrefix("-----BEGIN PUBLIC KEY-----\n"))
        let message = Array("hello".utf8)
        let signature = try key.sign(message)
        #expect(signature.count == 64)
        try withTempFile(keyPEM) { keyPath in
            try withTempFile(pubPEM) { pubPath in
                let key2 = try Ed25519PrivateKey(pemFile: keyPath)
                let pub = try Ed25519PublicKey(pemFile: pubPath)
                #expect(key2.keyId == key.keyId)
                #expect(pub.keyId == key.keyId)
                #expect(try key2.sign(message) == signature)  // Ed25519 is deterministic
                #expect(try pub.verify(message, signature: signature))
                #expect(try !pub.verify(Array("hellO".utf8), signature: signature))
                var flipped = signature
                flipped[10] ^= 1
                #expect(try !pub.verify(message, signature: flipped))
                #expect(try !pub.verify(message, signature: Array(signature.prefix(63))))
            }
        }
        #expect(try Ed25519PrivateKey.generate().keyId != key.keyId)
    }

    @Test func unusableKeyFilesGiveOneLineErrorsNamingTheFile() throws {
        try withTempFile("not a key\n") { path in
            let e = #expect(throws: ImprintError.self) { try Ed25519PrivateKey(pemFile: path) }
            #expect(e?.code == .badInput)
            #expect(e?.message.contains(path) == true)
            #expect(e?.message.contains("\n") == false)
        }
        try withTempFile(pkcs8PEM(seed: hex(Self.seed1))) { path in
            let e = #expect(throws: ImprintError.self) { try Ed25519PublicKey(pemFile: path) }
            #expect(e?.message.contains("is a private key") == true)
        }
        try withTempFile("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n") { path in
            let e = #expect(throws: ImprintError.self) { try Ed25519PrivateKey(pemFile: path) }
            #expect(e?.message.contains("encrypted") == true)
        }
        let missing = "/nonexistent/imprint.key"
        let e = #expect(throws: ImprintError.self) { try Ed25519PrivateKey(pemFile: missing) }
        #expect(e?.code == .notFound)
        #expect(e?.message.contains(missing) == true)
    }
}

@Suite struct ManifestSignatureTests {
    let digest = SHA256.hash(Array("tree".utf8))
    let other = SHA256.hash(Array("other tree".utf8))

    @Test func canonicalPayloadIsTheDocumentedText() {
        #expect(ManifestSignature.payload(for: digest) == Array("imprint-manifest-v1 sha256:\(digest.hex)".utf8))
    }

    @Test func signatureFileSitsBesideTheManifest() {
        #expect(ManifestSignature.path(besideManifest: ".imprint/manifest.json") == ".imprint/manifest.sig")
        #expect(ManifestSignature.path(besideManifest: "/a/b/m") == "/a/b/m.sig")
    }

    @Test func verdictNamesTheCheckThatFailed() throws {
        let key = try Ed25519PrivateKey.generate(), stranger = try Ed25519PrivateKey.generate()
        let sig = try ManifestSignature.sign(rootDigest: digest, key: key)
        #expect(sig.keyId == key.keyId)
        #expect(try key.publicKey.verify(ManifestSignature.payload(for: digest), signature: sig.signature))

        #expect(try sig.verdict(rootDigest: digest, publicKey: key.publicKey) == .valid)
        #expect(try sig.verify(rootDigest: digest, publicKey: key.publicKey))

        #expect(try sig.verdict(rootDigest: other, publicKey: key.publicKey) == .digestMismatch(signed: digest, manifest: other))
        #expect(try !sig.verify(rootDigest: other, publicKey: key.publicKey))
        #expect(try sig.verdict(rootDigest: other, publicKey: key.publicKey).description.hasPrefix("digest mismatch"))

        let keyVerdict = try sig.verdict(rootDigest: digest, publicKey: stranger.publicKey)
        #expect(keyVerdict == .keyMismatch(signedBy: key.keyId, expected: stranger.keyId))
        #expect(keyVerdict.description.hasPrefix("key id mismatch"))

        // An attacker rewrites the digest field (and the manifest) but cannot re-sign.
        var forged = sig
        forged.digest = other
        #expect(try forged.verdict(rootDigest: other, publicKey: key.publicKey) == .badSignature)
        // An attacker re-signs with their own key and claims the real key id.
        var resigned = try ManifestSignature.sign(rootDigest: other, key: stranger)
        resigned.keyId = key.keyId
        #expect(try resigned.verdict(rootDigest: other, publicKey: key.publicKey) == .badSignature)
        // A signature of an earlier release names the key by the SHA-256 of its raw bytes: still valid, and still
        // only with that key.
        var legacy = sig
        legacy.keyId = key.publicKey.legacyKeyId
        #expect(try legacy.verdict(rootDigest: digest, publicKey: key.publicKey) == .valid)
        #expect(try legacy.verdict(rootDigest: digest, publicKey: stranger.publicKey) == .keyMismatch(signedBy: key.publicKey.legacyKeyId, expected: stranger.keyId))
    }

    @Test func jsonIsDeterministicAndRoundTrips() throws {
        let key = try Ed25519PrivateKey.generate()
        let sig = try ManifestSignature.sign(rootDigest: digest, key: key)
        let bytes = sig.jsonBytes()
        #expect(bytes == (try ManifestSignature.sign(rootDigest: digest, key: key)).jsonBytes())
        #expect(try ManifestSignature.parse(bytes, source: "m.sig") == sig)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix("{\n  \"mediaType\": \"application/vnd.imprint.signature.v1+json\",\n  \"algorithm\": \"ed25519\",\n"))
        #expect(text.hasSuffix("}\n"))
    }

    static let good: [String: String] = [
        "mediaType": "application/vnd.imprint.signature.v1+json", "algorithm": "ed25519",
        "digest": "sha256:" + String(repeating: "ab", count: 32), "keyId": String(repeating: "cd", count: 32),
        "signature": Data(repeating: 7, count: 64).base64EncodedString(),
    ]

    @Test(arguments: [
        ("mediaType", "application/json", "not an imprint signature"),
        ("algorithm", "rsa", "not supported"),
        ("digest", String(repeating: "ab", count: 32), "digest"),
        ("digest", "sha256:" + String(repeating: "AB", count: 32), "digest"),
        ("keyId", "abc", "keyId"),
        ("signature", Data(repeating: 7, count: 63).base64EncodedString(), "signature"),
        ("signature", "!!!", "signature"),
        ("extra", "x", "unknown field extra"),
    ])
    func malformedDocumentsAreRejected(field: String, value: String, expected: String) throws {
        var doc = Self.good
        doc[field] = value
        let bytes = Array(try JSONSerialization.data(withJSONObject: doc))
        let e = #expect(throws: ImprintError.self) { try ManifestSignature.parse(bytes, source: "x.sig") }
        #expect(e?.message.contains("x.sig") == true)
        #expect(e?.message.contains(expected) == true, "\(e?.message ?? "")")
    }

    @Test func wellFormedDocumentParses() throws {
        let bytes = Array(try JSONSerialization.data(withJSONObject: Self.good))
        let sig = try ManifestSignature.parse(bytes, source: "x.sig")
        #expect(sig.signature == [UInt8](repeating: 7, count: 64))
        #expect(throws: ImprintError.self) { try ManifestSignature.parse(Array("[]".utf8), source: "x.sig") }
    }
}
