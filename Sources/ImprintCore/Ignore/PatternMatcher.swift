import Foundation

/// One compiled `.dockerignore` pattern.
///
/// BuildKit mode reproduces moby/patternmatcher's `compile`: the pattern becomes a regular expression built from
/// `*` → `[^/]*`, `?` → `[^/]`, `**` → `(.*/)?` (or `.*` at the end), `\x` → literal x, classes kept, and
/// `.+()|{}$` escaped; plain prefixes, suffixes and literals take the same fast paths as patternmatcher. The
/// expression is executed by a small backtracking matcher over Unicode scalars instead of a regex engine.
/// Classic mode builds the older docker/fileutils expression (only `.` and `$` escaped) and runs it with
/// NSRegularExpression, so `( ) + | { }` keep their regex meaning as in buildah 1.28.
final class PatternMatcher: @unchecked Sendable {  // why: immutable after init; NSRegularExpression is thread-safe
    enum Kind { case exact, prefix, suffix, regex }

    enum Token: Equatable {
        case literal(UInt32)
        case star            // [^/]*
        case one             // [^/]
        case dirs            // (.*/)?
        case all             // .*
        case klass(negated: Bool, ranges: [ClosedRange<UInt32>])
    }

    let kind: Kind
    let literal: [UInt32]      // exact text, prefix (without "**") or suffix (without leading "**")
    let tokens: [Token]
    let regex: NSRegularExpression?

    static func scalars(_ bytes: Bytes) -> [UInt32] {
        // Invalid UTF-8 bytes map to distinct values above the Unicode range so they only match themselves,
        // as they would byte-for-byte in Go (which sees U+FFFD for each).
        var out: [UInt32] = []
        out.reserveCapacity(bytes.count)
        var it = bytes.makeIterator()
        var decoder = UTF8()
        loop: while true {
            switch decoder.decode(&it) {
            case .scalarValue(let s): out.append(s.value)
            case .emptyInput: break loop
            case .error: out.append(0x11_0000)
            }
        }
        return out
    }

    init(_ pattern: String, semantics: IgnoreSemantics) throws {
        let p = Array(pattern.unicodeScalars.map(\.value))
        if semantics == .classic {
            kind = .regex
            literal = []
            tokens = []
            regex = try PatternMatcher.classicRegex(pattern)
            return
        }
        regex = nil
        var toks: [Token] = []
        var detected = Kind.exact
        var i = 0
        var iteration = 0
        let slash: UInt32 = 0x2F
        while i < p.count {
            let ch = p[i]; i += 1
            defer { iteration += 1 }
            switch ch {
            case 0x2A:  // *
                if i < p.count, p[i] == 0x2A {
                    i += 1
                    if i < p.count, p[i] == slash { i += 1 }
                    if i >= p.count {
                        if detected == .exact { detected = .prefix } else { toks.append(.all); detected = .regex }
                    } else {
                        toks.append(.dirs)
                        detected = .regex
                    }
                    if iteration == 0 { detected = .suffix }
                } else {
                    toks.append(.star)
                    detected = .regex
                }
            case 0x3F:  // ?
                toks.append(.one)
                detected = .regex
            case 0x5C:  // backslash
                if i < p.count {
                    toks.append(.literal(p[i])); i += 1
                    detected = .regex
                } else {
                    toks.append(.literal(0x5C))
                }
            case 0x5B:  // [
                detected = .regex
                var negated = false
                if i < p.count, p[i] == 0x5E { negated = true; i += 1 }
                var ranges: [ClosedRange<UInt32>] = []
                var first = true
                while i < p.count {
                    if p[i] == 0x5D, !first { i += 1; break }
                    first = false
                    var lo = p[i]; i += 1
                    if lo == 0x5C, i < p.count { lo = p[i]; i += 1 }
                    var hi = lo
                    if i + 1 < p.count, p[i] == 0x2D, p[i + 1] != 0x5D {
                        i += 1
                        hi = p[i]; i += 1
                        if hi == 0x5C, i < p.count { hi = p[i]; i += 1 }
                    }
                    if lo <= hi { ranges.append(lo...hi) } else {
                        throw ImprintError.badInput("invalid character class range")
                    }
                }
                toks.append(.klass(negated: negated, ranges: ranges))
            default:
                toks.append(.literal(ch))
            }
        }
        kind = detected
        tokens = toks
        switch detected {
        case .exact: literal = p
        case .prefix: literal = Array(p.dropLast(2))
        case .suffix: literal = Array(p.dropFirst(2))
        case .regex: literal = []
        }
    }

    func matches(_ path: [UInt32]) -> Bool {
        switch kind {
        case .exact:
            return path == literal
        case .prefix:
            return path.starts(with: literal)
        case .suffix:
            if literal.isEmpty || (path.count >= literal.count && path[(path.count - literal.count)...].elementsEqual(literal)) {
                return true
            }
            return literal.first == 0x2F && path.elementsEqual(literal.dropFirst())
        case .regex:
            if let regex {
                let s = String(String.UnicodeScalarView(path.map { Unicode.Scalar($0) ?? "\u{FFFD}" }))
                let range = NSRange(s.startIndex..., in: s)
                return regex.firstMatch(in: s, options: [], range: range) != nil
            }
            return PatternMatcher.run(tokens[...], path[...])
        }
    }

    /// Backtracking execution of the token list against the whole path (the regex is anchored at both ends).
    private static func run(_ toks: ArraySlice<Token>, _ s: ArraySlice<UInt32>) -> Bool {
        guard let tok = toks.first else { return s.isEmpty }
        let rest = toks.dropFirst()
        switch tok {
        case .literal(let c):
            guard let f = s.first, f == c else { return false }
            return run(rest, s.dropFirst())
        case .one:
            guard let f = s.first, f != 0x2F else { return false }
            return run(rest, s.dropFirst())
        case .klass(let negated, let ranges):
            guard let f = s.first else { return false }
            let inside = ranges.contains { $0.contains(f) }
            guard inside != negated else { return false }
            return run(rest, s.dropFirst())
        case .star:
            var i = s.startIndex
            while true {
                if run(rest, s[i...]) { return true }
                guard i < s.endIndex, s[i] != 0x2F else { return false }
                i += 1
            }
        case .all:
            // `.` does not match a newline in Go's regexp.
            var i = s.startIndex
            while true {
                if run(rest, s[i...]) { return true }
                guard i < s.endIndex, s[i] != 0x0A else { return false }
                i += 1
            }
        case .dirs:
            // (.*/)? : empty, or any run (without newline) ending in a slash.
            if run(rest, s) { return true }
            var i = s.startIndex
            while i < s.endIndex, s[i] != 0x0A {
                if s[i] == 0x2F, run(rest, s[(i + 1)...]) { return true }
                i += 1
            }
            return false
        }
    }

    /// The regular expression of docker/fileutils before patternmatcher (Docker 20.10, buildah 1.28).
    private static func classicRegex(_ pattern: String) throws -> NSRegularExpression {
        var re = "^"
        let p = Array(pattern.unicodeScalars)
        var i = 0
        while i < p.count {
            let ch = p[i]; i += 1
            if ch == "*" {
                if i < p.count, p[i] == "*" {
                    i += 1
                    if i < p.count, p[i] == "/" { i += 1 }
                    if i >= p.count { re += ".*" } else { re += "(.*/)?" }
                } else {
                    re += "[^/]*"
                }
            } else if ch == "?" {
                re += "[^/]"
            } else if ch == "." || ch == "$" {
                re += "\\" + String(ch)
            } else if ch == "\\" {
                if i < p.count { re += "\\" + String(p[i]); i += 1 } else { re += "\\\\" }
            } else {
                re += String(ch)
            }
        }
        re += "$"
        do {
            return try NSRegularExpression(pattern: re, options: [])
        } catch {
            throw ImprintError.badInput("not a valid expression in classic mode")
        }
    }
}
