import Foundation

/// Dead Simple Signing Envelopes (secure-systems-lab/dsse v1): the payload is signed through the Pre-Authentication
/// Encoding, `DSSEv1 SP LEN(type) SP type SP LEN(body) SP body`, with imprint's Ed25519 keys; the key id is the one
/// securesystemslib computes, so in-toto, cosign-style verifiers and securesystemslib itself find the key.
package struct DSSEEnvelope: Sendable {
    package static let mediaType = "application/vnd.dsse.envelope.v1+json"
    /// The in-toto payload type.
    package static let inTotoPayloadType = "application/vnd.in-toto+json"

    package var payloadType: String
    package var payload: [UInt8]
    package var signatures: [(keyid: String, sig: [UInt8])]

    package init(payloadType: String, payload: [UInt8], signatures: [(keyid: String, sig: [UInt8])] = []) {
        self.payloadType = payloadType; self.payload = payload; self.signatures = signatures
    }

    /// The bytes a signature covers.
    package static func pae(_ type: String, _ body: [UInt8]) -> [UInt8] {
        Array("DSSEv1 \(type.utf8.count) \(type) \(body.count) ".utf8) + body
    }

    /// Signs `payload` with `key`.
    package static func sign(_ payload: [UInt8], payloadType: String = inTotoPayloadType, key: Ed25519PrivateKey) throws -> DSSEEnvelope {
        let sig = try key.sign(pae(payloadType, payload))
        return DSSEEnvelope(payloadType: payloadType, payload: payload, signatures: [(key.publicKey.sslibKeyID, sig)])
    }

    /// True when a signature by `key` (matched by key id) verifies.
    package func verified(by key: Ed25519PublicKey) throws -> Bool {
        let message = DSSEEnvelope.pae(payloadType, payload)
        for s in signatures where s.keyid == key.sslibKeyID {
            if try key.verify(message, signature: s.sig) { return true }
        }
        return false
    }

    package func jsonBytes() -> [UInt8] {
        var w = JSONWriter(pretty: false)
        w.beginObject()
        w.string("payload", Data(payload).base64EncodedString())
        w.string("payloadType", payloadType)
        w.beginArray("signatures")
        for s in signatures {
            w.beginObject(); w.string("keyid", s.keyid); w.string("sig", Data(s.sig).base64EncodedString()); w.endObject()
        }
        w.endArray()
        w.endObject()
        return w.bytes + [0x0A]
    }

    /// - Throws: `badInput` naming `what` when the bytes are not a DSSE envelope.
    package static func parse(_ bytes: [UInt8], what: String) throws -> DSSEEnvelope {
        let v = try JSONValue.parse(bytes, what: what)
        guard let type = v["payloadType"]?.string, let p64 = v["payload"]?.string,
              let payload = Data(base64Encoded: p64), let sigs = v["signatures"]?.array else {
            throw ImprintError.badInput("\(what): not a DSSE envelope (payloadType, payload and signatures are required)")
        }
        var signatures: [(String, [UInt8])] = []
        for s in sigs {
            guard let sig = s["sig"]?.string.flatMap({ Data(base64Encoded: $0) }) else {
                throw ImprintError.badInput("\(what): a signature without a base64 sig")
            }
            signatures.append((s["keyid"]?.string ?? "", Array(sig)))
        }
        return DSSEEnvelope(payloadType: type, payload: Array(payload), signatures: signatures)
    }
}

extension Ed25519PublicKey {
    /// The key as securesystemslib describes it: `{"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": hex}}`.
    package var sslibKey: JSONValue {
        .object(["keytype": .str("ed25519"), "scheme": .str("ed25519"), "keyval": .object(["public": .str(Hex.encode(rawBytes))])])
    }

    /// securesystemslib's default key id: SHA-256 of the canonical JSON of `sslibKey` (what in-toto layouts and
    /// DSSE signatures name the key by).
    package var sslibKeyID: String {
        // why: sslibKey holds strings only, which canonical JSON always encodes.
        SHA256.hash((try? SignedJSON.canonical(sslibKey)) ?? []).hex
    }
}
