import ArgumentParser
import Foundation
import ImprintCore
#if canImport(Glibc)
import Glibc
#endif

extension ImprintCommand {
    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "keygen",
            abstract: "Make an Ed25519 key pair for signing manifests.",
            discussion: """
            Writes PREFIX.key (PKCS#8 PEM, mode 0600, keep it secret: a CI secret) and PREFIX.pub \
            (SubjectPublicKeyInfo PEM, give it to whoever verifies) and prints the key id: securesystemslib's, the \
            id that signatures, in-toto links (NAME.KEYID8.link) and layouts name the key by. The files are \
            the same as OpenSSL's, so either tool can make or use them:
              openssl genpkey -algorithm ed25519 -out imprint.key && openssl pkey -in imprint.key -pubout -out imprint.pub

            Example:
              imprint keygen -o imprint && imprint sign manifest.json --key imprint.key

            Exit status: 0 ok; 2 the files exist (without --force) or cannot be written.
            """
        )

        @Option(name: .shortAndLong, help: "Path prefix of the key pair: writes PREFIX.key and PREFIX.pub (a trailing .key or .pub is dropped).", completion: .file()) var output: String
        @Flag(help: "Replace PREFIX.key and PREFIX.pub when they exist.") var force = false
        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            try runReportingErrors {
                let files = KeyPairFiles(prefix: output)
                let key = try files.generate(replacing: force)
                Console.note("imprint: wrote \(files.privateKeyPath) (private, keep secret) and \(files.publicKeyPath)")
                Console.out(key.keyId)
            }
        }
    }

    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sign",
            abstract: "Sign a manifest's root digest with an Ed25519 key.",
            discussion: """
            Writes a small JSON signature (schemas/signature.schema.json) over the canonical payload \
            `imprint-manifest-v1 sha256:<root digest>`. An attacker who can rewrite the code in an image can \
            rewrite an unsigned manifest too; they cannot forge this signature without the private key. \
            The signature goes beside the manifest: manifest.json → manifest.sig.

            Example:
              imprint fingerprint . -o manifest.json && imprint sign manifest.json --key imprint.key
              imprint verify-signature manifest.json --pubkey imprint.pub

            Exit status: 0 signed; 2 bad input (manifest, key) or failure.
            """
        )

        @Argument(help: "The manifest written by imprint fingerprint.", completion: .file()) var manifest: String
        @Option(help: "The Ed25519 private key (PKCS#8 PEM, from imprint keygen or openssl genpkey -algorithm ed25519).", completion: .file()) var key: String
        @Option(name: .shortAndLong, help: "Write the signature here (atomically; - for stdout). Default: MANIFEST with .json replaced by .sig.", completion: .file()) var output: String?
        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            try runReportingErrors {
                let privateKey = try Ed25519PrivateKey(pemFile: key)
                let m = try Manifest.parse(try readFile(manifest, what: "manifest"), source: manifest)
                let sig = try ManifestSignature.sign(rootDigest: m.rootDigest, key: privateKey)
                let target = output ?? ManifestSignature.path(besideManifest: manifest)
                try writeOutput(sig.jsonBytes(), to: target)
                if target != "-" {
                    Console.note("imprint: signed \(m.rootDigest) with key \(sig.keyId) → \(target)")
                }
            }
        }
    }

    struct VerifySignature: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify-signature",
            abstract: "Check a manifest's signature, or a file's detached Ed25519 signature, with a public key.",
            discussion: """
            For a manifest and its JSON signature (from imprint sign), checks in order: the signature was made \
            by this public key (key id), it is for this manifest's root digest, and the Ed25519 signature over \
            `imprint-manifest-v1 sha256:<root digest>` verifies. The verdict names the check that failed.

            For any other file whose signature is a raw 64-byte Ed25519 signature of the file's bytes (what \
            `openssl pkeyutl -sign -rawin` writes; a release's SHA256SUMS.sig is one), checks that signature.

            Example:
              imprint verify-signature manifest.json --pubkey imprint.pub
              imprint verify-signature app/.imprint/manifest.json --pubkey imprint.pub --signature manifest.sig
              imprint verify-signature SHA256SUMS --signature SHA256SUMS.sig --pubkey imprint-release.pub

            Exit status: 0 valid; 1 invalid (digest mismatch, key id mismatch, bad signature); \
            2 bad input (unreadable or malformed manifest, signature or key).
            """
        )

        @Argument(help: "The manifest (or, with a raw signature, the file) whose signature is checked.", completion: .file()) var manifest: String
        @Option(help: "The signer's Ed25519 public key (SubjectPublicKeyInfo PEM, the .pub from imprint keygen).", completion: .file()) var pubkey: String
        @Option(help: "The signature file. Default: MANIFEST with .json replaced by .sig, or .sig appended.", completion: .file()) var signature: String?
        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            let result = try runReportingErrors {
                let sigPath = signature ?? ManifestSignature.path(besideManifest: manifest)
                let result = try ManifestSignature.checkFile(manifest, signaturePath: sigPath, publicKey: try Ed25519PublicKey(pemFile: pubkey))
                Console.out(result.line)
                return result
            }
            try conclude(result)
        }
    }
}
