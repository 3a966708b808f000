internal import COpenSSL

/// A SHA-256 digest. Stored inline (32 bytes) so trees of millions of entries stay compact.
package struct Digest: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The name of the Merkle tree digest (schemas/DIGEST.md) where digest sets name their algorithm.
    package static let treeAlgorithm = "imprint-tree-v1"
    package var a: UInt64, b: UInt64, c: UInt64, d: UInt64

    package init(bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == 32)
        a = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        b = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        c = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        d = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
    }

    package init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self = bytes.withUnsafeBytes { Digest(bytes: $0) }
    }

    /// Parses 64 lowercase hex digits, with or without a `sha256:` prefix.
    package init?(hex: String) {
        var text = hex
        guard let parsed = text.withUTF8({ Digest.parseHex($0) }) else { return nil }
        self = parsed
    }

    /// `sha256:` (optional) and 64 hex digits, straight from UTF-8 bytes into the four words.
    private static func parseHex(_ u: UnsafeBufferPointer<UInt8>) -> Digest? {
        var start = 0
        if u.count == 71 {
            let prefix: [UInt8] = [0x73, 0x68, 0x61, 0x32, 0x35, 0x36, 0x3A]   // "sha256:"
            for k in 0..<7 where u[k] != prefix[k] { return nil }
            start = 7
        } else if u.count != 64 {
            return nil
        }
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for w in 0..<4 {
            var v: UInt64 = 0
            for k in 0..<16 {
                let c = u[start + w * 16 + k]
                let n: UInt8
                switch c {
                case 0x30...0x39: n = c &- 0x30
                case 0x61...0x66: n = c &- 0x61 &+ 10
                default: return nil   // lowercase only, as digests are written
                }
                v = v << 4 | UInt64(n)
            }
            switch w {
            case 0: words.0 = v
            case 1: words.1 = v
            case 2: words.2 = v
            default: words.3 = v
            }
        }
        return Digest(a: words.0, b: words.1, c: words.2, d: words.3)
    }

    package init(a: UInt64, b: UInt64, c: UInt64, d: UInt64) {
        self.a = a; self.b = b; self.c = c; self.d = d
    }

    package var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        out.withUnsafeMutableBytes { p in
            p.storeBytes(of: a.bigEndian, toByteOffset: 0, as: UInt64.self)
            p.storeBytes(of: b.bigEndian, toByteOffset: 8, as: UInt64.self)
            p.storeBytes(of: c.bigEndian, toByteOffset: 16, as: UInt64.self)
            p.storeBytes(of: d.bigEndian, toByteOffset: 24, as: UInt64.self)
        }
        return out
    }

    /// 64 lowercase hex digits.
    package var hex: String {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        appendHex(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the 64 hex digits to `out` without building a String.
    @inline(__always)
    package func appendHex(to out: inout [UInt8]) {
        // The 64 digits are written into a stack buffer and appended at once: one capacity check, not 64.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { hex in
            Digest.writeHex(a, into: hex, at: 0)
            Digest.writeHex(b, into: hex, at: 16)
            Digest.writeHex(c, into: hex, at: 32)
            Digest.writeHex(d, into: hex, at: 48)
            out.append(contentsOf: hex)
        }
    }

    @inline(__always)
    private static func writeHex(_ word: UInt64, into hex: UnsafeMutableBufferPointer<UInt8>, at start: Int) {
        for i in 0..<16 {
            let v = UInt8(truncatingIfNeeded: (word >> UInt64(60 - 4 * i)) & 0xF)
            hex[start + i] = v < 10 ? 0x30 + v : 0x57 + v  // 0-9, a-f
        }
    }

    /// `sha256:<hex>`, the OCI digest form.
    package var prefixed: String { "sha256:" + hex }
    package var description: String { prefixed }
    /// The first 12 hex digits, for human output.
    package var short: String { String(hex.prefix(12)) }

    package static func < (l: Digest, r: Digest) -> Bool {
        (l.a, l.b, l.c, l.d) < (r.a, r.b, r.c, r.d)
    }

    /// SHA-256 of the empty string.
    package static let empty = SHA256.hash([])
}

/// Incremental SHA-256 through OpenSSL's EVP interface.
///
/// One instance per thread: it owns an `EVP_MD_CTX` and is re-initialised after each `finish()`.
package final class SHA256 {
    // why: EVP_MD_fetch once per process; the implicit fetch in EVP_sha256() per call costs twice as
    // much and takes a lock. The fetched EVP_MD is immutable and safe to share between threads.
    nonisolated(unsafe) private static let md: OpaquePointer = {
        guard let md = EVP_MD_fetch(nil, "SHA256", nil) else { fatalError("OpenSSL has no SHA256") }  // trap-ok: every OpenSSL 3 build has SHA-256; nothing works without it
        return md
    }()

    private let ctx: OpaquePointer

    package init() {
        guard let ctx = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed: out of memory") }  // trap-ok: a 200-byte allocation failing is out of memory, where Swift traps anyway
        self.ctx = ctx
        SHA256.check(EVP_DigestInit_ex2(ctx, SHA256.md, nil), "EVP_DigestInit_ex2")
    }

    /// Every EVP return code is checked, as swift-crypto does: a digest OpenSSL failed to compute must never be
    /// returned as if it were one (a wrong digest is a wrong verdict). With a fetched SHA-256 and a live context
    /// these calls fail only when OpenSSL itself is broken, so the check traps rather than throws.
    @inline(__always)
    private static func check(_ rc: Int32, _ call: StaticString) {
        if rc != 1 { fatalError("OpenSSL \(call) failed") }  // trap-ok: only a broken libcrypto fails here; a silently wrong digest would be worse
    }

    deinit { EVP_MD_CTX_free(ctx) }

    @inline(__always)
    package func update(_ buffer: UnsafeRawBufferPointer) {
        if buffer.count > 0 { SHA256.check(EVP_DigestUpdate(ctx, buffer.baseAddress, buffer.count), "EVP_DigestUpdate") }
    }

    package func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }
    package func update(_ string: String) { update(Array(string.utf8)) }

    /// Returns the digest of everything fed since the last `finish()` and starts over.
    package func finish() -> Digest {
        var len: UInt32 = 0
        // A stack buffer: no heap allocation per digest.
        let digest = withUnsafeTemporaryAllocation(byteCount: 32, alignment: 8) { p in
            SHA256.check(EVP_DigestFinal_ex(ctx, p.baseAddress!.assumingMemoryBound(to: UInt8.self), &len), "EVP_DigestFinal_ex")
            if len != 32 { fatalError("OpenSSL EVP_DigestFinal_ex wrote \(len) bytes for SHA-256") }  // trap-ok: as above
            return Digest(bytes: UnsafeRawBufferPointer(p))
        }
        SHA256.check(EVP_DigestInit_ex2(ctx, SHA256.md, nil), "EVP_DigestInit_ex2")
        return digest
    }

    package static func hash(_ bytes: [UInt8]) -> Digest {
        let h = SHA256()
        h.update(bytes)
        return h.finish()
    }

    package static func hash(_ buffer: UnsafeRawBufferPointer) -> Digest {
        let h = SHA256()
        h.update(buffer)
        return h.finish()
    }

    /// The OpenSSL version text, for `--version` output.
    package static var libraryVersion: String { String(cString: OpenSSL_version(Int32(OPENSSL_VERSION))) }
}
