/// Raw file-name bytes. Paths are kept as bytes so names that are not valid UTF-8 round-trip losslessly.
package typealias Bytes = [UInt8]

extension Array where Element == UInt8 {
    /// The UTF-8 bytes of `string`.
    @inlinable package init(utf8 string: String) { self = Array(string.utf8) }

    /// The bytes as a String, replacing invalid UTF-8 (for display only).
    package var lossyString: String { String(decoding: self, as: UTF8.self) }

    /// The bytes as a String when they are valid UTF-8, otherwise nil.
    package var exactString: String? { String(validating: self, as: UTF8.self) }

    /// Splits a slash-separated path into its non-empty components.
    package var pathComponents: [Bytes] {
        split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true).map(Array.init)
    }

    /// `self` and `other` joined with one slash (either may be empty).
    package func appendingPath(_ other: Bytes) -> Bytes {
        if isEmpty { return other }
        if other.isEmpty { return self }
        var r = self
        r.reserveCapacity(count + 1 + other.count)
        r.append(UInt8(ascii: "/"))
        r.append(contentsOf: other)
        return r
    }

    /// True when `self` is `prefix` or lies below it (`a/b` is under `a`, `ab` is not).
    package func isPath(under prefix: Bytes) -> Bool {
        if prefix.isEmpty { return true }
        guard count >= prefix.count, self[..<prefix.count].elementsEqual(prefix) else { return false }
        return count == prefix.count || self[prefix.count] == UInt8(ascii: "/")
    }
}

package enum Hex {
    package static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    package static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    package static func decode(_ s: Substring) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let hi = nibble(u[i]), let lo = nibble(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}

/// Octal text of permission bits, four digits (`0644`, `4755`).
package func octalMode(_ mode: UInt32) -> String {
    let s = String(mode & 0o7777, radix: 8)
    return String(repeating: "0", count: max(0, 4 - s.count)) + s
}

package func parseOctalMode(_ s: String) -> UInt32? {
    guard !s.isEmpty, s.count <= 6, let v = UInt32(s, radix: 8), v <= 0o7777 else { return nil }
    return v
}

extension String {
    /// The text of a NUL-terminated C buffer (up to its first NUL), invalid UTF-8 repaired.
    package init(nulTerminated buffer: [CChar]) {
        self = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension Array where Element == UInt8 {
    /// The bytes as one line of text for a listing: printable UTF-8 as it is; control characters, backslash and
    /// bytes that are not UTF-8 as `\xNN`, so every name shows unambiguously on one line.
    package var escapedForListing: String {
        if let s = exactString, !s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f || $0 == "\\" }) { return s }
        var out = ""
        var i = 0
        while i < count {
            // The longest valid UTF-8 sequence starting here (1-4 bytes), if any.
            var taken = false
            for len in 1...4 where i + len <= count {
                if let s = String(validating: self[i..<(i + len)], as: UTF8.self), s.unicodeScalars.count == 1,
                   let u = s.unicodeScalars.first, u.value >= 0x20, u.value != 0x7f, u != "\\" {
                    out += s
                    i += len
                    taken = true
                    break
                }
            }
            if !taken {
                out += "\\x" + String(self[i], radix: 16).leftPadded(2, with: "0")
                i += 1
            }
        }
        return out
    }
}

extension String {
    /// The string right-aligned in `width` characters.
    package func leftPadded(_ width: Int, with pad: Character = " ") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}

/// Path components joined with `/`.
extension Array where Element == [UInt8] {
    package var joinedPath: Bytes {
        var out = Bytes()
        for (i, c) in enumerated() {
            if i > 0 { out.append(UInt8(ascii: "/")) }
            out.append(contentsOf: c)
        }
        return out
    }
}
