internal import CImprintRE2

/// A regular expression with the syntax and semantics of Go's `regexp` package, executed by RE2 (the engine
/// Go's package was ported from). Matching takes time linear in the pattern and the text, whatever either holds.
///
/// The few places where RE2 accepts what Go rejects are rejected here as Go does (`\C`, "any byte").
// why @unchecked Sendable: a compiled RE2 is immutable and RE2 documents matching as thread-safe.
package final class GoRegexp: @unchecked Sendable {
    // why @unchecked: the RE2 object is immutable after compilation and RE2 documents matching as thread-safe.
    private let re: OpaquePointer

    /// Compiles `pattern` (UTF-8 bytes).
    /// - Throws: `badInput` with Go's kind of reason when the expression is invalid.
    package init(_ pattern: Bytes) throws {
        if let bad = GoRegexp.unsupportedEscape(pattern) {
            throw ImprintError.badInput("invalid escape sequence: `\(bad)`")
        }
        var message = [CChar](repeating: 0, count: 256)
        let compiled = pattern.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { c in
                message.withUnsafeMutableBufferPointer { m in
                    CImprintRE2_compile(c.baseAddress, c.count, m.baseAddress, m.count)
                }
            }
        }
        guard let compiled else {
            throw ImprintError.badInput(String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        re = compiled
    }

    deinit { CImprintRE2_free(re) }

    /// `Regexp.Match`: true when `subject` contains a match. Bytes that are not valid UTF-8 count as U+FFFD.
    package func matches(_ subject: Bytes) -> Bool {
        let text = GoText.regexpSubject(subject)
        return text.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { CImprintRE2_search(re, $0.baseAddress, $0.count) == 1 }
        }
    }

    /// The first escape RE2 accepts but Go's `regexp/syntax` does not, or nil. `\Q…\E` quotes are skipped.
    package static func unsupportedEscape(_ p: Bytes) -> String? {
        var i = 0
        while i < p.count {
            guard p[i] == UInt8(ascii: "\\"), i + 1 < p.count else { i += 1; continue }
            switch p[i + 1] {
            case UInt8(ascii: "C"): return "\\C"
            case UInt8(ascii: "Q"):
                // Literal text up to \E (or the end).
                var j = i + 2
                while j + 1 < p.count && !(p[j] == UInt8(ascii: "\\") && p[j + 1] == UInt8(ascii: "E")) { j += 1 }
                i = j + 2
            default:
                i += 2
            }
        }
        return nil
    }
}
