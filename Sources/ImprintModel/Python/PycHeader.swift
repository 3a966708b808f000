/// A Python language version, major and minor (`3.11`).
package struct PythonVersion: Hashable, Comparable, Sendable, CustomStringConvertible {
    package var major: Int
    package var minor: Int

    package init(_ major: Int, _ minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// Parses `3.11`, `3.11.7`, `311` (a cache-tag number) or `cpython-311`.
    package init?(_ text: String) {
        var s = Substring(text)
        if s.hasPrefix("cpython-") { s = s.dropFirst("cpython-".count) }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count >= 2, let a = Int(parts[0]), let b = Int(parts[1]), a >= 0, b >= 0 {
            self.init(a, b)
        } else if parts.count == 1, s.count >= 2, s.allSatisfy(\.isASCII), Int(s) != nil {
            // Cache tags write the version without a dot: 37, 310, 311.
            self.init(Int(String(s.prefix(1)))!, Int(String(s.dropFirst()))!)
        } else {
            return nil
        }
    }

    package static func < (a: PythonVersion, b: PythonVersion) -> Bool { (a.major, a.minor) < (b.major, b.minor) }

    package var description: String { "\(major).\(minor)" }

    /// CPython's `sys.implementation.cache_tag` for this version (`cpython-311`).
    package var cacheTag: String { "cpython-\(major)\(minor)" }
}

/// Pyc magic numbers: the 2-byte little-endian number at the start of every pyc, followed by `\r\n`.
///
/// Source: CPython `Include/internal/pycore_magic_number.h` (3.14+) and `Lib/importlib/_bootstrap_external.py`
/// (earlier). From 3.11 on, Python 3.n uses numbers from 2900 + 50·n upwards.
package enum PycMagic {
    /// The magic number of each final release (the last number of its development cycle).
    package static let finalReleases: [(version: PythonVersion, number: UInt16)] = [
        (PythonVersion(2, 7), 62211),
        (PythonVersion(3, 3), 3230),
        (PythonVersion(3, 4), 3310),
        (PythonVersion(3, 5), 3351),  // 3.5.0–3.5.1 wrote 3350
        (PythonVersion(3, 6), 3379),
        (PythonVersion(3, 7), 3394),
        (PythonVersion(3, 8), 3413),
        (PythonVersion(3, 9), 3425),
        (PythonVersion(3, 10), 3439),
        (PythonVersion(3, 11), 3495),
        (PythonVersion(3, 12), 3531),
        (PythonVersion(3, 13), 3571),
        (PythonVersion(3, 14), 3627),
    ]

    /// Ranges of magic numbers used during each version's development (alphas and betas included).
    private static let ranges: [(ClosedRange<UInt16>, PythonVersion)] = [
        (62171...62211, PythonVersion(2, 7)),
        (3000...3139, PythonVersion(3, 0)),
        (3140...3159, PythonVersion(3, 1)),
        (3160...3189, PythonVersion(3, 2)),
        (3190...3249, PythonVersion(3, 3)),
        (3250...3319, PythonVersion(3, 4)),
        (3320...3359, PythonVersion(3, 5)),
        (3360...3389, PythonVersion(3, 6)),
        (3390...3399, PythonVersion(3, 7)),
        (3400...3419, PythonVersion(3, 8)),
        (3420...3429, PythonVersion(3, 9)),
        (3430...3449, PythonVersion(3, 10)),
    ]

    /// The Python version a magic number belongs to, or nil when it is not a known CPython number.
    package static func version(forNumber number: UInt16) -> PythonVersion? {
        if let r = ranges.first(where: { $0.0.contains(number) }) { return r.1 }
        // 3.11 and later: 2900 + 50·minor ... 2949 + 50·minor. Accept up to 3.39.
        if number >= 3450 && number < 4900 { return PythonVersion(3, (Int(number) - 2900) / 50) }
        return nil
    }

    /// The final-release magic number of `version`, when known.
    package static func number(for version: PythonVersion) -> UInt16? {
        finalReleases.first { $0.version == version }?.number
    }

    /// True when `number` is the magic of a final release (not a development snapshot).
    package static func isFinalRelease(_ number: UInt16) -> Bool {
        finalReleases.contains { $0.number == number } || number == 3350
    }

    /// The 4 magic bytes (number little-endian, then `\r\n`) read as a little-endian integer: the SipHash key k0.
    package static func word(forNumber number: UInt16) -> UInt32 { UInt32(number) | 0x0a0d_0000 }

    /// The SipHash variant CPython uses for source hashes in pycs with this magic: 1-3 from 3.11 on, 2-4 before.
    package static func sipHashVariant(forMagicWord word: UInt32) -> SipHash.Variant {
        let n = UInt16(truncatingIfNeeded: word)
        if let v = version(forNumber: n) { return v >= PythonVersion(3, 11) ? .sipHash13 : .sipHash24 }
        return n >= 3450 && n < 20000 ? .sipHash13 : .sipHash24
    }

    /// A person-readable name of a magic number: `3495 (Python 3.11)`, `3500 (Python 3.12 pre-release)`,
    /// `4242 (unknown)`.
    package static func describe(_ number: UInt16) -> String {
        guard let v = version(forNumber: number) else { return "\(number) (unknown)" }
        return isFinalRelease(number) ? "\(number) (Python \(v))" : "\(number) (Python \(v) pre-release)"
    }
}

/// The header of a compiled Python file (PEP 552; CPython `importlib._bootstrap_external._classify_pyc`).
///
/// ```
/// 0  magic   2-byte little-endian number + "\r\n"
/// 4  flags   uint32 LE: 0 timestamp, 1 unchecked hash, 3 checked hash; other bits: import fails
/// 8  flags 0: source mtime uint32 LE, source size uint32 LE — flags 1/3: 8-byte source hash
/// ```
/// Pycs of Python before 3.7 have no flags word: a 12-byte header (magic, mtime, size), 8 bytes before 3.3.
package struct PycHeader: Equatable, Sendable {
    /// The number of bytes CPython 3.7+ reads before the marshalled code.
    package static let size = 16

    /// How CPython decides whether the pyc still matches its source.
    package enum Validation: Equatable, Sendable {
        /// Compare the source's mtime (seconds, `& 0xFFFFFFFF`) and size (`& 0xFFFFFFFF`; nil before 3.3).
        case timestamp(mtime: UInt32, size: UInt32?)
        /// Recompute the source hash and compare (flags 3).
        case checkedHash(UInt64)
        /// Never compare: the pyc is used whenever it exists (flags 1).
        case uncheckedHash(UInt64)
    }

    /// The 2-byte magic number (`3495` for Python 3.11).
    package var magicNumber: UInt16
    package var flags: UInt32
    package var validation: Validation

    /// The 4 magic bytes read as a little-endian integer (the key of the source hash).
    package var magicWord: UInt32 { PycMagic.word(forNumber: magicNumber) }

    /// The Python version the magic belongs to, when known.
    package var pythonVersion: PythonVersion? { PycMagic.version(forNumber: magicNumber) }

    /// The source hash of a hash-based pyc.
    package var sourceHash: UInt64? {
        switch validation {
        case .timestamp: return nil
        case .checkedHash(let h), .uncheckedHash(let h): return h
        }
    }

    package init(magicNumber: UInt16, flags: UInt32, validation: Validation) {
        self.magicNumber = magicNumber
        self.flags = flags
        self.validation = validation
    }

    /// Parses the start of a pyc file. Only the first 16 bytes are looked at; more may be passed.
    ///
    /// Decides as `_classify_pyc` does: a magic not ending in `\r\n`, a short header, or a flags word with a
    /// bit other than the two low ones is an error (CPython raises ImportError/EOFError). Flags 2 (the
    /// check-source bit without the hash bit) is accepted and validated as a timestamp pyc, as importlib does.
    /// - Throws: `ImprintError.badInput` with the reason.
    package static func parse<C: Collection>(_ data: C) throws -> PycHeader where C.Element == UInt8, C.Index == Int {
        let b = Array(data.prefix(size))
        guard b.count >= 4 else {
            throw ImprintError.badInput("reached end of file after \(b.count) bytes while reading the pyc magic")
        }
        guard b[2] == 0x0d, b[3] == 0x0a else {
            throw ImprintError.badInput("bad magic bytes \(Hex.encode(b[0..<4])) (not a pyc: no \\r\\n after the number)")
        }
        let number = UInt16(b[0]) | UInt16(b[1]) << 8
        func u32(_ at: Int) -> UInt32 {
            UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
        }
        func u64(_ at: Int) -> UInt64 { UInt64(u32(at)) | UInt64(u32(at + 4)) << 32 }
        if let v = PycMagic.version(forNumber: number), v < PythonVersion(3, 7) {
            // Before PEP 552: magic, mtime, then (3.3+) size.
            let hasSize = v >= PythonVersion(3, 3)
            let need = hasSize ? 12 : 8
            guard b.count >= need else {
                throw ImprintError.badInput("reached end of file after \(b.count) bytes while reading the \(need)-byte pyc header of Python \(v)")
            }
            return PycHeader(magicNumber: number, flags: 0, validation: .timestamp(mtime: u32(4), size: hasSize ? u32(8) : nil))
        }
        guard b.count >= size else {
            throw ImprintError.badInput("reached end of file after \(b.count) bytes while reading the 16-byte pyc header")
        }
        let flags = u32(4)
        guard flags & ~0b11 == 0 else { throw ImprintError.badInput("invalid flags \(flags) in the pyc header") }
        switch flags {
        case 1: return PycHeader(magicNumber: number, flags: flags, validation: .uncheckedHash(u64(8)))
        case 3: return PycHeader(magicNumber: number, flags: flags, validation: .checkedHash(u64(8)))
        default: return PycHeader(magicNumber: number, flags: flags, validation: .timestamp(mtime: u32(8), size: u32(12)))
        }
    }

    /// The header as 16 bytes (Python 3.7+ layout).
    package var bytes: [UInt8] {
        var out: [UInt8] = []
        func put32(_ v: UInt32) { for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
        put32(magicWord)
        put32(flags)
        switch validation {
        case .timestamp(let m, let s): put32(m); put32(s ?? 0)
        case .checkedHash(let h), .uncheckedHash(let h): out.append(contentsOf: PycSourceHash.bytes(h))
        }
        return out
    }

    /// Name of the invalidation mode as `py_compile.PycInvalidationMode` spells it, lower-cased.
    package var modeName: String {
        switch validation {
        case .timestamp: return "timestamp"
        case .checkedHash: return "checked-hash"
        case .uncheckedHash: return "unchecked-hash"
        }
    }

    /// One line for reports: `timestamp pyc, magic 3495 (Python 3.11): source mtime 1700000000, size 14`.
    package var summary: String {
        let head = "\(modeName) pyc, magic \(PycMagic.describe(magicNumber))"
        switch validation {
        case .timestamp(let m, let s):
            let flagNote = flags == 2 ? " (flags 2: validated as a timestamp pyc)" : ""
            return "\(head)\(flagNote): source mtime \(m), size " + (s.map(String.init) ?? "not recorded")
        case .checkedHash(let h), .uncheckedHash(let h):
            return "\(head): source hash \(PycSourceHash.hex(h))"
        }
    }
}

/// The parts of a `__pycache__` file name (`mod.cpython-311.opt-1.pyc`), as `importlib.util.source_from_cache`
/// splits them.
package struct PycCacheName: Equatable, Sendable {
    /// The module's file name without `.py` (`mod`, `__init__`).
    package var stem: Bytes
    /// The interpreter's cache tag (`cpython-311`).
    package var cacheTag: String
    /// The optimisation suffix without `opt-` (`1`, `2`), nil for unoptimised bytecode.
    package var optimization: String?

    /// Splits a file name found in a `__pycache__` directory; nil when CPython would never look it up (it must
    /// have 2 or 3 dots, the third part being `opt-<alphanumeric>`, and end in `.pyc`).
    package init?(fileName: Bytes) {
        let suffix = Array(".pyc".utf8)
        guard fileName.count > suffix.count, fileName.suffix(4).elementsEqual(suffix),
              let name = fileName.exactString else { return nil }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 || parts.count == 4, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        if parts.count == 4 {
            guard parts[2].hasPrefix("opt-") else { return nil }
            let level = parts[2].dropFirst(4)
            guard !level.isEmpty, level.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else { return nil }
            optimization = String(level)
        }
        stem = Array(parts[0].utf8)
        cacheTag = String(parts[1])
    }

    /// The CPython version named by the cache tag (`cpython-311` → 3.11), nil for other implementations.
    package var pythonVersion: PythonVersion? {
        guard cacheTag.hasPrefix("cpython-") else { return nil }
        var digits = cacheTag.dropFirst("cpython-".count)
        if digits.hasSuffix("t") { digits = digits.dropLast() }  // free-threaded builds
        return PythonVersion(String(digits))
    }
}
