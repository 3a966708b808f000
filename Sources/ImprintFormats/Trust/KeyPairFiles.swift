import Foundation

/// The files `imprint keygen` writes: `PREFIX.key` (PKCS#8 PEM, mode 0600) and `PREFIX.pub` (SubjectPublicKeyInfo
/// PEM, mode 0644), the same files OpenSSL makes.
package struct KeyPairFiles: Sendable {
    package var privateKeyPath: String
    package var publicKeyPath: String

    /// The pair for `prefix`; a trailing `.key` or `.pub` is dropped (`-o ci.key` writes ci.key and ci.pub).
    package init(prefix: String) {
        let p = prefix.hasSuffix(".key") || prefix.hasSuffix(".pub") ? String(prefix.dropLast(4)) : prefix
        privateKeyPath = p + ".key"
        publicKeyPath = p + ".pub"
    }

    /// Makes a new key pair and writes both files (each atomically).
    /// - Throws: `badInput` when either file exists and `replacing` is false (nothing is written then).
    package func generate(replacing: Bool = false) throws -> Ed25519PrivateKey {
        if !replacing {
            for p in [privateKeyPath, publicKeyPath] where FileManager.default.fileExists(atPath: p) {
                throw ImprintError(.badInput, "\(p) exists; pass --force to replace it")
            }
        }
        let key = try Ed25519PrivateKey.generate()
        try AtomicFile.write(try key.pemBytes(), to: privateKeyPath, mode: 0o600)
        try AtomicFile.write(try key.publicKey.pemBytes(), to: publicKeyPath, mode: 0o644)
        return key
    }
}
