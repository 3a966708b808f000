/// SipHash with a 128-bit key and a 64-bit result (Aumasson & Bernstein), in the two variants CPython uses
/// for PEP 552 source hashes: SipHash-1-3 (Python 3.11 and later) and SipHash-2-4 (Python 3.7–3.10).
///
/// Streaming: feed the input in chunks of any size with `update`, then call `finalize()` once.
package struct SipHash: Sendable {
    /// The number of compression rounds per message word and of finalisation rounds.
    package enum Variant: String, Sendable, CaseIterable {
        case sipHash13 = "SipHash-1-3"
        case sipHash24 = "SipHash-2-4"

        package var compressionRounds: Int { self == .sipHash13 ? 1 : 2 }
        package var finalizationRounds: Int { self == .sipHash13 ? 3 : 4 }
    }

    package var variant: Variant { lanes.variant }
    private var lanes: SipHashLanes

    package init(k0: UInt64, k1: UInt64, variant: Variant) {
        lanes = SipHashLanes(keys: [(k0, k1)], variant: variant)
    }

    /// One-shot hash of `data`.
    package static func hash<C: Collection>(_ data: C, k0: UInt64, k1: UInt64, variant: Variant) -> UInt64
    where C.Element == UInt8 {
        var h = SipHash(k0: k0, k1: k1, variant: variant)
        h.update(data)
        return h.finalize()
    }

    /// Adds `data` to the message.
    package mutating func update<C: Collection>(_ data: C) where C.Element == UInt8 {
        let done: Void? = data.withContiguousStorageIfAvailable { update(UnsafeRawBufferPointer($0)) }
        if done == nil { Array(data).withUnsafeBytes { update($0) } }
    }

    /// Adds the bytes of `buffer` to the message.
    package mutating func update(_ buffer: UnsafeRawBufferPointer) { lanes.update(buffer) }

    /// The 64-bit hash of everything added so far. Call once; the hasher is spent afterwards.
    package mutating func finalize() -> UInt64 { lanes.finalize()[0] }
}

/// SipHash of one message under up to four keys at once, one SIMD lane per key: the message is read once and
/// the lanes compress side by side, so hashing a source for every Python's key costs about what one key did.
package struct SipHashLanes: Sendable {
    package static let width = 4
    package let variant: SipHash.Variant
    private let count: Int
    private var v0: SIMD4<UInt64>, v1: SIMD4<UInt64>, v2: SIMD4<UInt64>, v3: SIMD4<UInt64>
    /// Bytes not yet forming a whole 8-byte word, little-endian in the low bits.
    private var tail: UInt64 = 0
    private var tailCount = 0
    private var length: UInt64 = 0

    /// - Parameter keys: one to four (k0, k1) keys, one per lane.
    package init(keys: [(UInt64, UInt64)], variant: SipHash.Variant) {
        precondition(!keys.isEmpty && keys.count <= SipHashLanes.width)
        self.variant = variant
        count = keys.count
        var k0 = SIMD4<UInt64>(repeating: 0), k1 = SIMD4<UInt64>(repeating: 0)
        for (i, k) in keys.enumerated() { k0[i] = k.0; k1[i] = k.1 }
        v0 = k0 ^ SIMD4(repeating: 0x736f_6d65_7073_6575)
        v1 = k1 ^ SIMD4(repeating: 0x646f_7261_6e64_6f6d)
        v2 = k0 ^ SIMD4(repeating: 0x6c79_6765_6e65_7261)
        v3 = k1 ^ SIMD4(repeating: 0x7465_6462_7974_6573)
    }

    /// Adds the bytes of `buffer` to the message.
    package mutating func update(_ buffer: UnsafeRawBufferPointer) {
        length &+= UInt64(buffer.count)
        var i = 0
        let n = buffer.count
        // Complete a partial word left over from the previous chunk.
        while tailCount > 0 && tailCount < 8 && i < n {
            tail |= UInt64(buffer[i]) << (8 * UInt64(tailCount))
            tailCount += 1
            i += 1
        }
        if tailCount == 8 {
            compress(tail, rounds: variant.compressionRounds)
            tail = 0
            tailCount = 0
        }
        // One loop per variant, so each inlines its rounds as constants (the loop that hashes every source).
        let rounds = variant.compressionRounds
        if rounds == 1 {
            while n - i >= 8 {
                compress(UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: i, as: UInt64.self)), rounds: 1)
                i += 8
            }
        } else {
            while n - i >= 8 {
                compress(UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: i, as: UInt64.self)), rounds: 2)
                i += 8
            }
        }
        while i < n {
            tail |= UInt64(buffer[i]) << (8 * UInt64(tailCount))
            tailCount += 1
            i += 1
        }
    }

    /// The 64-bit hash of everything added so far, per key in the order given. Call once; the hasher is spent
    /// afterwards.
    package mutating func finalize() -> [UInt64] {
        let b = (length & 0xff) << 56 | tail
        compress(b, rounds: variant.compressionRounds)
        v2 ^= SIMD4(repeating: 0xff)
        for _ in 0..<variant.finalizationRounds { round() }
        let h = v0 ^ v1 ^ v2 ^ v3
        return (0..<count).map { h[$0] }
    }

    @inline(__always)
    private mutating func compress(_ m: UInt64, rounds: Int) {
        let w = SIMD4<UInt64>(repeating: m)
        v3 ^= w
        for _ in 0..<rounds { round() }
        v0 ^= w
    }

    @inline(__always)
    private mutating func round() {
        v0 &+= v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
        v2 &+= v3; v3 = rotl(v3, 16); v3 ^= v2
        v0 &+= v3; v3 = rotl(v3, 21); v3 ^= v0
        v2 &+= v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
    }

    @inline(__always)
    private func rotl(_ x: SIMD4<UInt64>, _ b: UInt64) -> SIMD4<UInt64> { (x &<< b) | (x &>> (64 - b)) }
}

/// `importlib.util.source_hash(data)` for the interpreter whose pyc magic is `magic`: SipHash of the raw source
/// bytes keyed with k0 = the 4 magic bytes as a little-endian integer and k1 = 0 (PEP 552).
///
/// The 8 bytes CPython stores in a hash-based pyc header are the result in little-endian order; see
/// `PycSourceHash.bytes(_:)`.
package struct PycSourceHash: Sendable {
    private var hasher: SipHash

    /// - Parameter magic: the pyc magic as the 4 header bytes read little-endian (`PycHeader.magicWord`).
    package init(magic: UInt32) {
        hasher = SipHash(k0: UInt64(magic), k1: 0, variant: PycMagic.sipHashVariant(forMagicWord: magic))
    }

    package mutating func update<C: Collection>(_ data: C) where C.Element == UInt8 { hasher.update(data) }
    package mutating func update(_ buffer: UnsafeRawBufferPointer) { hasher.update(buffer) }
    package mutating func finalize() -> UInt64 { hasher.finalize() }

    /// The source hash of `data` for `magic`, one shot.
    package static func hash<C: Collection>(_ data: C, magic: UInt32) -> UInt64 where C.Element == UInt8 {
        var h = PycSourceHash(magic: magic)
        h.update(data)
        return h.finalize()
    }

    /// The hash as the 8 bytes stored in a pyc header (little-endian), as `source_hash()` returns them.
    package static func bytes(_ hash: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: hash >> (8 * $0)) } }

    /// The hash as lowercase hex of its 8 header bytes, as Python's `source_hash(data).hex()` prints it.
    package static func hex(_ hash: UInt64) -> String { Hex.encode(bytes(hash)) }
}

/// Computes the PEP 552 source hash of one `.py` file for several interpreters at once, in one streaming pass.
///
/// Sources that cannot read a file twice (a tar stream) feed each `.py` through this while it passes by and
/// hand the result to `BytecodeChecker` as `sourceHashes`. The hash key depends on the magic of the pyc that
/// will be compared, which the stream may not have seen yet; the default set covers the final release of every
/// Python from 3.7 on.
package struct PycSourceHasher: Sendable {
    /// The magic word of each lane, group after group.
    private let words: [UInt32]
    private var groups: [SipHashLanes]

    /// - Parameter magicWords: the magics (4 header bytes read little-endian) to hash for. By default the final
    ///   release of every Python that writes hash-based pycs (3.7 on, PEP 552); no earlier pyc holds a source hash.
    package init(magicWords: [UInt32] = PycSourceHasher.hashBasedReleases) {
        var order: [UInt32] = []
        var groups: [SipHashLanes] = []
        let sorted = Array(Set(magicWords)).sorted()
        for variant in SipHash.Variant.allCases {
            let mine = sorted.filter { PycMagic.sipHashVariant(forMagicWord: $0) == variant }
            for at in stride(from: 0, to: mine.count, by: SipHashLanes.width) {
                let lanes = Array(mine[at..<min(at + SipHashLanes.width, mine.count)])
                groups.append(SipHashLanes(keys: lanes.map { (UInt64($0), 0) }, variant: variant))
                order += lanes
            }
        }
        words = order
        self.groups = groups
    }

    /// The magic words of the final releases from Python 3.7 on.
    package static let hashBasedReleases: [UInt32] = PycMagic.finalReleases
        .filter { $0.version >= PythonVersion(3, 7) }.map { PycMagic.word(forNumber: $0.number) }

    package mutating func update<C: Collection>(_ data: C) where C.Element == UInt8 {
        let done: Void? = data.withContiguousStorageIfAvailable { update(UnsafeRawBufferPointer($0)) }
        if done == nil { Array(data).withUnsafeBytes { update($0) } }
    }

    package mutating func update(_ buffer: UnsafeRawBufferPointer) {
        for i in groups.indices { groups[i].update(buffer) }
    }

    /// Source hash per magic word.
    package mutating func finalize() -> [UInt32: UInt64] {
        var out: [UInt32: UInt64] = [:]
        var lane = 0
        for i in groups.indices {
            for h in groups[i].finalize() {
                out[words[lane]] = h
                lane += 1
            }
        }
        return out
    }
}
