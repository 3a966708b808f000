import Foundation

/// Reading and writing the spec-shaped documents of this folder: errors that name the document and the field, and
/// one canonical byte form for everything imprint writes (sorted keys in byte order, as Go's `encoding/json` sorts
/// map keys; no escaped slashes; compact), so the same document always gives the same digest.
package enum OCIJSON {
    /// Decodes `bytes` as a `T`.
    /// - Throws: `badInput` naming `what` and the field that is missing or of the wrong type.
    package static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], what: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch let e as DecodingError {
            throw ImprintError(.badInput, "\(what): \(describe(e))", underlying: e)
        } catch let e as ImprintError {
            throw ImprintError(e.code, "\(what): \(e.message)", underlying: e)
        }
    }

    /// The canonical bytes of `value`.
    package static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(value))
        } catch {
            throw ImprintError(.failure, "cannot serialise JSON: \(error)")
        }
    }

    /// One line for a decoding error: which field, and what is wrong with it.
    package static func describe(_ e: DecodingError) -> String {
        func field(_ path: [CodingKey]) -> String {
            var out = ""
            for k in path {
                if let i = k.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + k.stringValue }
            }
            return out.isEmpty ? "the document" : "field \(out)"
        }
        switch e {
        case .keyNotFound(let key, let c):
            return "\(field(c.codingPath + [key])) is missing"
        case .valueNotFound(_, let c):
            return "\(field(c.codingPath)) is null"
        case .typeMismatch(let type, let c):
            let expected: String
            switch type {
            case is String.Type: expected = "a string"
            case is Bool.Type: expected = "true or false"
            case is Int.Type, is UInt64.Type, is Int64.Type: expected = "a whole number"
            case is Double.Type: expected = "a number"
            case is [Any].Type: expected = "an array"
            default: expected = "an object"   // every other type these documents decode is an object
            }
            return "\(field(c.codingPath)) is not \(expected)"
        case .dataCorrupted(let c):
            if c.codingPath.isEmpty { return "is not valid JSON (or holds a number out of range)" }
            return "\(field(c.codingPath)): \(c.debugDescription.split(separator: "\n").first.map(String.init) ?? "invalid")"
        @unknown default:
            return "is not a valid document"
        }
    }
}

/// The name of a JSON object member that no `CodingKeys` case names.
package struct JSONKey: CodingKey {
    package var stringValue: String
    package init(_ name: String) { stringValue = name }
    package init?(stringValue: String) { self.stringValue = stringValue }
    package var intValue: Int? { nil }
    package init?(intValue: Int) { nil }
}

/// The members of a JSON object that a spec-shaped type does not model (Docker's `container_config`, a newer spec's
/// fields, vendor extensions), kept so that a document read and written back holds every member it was read with.
/// A modelled member that was `null` is kept here too, so it is written back as `null` rather than dropped.
package struct UnknownFields: Equatable, Sendable {
    package var values: [String: JSONValue] = [:]

    package init() {}

    /// Reads the members of the object being decoded that `Known` does not name (or that were `null`).
    package init<Known: CodingKey & CaseIterable>(from decoder: Decoder, known _: Known.Type) throws {
        let names = Set(Known.allCases.map(\.stringValue))
        let c = try decoder.container(keyedBy: JSONKey.self)
        for k in c.allKeys where try !names.contains(k.stringValue) || c.decodeNil(forKey: k) {
            values[k.stringValue] = try c.decode(JSONValue.self, forKey: k)
        }
    }

    /// Writes the kept members. Types call this before encoding their modelled fields, so a field that now has a
    /// value replaces a kept `null` (the encoder keeps the last value written under a key).
    package func encode(to encoder: Encoder) throws {
        guard !values.isEmpty else { return }
        var c = encoder.container(keyedBy: JSONKey.self)
        for (k, v) in values { try c.encode(v, forKey: JSONKey(k)) }
    }
}

extension JSONValue: Codable {
    package init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int64.self) { self = .number(Double(i), integer: i); return }
        if let d = try? c.decode(Double.self) { self = .number(d, integer: nil); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        self = .object(try c.decode([String: JSONValue].self))
    }

    package func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let d, let i): if let i { try c.encode(i) } else { try c.encode(d) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}

extension Digest: Codable {
    /// Reads `sha256:<64 hex digits>`: the only algorithm imprint verifies, so any other is an error, not a skip.
    package init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard s.hasPrefix("sha256:"), let d = Digest(hex: s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "unsupported or malformed digest \(s.prefix(80)) (only sha256 is supported)")
        }
        self = d
    }

    package func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(prefixed)
    }
}
