/// One `.dockerignore` pattern compiled as its builder compiles it.
///
/// BuildKit (moby/patternmatcher v0.6 `Pattern.compile`) turns the pattern into a Go regular expression: `*` →
/// `[^/]*`, `?` → `[^/]`, `**` → `(.*/)?` (`.*` at the end), the characters `.+()|{}$` escaped, and everything else
/// — a backslash and the character after it, `[`, `]`, `^` — handed to Go's regexp as it is. Patterns without any
/// of that take fast paths (exact text, a prefix before a final `**`, a suffix after a leading `**`), compared
/// byte for byte. The current docker CLI (the legacy builder's context) uses the same patternmatcher; the older
/// fileutils (Docker 20.10, buildah 1.28) escaped only `.` and `$`, so `( ) + | { }` keep their regex meaning there.
///
/// The expression is executed by RE2, which matches in linear time; an invalid expression is an error only when a
/// path is first matched against it, as in BuildKit.
package final class PatternMatcher: Sendable {
    package enum Kind: Sendable { case exact, prefix, suffix, regex }

    package let kind: Kind
    /// The cleaned pattern (exact), the prefix before `**`, or the suffix after the leading `**`.
    package let literal: Bytes
    /// The Go expression (for `regex`).
    package let expression: Bytes
    private let compiled: Result<GoRegexp, ImprintError>?

    package init(_ pattern: Bytes, semantics: IgnoreSemantics) {
        let translated = semantics.literalMetacharacters ? PatternMatcher.buildkit(pattern) : PatternMatcher.fileutils(pattern)
        kind = translated.kind
        expression = translated.expression
        switch kind {
        case .exact: literal = pattern
        case .prefix: literal = Array(pattern.dropLast(2))
        case .suffix: literal = Array(pattern.dropFirst(2))
        case .regex: literal = []
        }
        if kind == .regex {
            do { compiled = .success(try GoRegexp(expression)) } catch let e as ImprintError { compiled = .failure(e) } catch {
                compiled = .failure(ImprintError.badInput("\(error)"))
            }
        } else {
            compiled = nil
        }
    }

    /// The reason the expression does not compile, or nil.
    package var compileError: ImprintError? {
        if case .failure(let e)? = compiled { return e }
        return nil
    }

    /// `Pattern.match`: whether `path` (slash-separated, context-relative) matches.
    /// - Throws: the compile error of an invalid expression.
    package func matches(_ path: Bytes) throws -> Bool {
        switch kind {
        case .exact:
            return path == literal
        case .prefix:
            return path.starts(with: literal)
        case .suffix:
            if path.count >= literal.count && path[(path.count - literal.count)...].elementsEqual(literal) { return true }
            return literal.first == GoText.slash && path.elementsEqual(literal.dropFirst())
        case .regex:
            switch compiled {
            case .success(let re)?: return re.matches(path)
            case .failure(let e)?: throw e
            case nil: return false
            }
        }
    }

    // MARK: Translation

    /// The runes of `pattern` as Go's `text/scanner` yields them: a BOM first is skipped, an invalid byte is U+FFFD.
    private static func scannerRunes(_ pattern: Bytes) -> [UInt32] {
        var out: [UInt32] = []
        pattern.withUnsafeBufferPointer { b in
            var i = 0
            while i < b.count {
                let (r, w) = GoText.decodeRune(b, i)
                i += w
                if out.isEmpty && i == w && r == 0xFEFF { continue }
                out.append(r)
            }
        }
        return out
    }

    /// patternmatcher v0.6 `compile` with `/` as the separator.
    package static func buildkit(_ pattern: Bytes) -> (kind: Kind, expression: Bytes) {
        let p = scannerRunes(pattern)
        var re: Bytes = [UInt8(ascii: "^")]
        var detected = Kind.exact
        var i = 0
        var iteration = 0
        let star: UInt32 = 0x2A, slash: UInt32 = 0x2F
        while i < p.count {
            let ch = p[i]; i += 1
            defer { iteration += 1 }
            switch ch {
            case star:
                if i < p.count, p[i] == star {
                    i += 1
                    if i < p.count, p[i] == slash { i += 1 }
                    if i >= p.count {
                        if detected == .exact { detected = .prefix } else { re += Array(".*".utf8); detected = .regex }
                    } else {
                        re += Array("(.*/)?".utf8)
                        detected = .regex
                    }
                    if iteration == 0 { detected = .suffix }
                } else {
                    re += Array("[^/]*".utf8)
                    detected = .regex
                }
            case 0x3F:  // ?
                re += Array("[^/]".utf8)
                detected = .regex
            case 0x2E, 0x2B, 0x28, 0x29, 0x24:  // . + ( ) $ (see the type's comment for | { })
                re.append(UInt8(ascii: "\\"))
                GoText.appendRune(ch, to: &re)
            case 0x5C:  // backslash: hands the next character to the regexp as an escape
                re.append(UInt8(ascii: "\\"))
                if i < p.count {
                    GoText.appendRune(p[i], to: &re); i += 1
                    detected = .regex
                }
            case 0x5B, 0x5D:  // [ ]
                GoText.appendRune(ch, to: &re)
                detected = .regex
            default:
                GoText.appendRune(ch, to: &re)
            }
        }
        if detected == .regex { re.append(UInt8(ascii: "$")) }
        return (detected, re)
    }

    /// The older fileutils `compile` (docker/fileutils of Docker 20.10, containers/storage's in buildah 1.28):
    /// always a regular expression, only `.` and `$` escaped.
    package static func fileutils(_ pattern: Bytes) -> (kind: Kind, expression: Bytes) {
        let p = scannerRunes(pattern)
        var re: Bytes = [UInt8(ascii: "^")]
        var i = 0
        let star: UInt32 = 0x2A, slash: UInt32 = 0x2F
        while i < p.count {
            let ch = p[i]; i += 1
            switch ch {
            case star:
                if i < p.count, p[i] == star {
                    i += 1
                    if i < p.count, p[i] == slash { i += 1 }
                    re += Array((i >= p.count ? ".*" : "(.*/)?").utf8)
                } else {
                    re += Array("[^/]*".utf8)
                }
            case 0x3F: re += Array("[^/]".utf8)
            case 0x2E, 0x24:
                re.append(UInt8(ascii: "\\"))
                GoText.appendRune(ch, to: &re)
            case 0x5C:
                re.append(UInt8(ascii: "\\"))
                if i < p.count { GoText.appendRune(p[i], to: &re); i += 1 }
            default:
                GoText.appendRune(ch, to: &re)
            }
        }
        re.append(UInt8(ascii: "$"))
        return (.regex, re)
    }
}
