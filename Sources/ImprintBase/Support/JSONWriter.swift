import Foundation

/// Writes JSON with a fixed key order and no floats, so equal values give equal bytes on every machine.
package struct JSONWriter {
    package private(set) var bytes: [UInt8] = []
    private var needsComma: [Bool] = [false]
    private let pretty: Bool
    private var depth = 0

    package init(pretty: Bool = true, reserve: Int = 4096) {
        self.pretty = pretty
        bytes.reserveCapacity(reserve)
    }

    package var string: String { String(decoding: bytes, as: UTF8.self) }

    private mutating func separator() {
        if needsComma[needsComma.count - 1] { bytes.append(UInt8(ascii: ",")) }
        needsComma[needsComma.count - 1] = true
        if pretty && depth > 0 { newline() }
    }

    private mutating func newline() {
        bytes.append(0x0A)
        for _ in 0..<depth { bytes.append(0x20); bytes.append(0x20) }
    }

    private mutating func key(_ k: String?) {
        separator()
        if let k {
            Self.appendString(k, to: &bytes)
            bytes.append(UInt8(ascii: ":"))
            if pretty { bytes.append(0x20) }
        }
    }

    package mutating func beginObject(_ k: String? = nil) {
        key(k); bytes.append(UInt8(ascii: "{")); depth += 1; needsComma.append(false)
    }

    package mutating func endObject() { close(UInt8(ascii: "}")) }

    package mutating func beginArray(_ k: String? = nil) {
        key(k); bytes.append(UInt8(ascii: "[")); depth += 1; needsComma.append(false)
    }

    package mutating func endArray() { close(UInt8(ascii: "]")) }

    private mutating func close(_ c: UInt8) {
        let had = needsComma.removeLast()
        depth -= 1
        if pretty && had { newline() }
        bytes.append(c)
    }

    /// Writes a compact object on one line (used for manifest entries: one entry per line).
    package mutating func compact(_ k: String? = nil, _ body: (inout JSONWriter) -> Void) {
        key(k)
        var inner = JSONWriter(pretty: false, reserve: 256)
        inner.depth = 0
        body(&inner)
        bytes.append(contentsOf: inner.bytes)
    }

    /// What goes before an element (after the first) at the current level: a comma, then in pretty output a
    /// newline and the indentation.
    package var elementSeparator: [UInt8] {
        var sep: [UInt8] = [UInt8(ascii: ",")]
        if pretty && depth > 0 {
            sep.append(0x0A)
            sep.append(contentsOf: repeatElement(0x20, count: 2 * depth))
        }
        return sep
    }

    /// Hands over the bytes written so far; writing goes on as if they were still there.
    package mutating func takeBytes() -> [UInt8] {
        defer { bytes = [] }
        return bytes
    }

    /// Records that elements were written at the current level without this writer (so the next one takes a comma).
    package mutating func noteRawElements() { needsComma[needsComma.count - 1] = true }

    /// Array elements serialised elsewhere (compact JSON), each preceded by `elementSeparator`: the same bytes as
    /// writing them one by one.
    package mutating func rawElements(_ chunk: [UInt8]) {
        guard !chunk.isEmpty else { return }
        if needsComma[needsComma.count - 1] {
            bytes.append(contentsOf: chunk)
        } else {
            bytes.append(contentsOf: chunk[1...])  // the first element of the level takes no comma
            needsComma[needsComma.count - 1] = true
        }
    }

    package mutating func string(_ k: String?, _ v: String) { key(k); Self.appendString(v, to: &bytes) }
    package mutating func string(_ k: String?, _ v: String?) { if let v { string(k, v) } }
    package mutating func int<I: BinaryInteger>(_ k: String?, _ v: I) { key(k); bytes.append(contentsOf: String(v).utf8) }
    /// A digest as a 64-hex-digit string, without building a String.
    package mutating func hexDigest(_ k: String?, _ d: Digest) {
        key(k); bytes.append(UInt8(ascii: "\"")); d.appendHex(to: &bytes); bytes.append(UInt8(ascii: "\""))
    }
    package mutating func bool(_ k: String?, _ v: Bool) { key(k); bytes.append(contentsOf: (v ? "true" : "false").utf8) }
    package mutating func null(_ k: String?) { key(k); bytes.append(contentsOf: "null".utf8) }
    /// Inserts already-serialised JSON.
    package mutating func raw(_ k: String?, _ json: [UInt8]) { key(k); bytes.append(contentsOf: json) }

    /// Writes any JSON-compatible value (from JSONSerialization) with object keys sorted.
    package mutating func value(_ k: String?, _ v: Any) {
        switch v {
        case let s as String: string(k, s)
        case let n as NSNumber:
            if String(cString: n.objCType) == "c" {
                bool(k, n.boolValue)
            } else if ["d", "f"].contains(String(cString: n.objCType)) {
                key(k); bytes.append(contentsOf: "\(n.doubleValue)".utf8)
            } else {
                int(k, n.int64Value)
            }
        case let i as Int: int(k, i)
        case let a as [Any]:
            beginArray(k); for e in a { value(nil, e) }; endArray()
        case let d as [String: Any]:
            beginObject(k); for key in d.keys.sorted() { value(key, d[key]!) }; endObject()
        default: null(k)
        }
    }

    package mutating func end() { if pretty { bytes.append(0x0A) } }

    /// `appendString` for text given as its UTF-8 bytes (the same output for the same text).
    package static func appendEscaped(_ utf8: [UInt8], to out: inout [UInt8]) {
        utf8.withUnsafeBufferPointer { appendEscaped($0, to: &out) }
    }

    /// Quotes and escapes UTF-8 text: quote, backslash and control characters; everything else is copied as is.
    package static func appendEscaped(_ p: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var start = 0
        for i in 0..<p.count {
            let c = p[i]
            // Only quote, backslash and control characters need escaping: copy the runs between them at once.
            guard c < 0x20 || c == 0x7F || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") else { continue }
            if start < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: p[start..<i])) }
            appendEscape(c, to: &out)
            start = i + 1
        }
        if start < p.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: p[start...])) }
        out.append(UInt8(ascii: "\""))
    }

    private static func appendEscape(_ c: UInt8, to out: inout [UInt8]) {
        switch c {
        case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
        case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
        case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
        case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
        case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
        default:
            // \u00XX, lowercase hex, as String(format: "\\u%04x").
            let hex: [UInt8] = Array("0123456789abcdef".utf8)
            out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 0xF)]])
        }
    }

    /// The decimal digits of `v` (as `String(v)`), without building a String.
    package static func appendDecimal(_ v: UInt64, to out: inout [UInt8]) {
        if v < 10 { out.append(0x30 + UInt8(v)); return }
        var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 32 bytes: UInt64.max has 20 digits
        var n = 0
        withUnsafeMutableBytes(of: &digits) { buf in
            var x = v
            while x > 0 { buf[31 - n] = 0x30 + UInt8(x % 10); x /= 10; n += 1 }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[(32 - n)...]))
        }
    }

    package static func appendString(_ s: String, to out: inout [UInt8]) {
        var s = s
        s.withUTF8 { appendEscaped($0, to: &out) }
    }
}

/// Small helpers for reading JSON produced by JSONSerialization.
package enum JSONRead {
    package static func object(_ data: [UInt8], what: String) throws -> [String: Any] {
        let obj: Any
        do {
            obj = try JSONSerialization.jsonObject(with: Data(data), options: [.fragmentsAllowed])
        } catch {
            throw ImprintError.badInput("\(what) is not valid JSON: \(Self.reason(error))")
        }
        guard let dict = obj as? [String: Any] else { throw ImprintError.badInput("\(what) is not a JSON object") }
        return dict
    }

    /// A JSON number that is an integer (not `true`/`false`, which bridge to 1/0, and not a fraction).
    package static func integerNumber(_ v: Any?) -> NSNumber? {
        guard let n = v as? NSNumber else { return nil }
        let type = String(cString: n.objCType)
        guard type != "c", type != "B", type != "d", type != "f" else { return nil }
        return n
    }

    /// A byte count: a JSON integer from 0 to 2^56 (not a fraction, not negative, not a string).
    package static func size(_ v: Any?) -> UInt64? {
        guard let n = integerNumber(v) else { return nil }
        let i = n.int64Value
        guard i >= 0, UInt64(i) <= Limits.maxEntrySize, n == NSNumber(value: i) else { return nil }
        return UInt64(i)
    }

    /// A JSON integer from 0 to 2^32-1.
    package static func uint32(_ v: Any?) -> UInt32? {
        guard let n = integerNumber(v) else { return nil }
        let i = n.int64Value
        guard i >= 0, i <= Int64(UInt32.max), n == NSNumber(value: i) else { return nil }
        return UInt32(i)
    }

    /// A JSON integer from 0 to `Int.max`.
    package static func count(_ v: Any?) -> Int? {
        guard let n = integerNumber(v) else { return nil }
        let i = n.int64Value
        guard i >= 0, n == NSNumber(value: i) else { return nil }
        return Int(i)
    }

    package static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let d = ns.userInfo[NSDebugDescriptionErrorKey] as? String { return d }
        return ns.localizedDescription
    }
}
