internal import COpenSSL
import Foundation

// Ed25519 (RFC 8032) keys and signatures through OpenSSL's EVP interface.
//
// Keys are exchanged as PEM, exactly as OpenSSL writes them:
//   private: PKCS#8 `-----BEGIN PRIVATE KEY-----`  (`openssl genpkey -algorithm ed25519`)
//   public:  SubjectPublicKeyInfo `-----BEGIN PUBLIC KEY-----`  (`openssl pkey -pubout`)
// Signing is "pure" Ed25519: `EVP_DigestSign`/`EVP_DigestVerify` with a NULL digest over the whole
// message, the same as `openssl pkeyutl -sign -rawin`.

/// Owns one `EVP_PKEY`; freed with the last reference.
// why @unchecked Sendable: an EVP_PKEY is immutable once loaded or generated and OpenSSL allows
// concurrent use from many threads as long as each operation has its own EVP_MD_CTX (as here).
package final class EVPKey: @unchecked Sendable {
    package let pointer: OpaquePointer
    package init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { EVP_PKEY_free(pointer) }
}

/// OpenSSL's error queue, drained into one line (`error:1E08010C:DECODER routines::unsupported`).
package enum OpenSSLError {
    package static func drain() -> String {
        var texts: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            // why: ERR_error_string_n writes at most buf.count bytes, NUL-terminated, into our buffer.
            buf.withUnsafeMutableBufferPointer { ERR_error_string_n(code, $0.baseAddress, $0.count) }
            texts.append(String(nulTerminated: buf))
        }
        return texts.isEmpty ? "unknown OpenSSL error" : texts.joined(separator: "; ")
    }

    package static func error(_ code: ImprintError.Code, _ what: String) -> ImprintError {
        ImprintError(code, "\(what): \(drain())")
    }
}

/// The bytes of a memory BIO.
private func memoryBIOBytes(_ bio: OpaquePointer) -> [UInt8] {
    var data: UnsafeMutablePointer<CChar>? = nil
    // why: BIO_get_mem_data only stores a pointer into the BIO's buffer in `data`; nothing is freed or moved.
    let n = COpenSSL_BIO_get_mem_data(bio, &data)
    guard n > 0, let data else { return [] }
    // why: BIO_get_mem_data points into the BIO's own buffer, valid until the BIO is freed; copy it out now.
    return Array(UnsafeRawBufferPointer(start: data, count: n))
}

/// Reads a PEM file and parses it with `read` (a PEM_read_bio_* function); nil result → error naming the file.
private func loadPEM(_ path: String, bytes: [UInt8], kind: String,
                     _ read: (OpaquePointer) -> OpaquePointer?) throws -> EVPKey {
    let text = String(decoding: bytes, as: UTF8.self)
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        throw ImprintError(.unsupported, "\(path): the private key is encrypted; imprint needs an unencrypted PKCS#8 key (openssl pkey -in \(path) -out plain.key)")
    }
    ERR_clear_error()
    // why: BIO_new_mem_buf reads `bytes` in place without copying; the BIO is freed before `bytes` goes away.
    let key: OpaquePointer? = bytes.withUnsafeBytes { raw in
        guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
        defer { BIO_free(bio) }
        return read(bio)
    }
    guard let key else {
        let reason = OpenSSLError.drain()
        throw ImprintError.badInput("\(path) is not a PEM \(kind) (\(reason))")
    }
    let evp = EVPKey(key)
    guard EVP_PKEY_get_id(key) == COpenSSL_EVP_PKEY_ED25519() else {
        let name = EVP_PKEY_get0_type_name(key).map { String(cString: $0) } ?? "unknown"
        throw ImprintError(.unsupported, "\(path): \(name) key, but imprint signs with Ed25519 only (make a key with `imprint keygen` or `openssl genpkey -algorithm ed25519`)")
    }
    return evp
}

/// An Ed25519 public key: verifies signatures made by its private key.
package struct Ed25519PublicKey: Sendable {
    package let key: EVPKey

    package init(key: EVPKey) { self.key = key }

    /// Loads a SubjectPublicKeyInfo PEM file (`-----BEGIN PUBLIC KEY-----`, as `openssl pkey -pubout` writes).
    /// - Throws: `notFound`/`io` when the file cannot be read, `badInput` when it is not a PEM public key,
    ///   `unsupported` when it holds another algorithm (RSA, EC...). Every message names `path`.
    package init(pemFile path: String) throws {
        let bytes = try readFile(path, what: "public key")
        if String(decoding: bytes, as: UTF8.self).contains("PRIVATE KEY-----") {
            throw ImprintError.badInput("\(path) is a private key; pass the public key (the .pub file written by `imprint keygen`, or `openssl pkey -in \(path) -pubout`)")
        }
        key = try loadPEM(path, bytes: bytes, kind: "public key") { PEM_read_bio_PUBKEY($0, nil, COpenSSL_no_password, nil) }
    }

    /// Makes a key from its raw 32 bytes (RFC 8032 encoding).
    package init(rawBytes: [UInt8]) throws {
        guard rawBytes.count == 32 else { throw ImprintError.badInput("an Ed25519 public key is 32 bytes, not \(rawBytes.count)") }
        ERR_clear_error()
        // why: OpenSSL copies the 32 bytes into the new key; the pointer is only read during the call.
        let pkey = rawBytes.withUnsafeBufferPointer {
            EVP_PKEY_new_raw_public_key(COpenSSL_EVP_PKEY_ED25519(), nil, $0.baseAddress, $0.count)
        }
        guard let pkey else { throw OpenSSLError.error(.badInput, "invalid Ed25519 public key") }
        key = EVPKey(pkey)
    }

    /// The raw 32-byte public key (RFC 8032 encoding).
    package var rawBytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var len = out.count
        // why: OpenSSL writes at most `len` (32) bytes into our buffer and sets `len` to what it wrote.
        let rc = out.withUnsafeMutableBufferPointer { EVP_PKEY_get_raw_public_key(key.pointer, $0.baseAddress, &len) }
        // Every key here was checked to be Ed25519 when it was loaded or generated, which always has a raw form.
        if rc != 1 || len != 32 { fatalError("OpenSSL EVP_PKEY_get_raw_public_key failed on an Ed25519 key") }  // trap-ok: a key id from a half-read key would name the wrong signer
        return out
    }

    /// The key id, the one name of this key everywhere (keygen, manifest signatures, DSSE signatures, in-toto link
    /// file names and layouts): securesystemslib's default key id, 64 lowercase hex digits (`sslibKeyID`).
    package var keyId: String { sslibKeyID }

    /// The key id of earlier releases: SHA-256 of the raw 32-byte public key. Manifest signatures that carry it
    /// still verify (`ManifestSignature.verdict`); nothing writes it.
    package var legacyKeyId: String { SHA256.hash(rawBytes).hex }

    /// The key as SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    package func pemBytes() throws -> [UInt8] {
        ERR_clear_error()
        guard let bio = BIO_new(BIO_s_mem()) else { throw OpenSSLError.error(.failure, "cannot allocate a BIO") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PUBKEY(bio, key.pointer) == 1 else { throw OpenSSLError.error(.failure, "cannot write the public key as PEM") }
        return memoryBIOBytes(bio)
    }

    /// Checks a 64-byte Ed25519 signature over `message`.
    /// - Returns: true when the signature is valid; false for a wrong, damaged or wrongly sized signature.
    /// - Throws: `failure` only when OpenSSL cannot set up the operation.
    package func verify(_ message: [UInt8], signature: [UInt8]) throws -> Bool {
        guard signature.count == 64 else { return false }
        ERR_clear_error()
        guard let ctx = EVP_MD_CTX_new() else { throw OpenSSLError.error(.failure, "EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(ctx) }
        // NULL digest: Ed25519 hashes the message itself (pure EdDSA).
        guard EVP_DigestVerifyInit(ctx, nil, nil, nil, key.pointer) == 1 else {
            throw OpenSSLError.error(.failure, "cannot start Ed25519 verification")
        }
        // why: both buffers are only read during the call.
        let rc = signature.withUnsafeBufferPointer { sig in
            message.withUnsafeBufferPointer { msg in
                EVP_DigestVerify(ctx, sig.baseAddress, sig.count, msg.baseAddress, msg.count)
            }
        }
        ERR_clear_error()  // a failed verification leaves an entry; it is an answer, not an error
        return rc == 1
    }
}

/// An Ed25519 private key: signs messages.
package struct Ed25519PrivateKey: Sendable {
    package let key: EVPKey

    /// Loads a PKCS#8 PEM file (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey -algorithm ed25519` writes).
    /// - Throws: `notFound`/`io` when the file cannot be read, `badInput` when it is not a PEM private key,
    ///   `unsupported` when it is encrypted or holds another algorithm (RSA, EC...). Every message names `path`.
    package init(pemFile path: String) throws {
        let bytes = try readFile(path, what: "private key")
        key = try loadPEM(path, bytes: bytes, kind: "private key") { PEM_read_bio_PrivateKey($0, nil, COpenSSL_no_password, nil) }
    }

    /// Generates a new key from the operating system's random source (through OpenSSL's DRBG).
    package static func generate() throws -> Ed25519PrivateKey {
        ERR_clear_error()
        guard let ctx = EVP_PKEY_CTX_new_id(COpenSSL_EVP_PKEY_ED25519(), nil) else {
            throw OpenSSLError.error(.failure, "cannot set up Ed25519 key generation")
        }
        defer { EVP_PKEY_CTX_free(ctx) }
        var pkey: OpaquePointer? = nil
        // why: EVP_PKEY_keygen stores a new, owned EVP_PKEY in `pkey`; EVPKey frees it.
        guard EVP_PKEY_keygen_init(ctx) == 1, EVP_PKEY_keygen(ctx, &pkey) == 1, let pkey else {
            throw OpenSSLError.error(.failure, "Ed25519 key generation failed")
        }
        return Ed25519PrivateKey(key: EVPKey(pkey))
    }

    private init(key: EVPKey) { self.key = key }

    /// The matching public key.
    package var publicKey: Ed25519PublicKey {
        // The EVP_PKEY of a private key also carries its public half, and verifying with it is fine.
        Ed25519PublicKey(key: key)
    }

    /// The key id of the public half (securesystemslib's key id).
    package var keyId: String { publicKey.keyId }

    /// The key as unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). Keep it secret: write it with mode 0600.
    package func pemBytes() throws -> [UInt8] {
        ERR_clear_error()
        guard let bio = BIO_new(BIO_s_mem()) else { throw OpenSSLError.error(.failure, "cannot allocate a BIO") }
        defer { BIO_free(bio) }
        // PEM_write_bio_PrivateKey writes PKCS#8 ("PRIVATE KEY"), like openssl genpkey.
        guard PEM_write_bio_PrivateKey(bio, key.pointer, nil, nil, 0, nil, nil) == 1 else {
            throw OpenSSLError.error(.failure, "cannot write the private key as PEM")
        }
        return memoryBIOBytes(bio)
    }

    /// Signs `message` (pure Ed25519, RFC 8032): the 64-byte signature.
    /// - Throws: `failure` when OpenSSL cannot sign (no Ed25519 in the loaded providers, out of memory).
    package func sign(_ message: [UInt8]) throws -> [UInt8] {
        ERR_clear_error()
        guard let ctx = EVP_MD_CTX_new() else { throw OpenSSLError.error(.failure, "EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(ctx) }
        // NULL digest: Ed25519 hashes the message itself (pure EdDSA).
        guard EVP_DigestSignInit(ctx, nil, nil, nil, key.pointer) == 1 else {
            throw OpenSSLError.error(.failure, "cannot start Ed25519 signing")
        }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = signature.count
        // why: OpenSSL writes at most `length` (64) bytes into `signature`; `message` is only read.
        let rc = signature.withUnsafeMutableBufferPointer { sig in
            message.withUnsafeBufferPointer { msg in
                EVP_DigestSign(ctx, sig.baseAddress, &length, msg.baseAddress, msg.count)
            }
        }
        guard rc == 1, length == 64 else { throw OpenSSLError.error(.failure, "Ed25519 signing failed") }
        return signature
    }
}
