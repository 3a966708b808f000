import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `imprint keygen`, `sign` and `verify-signature`, checked against OpenSSL's own command-line tool.
@Suite struct TrustTests {
    /// A context, its manifest at `tmp/m.json`; returns the manifest's root digest.
    @discardableResult
    private func makeManifest(_ tmp: String, content: String = "print('v1')\n", name: String = "m.json") throws -> String {
        try writeFile(tmp + "/ctx/app.py", content)
        let r = try imprint("fingerprint", tmp + "/ctx", "-o", tmp + "/" + name, "--quiet")
        #expect(r.status == 0, "\(r.err)")
        return try jsonObject(try Data(contentsOf: URL(fileURLWithPath: tmp + "/" + name)))["digest"] as! String
    }

    /// Writes the canonical payload and the raw signature of `sig` (a signature document) with python3.
    private func extract(_ sig: String, payload: String, raw: String, cwd: String) throws {
        try sh("""
        python3 -c 'import json,base64,sys; d=json.load(open(sys.argv[1])); open(sys.argv[2],"w").write("imprint-manifest-v1 "+d["digest"]); open(sys.argv[3],"wb").write(base64.b64decode(d["signature"]))' \(sig) \(payload) \(raw)
        """, cwd: cwd)
    }

    @Test func opensslKeysSignAndOpensslVerifiesImprintSignatures() throws {
        try requireTool("openssl")
        try requireTool("python3")
        try withTempDir { tmp in
            let digest = try makeManifest(tmp)
            try sh("openssl genpkey -algorithm ed25519 -out o.key && openssl pkey -in o.key -pubout -out o.pub", cwd: tmp)
            let s = try imprint("sign", "m.json", "--key", "o.key", cwd: tmp)
            #expect(s.status == 0, "\(s.err)")
            #expect(s.out.isEmpty)
            let sig = try jsonObject(try Data(contentsOf: URL(fileURLWithPath: tmp + "/m.sig")))
            #expect(sig["digest"] as? String == digest)
            // The key id is securesystemslib's: SHA-256 of the canonical JSON of the key, whose public value is the
            // last 32 bytes of the SPKI DER, in hex.
            let kid = try sh(#"printf '{"keytype":"ed25519","keyval":{"public":"%s"},"scheme":"ed25519"}' "$(openssl pkey -pubin -in o.pub -outform DER | tail -c 32 | od -An -v -tx1 | tr -d ' \n')" | sha256sum | cut -d' ' -f1"#, cwd: tmp)
            #expect(sig["keyId"] as? String == kid.out.trimmingCharacters(in: .whitespacesAndNewlines))

            try extract("m.sig", payload: "payload", raw: "sig.bin", cwd: tmp)
            #expect(try String(contentsOfFile: tmp + "/payload", encoding: .utf8) == "imprint-manifest-v1 \(digest)")
            let v = try sh("openssl pkeyutl -verify -pubin -inkey o.pub -rawin -in payload -sigfile sig.bin", cwd: tmp)
            #expect(v.out.contains("Signature Verified Successfully"))

            let ok = try imprint("verify-signature", "m.json", "--pubkey", "o.pub", cwd: tmp)
            #expect(ok.status == 0, "\(ok.out)\(ok.err)")
            #expect(ok.out.contains("signature valid"))
            #expect(ok.out.contains(digest))
        }
    }

    @Test func opensslSignaturesVerifyInImprint() throws {
        try requireTool("openssl")
        try withTempDir { tmp in
            let digest = try makeManifest(tmp)
            let kg = try imprint("keygen", "-o", "k", cwd: tmp)
            #expect(kg.status == 0, "\(kg.err)")
            let keyId = kg.out.trimmingCharacters(in: .whitespacesAndNewlines)
            // Sign the canonical payload with openssl using imprint's key; assemble the document by hand.
            try sh("""
            printf 'imprint-manifest-v1 %s' '\(digest)' > payload
            openssl pkeyutl -sign -inkey k.key -rawin -in payload -out sig.bin
            test "$(stat -c %s sig.bin)" = 64
            printf '{"mediaType":"application/vnd.imprint.signature.v1+json","algorithm":"ed25519","digest":"%s","keyId":"%s","signature":"%s"}' \
              '\(digest)' '\(keyId)' "$(base64 -w0 sig.bin)" > openssl.sig
            """, cwd: tmp)
            let v = try imprint("verify-signature", "m.json", "--pubkey", "k.pub", "--signature", "openssl.sig", cwd: tmp)
            #expect(v.status == 0, "\(v.out)\(v.err)")
            // imprint's own signature is the same bytes: Ed25519 is deterministic.
            #expect(try imprint("sign", "m.json", "--key", "k.key", cwd: tmp).status == 0)
            try extract("m.sig", payload: "payload2", raw: "imprint.bin", cwd: tmp)
            try sh("cmp sig.bin imprint.bin && cmp payload payload2", cwd: tmp)
        }
    }

    @Test func keygenWritesOpensslCompatibleKeysAndRefusesToOverwrite() throws {
        try requireTool("openssl")
        try withTempDir { tmp in
            let r = try imprint("keygen", "-o", "sub/../k", cwd: tmp)
            #expect(r.status == 2)  // sub/ does not exist: cannot write
            #expect(r.err.hasPrefix("imprint: error: "))
            let kg = try imprint("keygen", "-o", "k", cwd: tmp)
            #expect(kg.status == 0, "\(kg.err)")
            #expect(kg.out.range(of: "^[0-9a-f]{64}\n$", options: .regularExpression) != nil)
            var st = stat()
            #expect(stat(tmp + "/k.key", &st) == 0)
            #expect(st.st_mode & 0o777 == 0o600)
            try sh("""
            head -1 k.key | grep -qx -- '-----BEGIN PRIVATE KEY-----'
            head -1 k.pub | grep -qx -- '-----BEGIN PUBLIC KEY-----'
            openssl pkey -in k.key -text -noout | grep -q ED25519
            openssl pkey -in k.key -pubout | cmp - k.pub
            """, cwd: tmp)
            let before = try Data(contentsOf: URL(fileURLWithPath: tmp + "/k.key"))
            let again = try imprint("keygen", "-o", "k.key", cwd: tmp)  // the same pair: a trailing .key is the prefix's
            #expect(again.status == 2)
            #expect(again.err.contains("k.key exists") && again.err.contains("--force"))
            #expect(try Data(contentsOf: URL(fileURLWithPath: tmp + "/k.key")) == before)
            let forced = try imprint("keygen", "-o", "k", "--force", cwd: tmp)
            #expect(forced.status == 0)
            #expect(forced.out != kg.out)
            #expect(try Data(contentsOf: URL(fileURLWithPath: tmp + "/k.key")) != before)
        }
    }

    @Test func tamperedManifestWrongKeyAndForgedSignatureFailWithTheReason() throws {
        try withTempDir { tmp in
            try makeManifest(tmp)
            #expect(try imprint("keygen", "-o", "k", cwd: tmp).status == 0)
            #expect(try imprint("keygen", "-o", "other", cwd: tmp).status == 0)
            #expect(try imprint("sign", "m.json", "--key", "k.key", cwd: tmp).status == 0)
            #expect(try imprint("verify-signature", "m.json", "--pubkey", "k.pub", cwd: tmp).status == 0)

            // The code changed and the manifest was regenerated: the old signature is for another digest.
            try makeManifest(tmp, content: "print('evil')\n", name: "evil.json")
            let d = try imprint("verify-signature", "evil.json", "--pubkey", "k.pub", "--signature", "m.sig", cwd: tmp)
            #expect(d.status == 1)
            #expect(d.out.contains("digest mismatch"), "\(d.out)")

            let k = try imprint("verify-signature", "m.json", "--pubkey", "other.pub", cwd: tmp)
            #expect(k.status == 1)
            #expect(k.out.contains("key id mismatch"), "\(k.out)")

            // The attacker also rewrites the digest in the signature; the signature bytes no longer match.
            let evilDigest = try jsonObject(try Data(contentsOf: URL(fileURLWithPath: tmp + "/evil.json")))["digest"] as! String
            try sh("sed 's/\"digest\": \"[^\"]*\"/\"digest\": \"\(evilDigest)\"/' m.sig > forged.sig", cwd: tmp)
            let f = try imprint("verify-signature", "evil.json", "--pubkey", "k.pub", "--signature", "forged.sig", cwd: tmp)
            #expect(f.status == 1)
            #expect(f.out.contains("bad signature"), "\(f.out)")
        }
    }

    @Test func nonEd25519KeysAndBadInputGiveOneLineErrors() throws {
        try requireTool("openssl")
        try withTempDir { tmp in
            try makeManifest(tmp)
            try sh("""
            openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out rsa.key 2>/dev/null
            openssl pkey -in rsa.key -pubout -out rsa.pub
            openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out ec.key
            """, cwd: tmp)
            #expect(try imprint("keygen", "-o", "k", cwd: tmp).status == 0)
            #expect(try imprint("sign", "m.json", "--key", "k.key", cwd: tmp).status == 0)
            for (args, needle) in [
                (["sign", "m.json", "--key", "rsa.key"], "rsa.key: RSA key, but imprint signs with Ed25519 only"),
                (["sign", "m.json", "--key", "ec.key"], "ec.key: EC key"),
                (["verify-signature", "m.json", "--pubkey", "rsa.pub"], "rsa.pub: RSA key"),
                (["verify-signature", "m.json", "--pubkey", "k.key"], "k.key is a private key"),
                (["sign", "m.json", "--key", "m.json"], "m.json is not a PEM private key"),
                (["sign", "m.json", "--key", "missing.key"], "missing.key"),
                (["sign", "k.pub", "--key", "k.key"], "k.pub"),
                (["verify-signature", "m.json", "--pubkey", "k.pub", "--signature", "nope.sig"], "nope.sig"),
                (["verify-signature", "m.json", "--pubkey", "k.pub", "--signature", "m.json"], "m.json is not an imprint signature"),
            ] {
                let r = try imprint(args, cwd: tmp)
                #expect(r.status == 2, "\(args): \(r.status)")
                #expect(r.err.hasPrefix("imprint: error: "), "\(args)")
                #expect(r.err.contains(needle), "\(args): \(r.err)")
                #expect(r.err.split(separator: "\n").count == 1, "\(args): \(r.err)")
            }
        }
    }

    @Test func signatureDocumentValidatesAgainstItsSchema() throws {
        try requireTool("python3")
        try withTempDir { tmp in
            try makeManifest(tmp)
            #expect(try imprint("keygen", "-o", "k", cwd: tmp).status == 0)
            let r = try imprint("sign", "m.json", "--key", "k.key", "-o", "-", cwd: tmp)
            #expect(r.status == 0, "\(r.err)")
            #expect(!FileManager.default.fileExists(atPath: tmp + "/m.sig"))
            try expectValidJSON(r.stdout, schema: "signature.schema.json")
            #expect(try imprint("sign", "m.json", "--key", "k.key", "-o", "custom.sig", cwd: tmp).stdout == Data())
            #expect(try Data(contentsOf: URL(fileURLWithPath: tmp + "/custom.sig")) == r.stdout)
        }
    }
}
