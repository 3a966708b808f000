/// The canonical JSON that in-toto and securesystemslib sign (OLPC canonical JSON, as `encode_canonical` writes
/// it): object keys sorted by code point, no whitespace, integers only, and in strings only `"` and `\` escaped.
/// Signatures over it verify in the reference implementations byte for byte.
package enum SignedJSON {
    /// - Throws: `badInput` for a number that is not an integer (canonical JSON has none).
    package static func canonical(_ v: JSONValue) throws -> [UInt8] {
        var out: [UInt8] = []
        try write(v, into: &out)
        return out
    }

    package static func write(_ v: JSONValue, into out: inout [UInt8]) throws {
        switch v {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(_, let i):
            guard let i else { throw ImprintError.badInput("canonical JSON has no fractions or exponents") }
            out.append(contentsOf: String(i).utf8)
        case .string(let s): string(s, into: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (k, e) in a.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                try write(e, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            let keys = o.keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
            for (k, key) in keys.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                string(key, into: &out)
                out.append(UInt8(ascii: ":"))
                // why: the key comes from the dictionary's own keys.
                try write(o[key]!, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    package static func string(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
            out.append(b)
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension JSONValue {
    package static func str(_ s: String) -> JSONValue { .string(s) }
    package static func int<I: BinaryInteger>(_ i: I) -> JSONValue { .number(Double(i), integer: Int64(clamping: i)) }
    /// `{"sha256": "<hex>"}`, the digest set of in-toto resource descriptors.
    package static func digestSet(_ d: Digest) -> JSONValue { .object(["sha256": .string(d.hex)]) }
    /// `{"imprint-tree-v1": "<hex>"}`: a tree's Merkle root (schemas/DIGEST.md), which is the SHA-256 of no single
    /// byte string, so it is not labelled `sha256`.
    package static func treeDigestSet(_ d: Digest) -> JSONValue { .object([Digest.treeAlgorithm: .string(d.hex)]) }
}
