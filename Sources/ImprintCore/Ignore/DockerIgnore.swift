import Foundation

/// Which builder's `.dockerignore` behaviour to reproduce.
public enum IgnoreSemantics: String, Sendable, CaseIterable {
    /// Current BuildKit (moby/patternmatcher ≥ 0.5, tonistiigi/fsutil): regex metacharacters are literal and a
    /// wildcard exception makes the walk enter excluded directories.
    case buildkit
    /// Docker's legacy builder, docker-py and buildah/podman 1.28: `( ) + | { }` keep their regex meaning and an
    /// excluded directory is entered only when an exception's text starts with its path.
    case classic
}

/// A parsed `.dockerignore` file.
///
/// Parsing follows BuildKit's `dockerignore.ReadAll`; matching follows moby/patternmatcher's
/// `MatchesUsingParentResults`, including its fast paths (exact, prefix, suffix) whose results differ from the
/// regular expression in corner cases such as `**foo`.
public struct DockerIgnore: Sendable {
    public struct Pattern: Sendable {
        /// The cleaned pattern text, without the leading `!`.
        public let text: String
        public let exclusion: Bool
        /// 1-based line in the ignore file.
        public let line: Int
        let matcher: PatternMatcher
    }

    public let patterns: [Pattern]
    public let semantics: IgnoreSemantics
    /// True when at least one pattern is an exception (`!…`).
    public let hasExceptions: Bool
    /// BuildKit enters excluded directories unconditionally when an exception contains a wildcard.
    let onlyPrefixExceptions: Bool

    public static let empty = DockerIgnore(patterns: [], semantics: .buildkit)

    init(patterns: [Pattern], semantics: IgnoreSemantics) {
        self.patterns = patterns
        self.semantics = semantics
        hasExceptions = patterns.contains { $0.exclusion }
        onlyPrefixExceptions = !patterns.contains {
            $0.exclusion && DockerIgnore.trimTrailingGlob($0.text).contains { "*[]?^\\".contains($0) }
        }
    }

    /// Parses the bytes of an ignore file.
    /// - Throws: `ImprintError.badInput` naming `file`, the line and the reason for an invalid pattern.
    public static func parse(_ data: [UInt8], file: String, semantics: IgnoreSemantics = .buildkit) throws -> DockerIgnore {
        var patterns: [Pattern] = []
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
        if let first = lines.first, first.starts(with: [0xEF, 0xBB, 0xBF]) { lines[0] = Array(first.dropFirst(3)) }
        for (index, rawLine) in lines.enumerated() {
            var raw = rawLine
            if raw.last == UInt8(ascii: "\r") { raw.removeLast() }  // bufio.ScanLines drops a trailing CR
            let lineNo = index + 1
            if raw.first == UInt8(ascii: "#") { continue }
            var text = String(decoding: raw, as: UTF8.self).trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            var exclusion = false
            if text.hasPrefix("!") {
                exclusion = true
                text = String(text.dropFirst()).trimmingCharacters(in: .whitespaces)
            }
            if !text.isEmpty {
                text = goClean(text)
                if text.count > 1, text.hasPrefix("/") { text.removeFirst() }
            }
            if exclusion && text.isEmpty {
                throw ImprintError.badInput("\(file):\(lineNo): illegal exclusion pattern: \"!\"")
            }
            // patternmatcher.New cleans again after re-attaching the "!"; cleaning is idempotent here.
            if let reason = validateGoMatchSyntax(text) {
                throw ImprintError.badInput("\(file):\(lineNo): invalid pattern \"\(String(decoding: raw, as: UTF8.self))\": \(reason)")
            }
            let matcher: PatternMatcher
            do {
                matcher = try PatternMatcher(text, semantics: semantics)
            } catch let error as ImprintError {
                throw ImprintError.badInput("\(file):\(lineNo): invalid pattern \"\(text)\": \(error.message)")
            }
            patterns.append(Pattern(text: text, exclusion: exclusion, line: lineNo, matcher: matcher))
        }
        return DockerIgnore(patterns: patterns, semantics: semantics)
    }

    /// The per-pattern results for a directory, handed to its children (patternmatcher's `MatchInfo`).
    public typealias MatchInfo = [Bool]

    /// Whether `path` (slash-separated, relative to the context) is excluded, given its parent's match info.
    public func matches(_ path: Bytes, parent: MatchInfo?) -> (excluded: Bool, info: MatchInfo) {
        if patterns.isEmpty { return (false, []) }
        let scalars = PatternMatcher.scalars(path)
        var matched = false
        var info = [Bool](repeating: false, count: patterns.count)
        for (i, pattern) in patterns.enumerated() {
            var match = parent?[i] ?? false
            if !match {
                if pattern.exclusion != matched { continue }
                match = pattern.matcher.matches(scalars)
                if !match, parent == nil {
                    // No parent information: test every ancestor, as MatchesOrParentMatches does.
                    var prefix: [UInt32] = []
                    let comps = scalars.split(separator: 0x2F, omittingEmptySubsequences: false)
                    for comp in comps.dropLast() {
                        if !prefix.isEmpty { prefix.append(0x2F) }
                        prefix.append(contentsOf: comp)
                        if pattern.matcher.matches(prefix) { match = true; break }
                    }
                }
            }
            info[i] = match
            if match { matched = !pattern.exclusion }
        }
        return (matched, info)
    }

    /// Whether the walk must enter an excluded directory because an exception may re-include something below it.
    public func mustDescend(intoExcluded dir: Bytes) -> Bool {
        guard hasExceptions else { return false }
        if semantics == .buildkit && !onlyPrefixExceptions { return true }
        let dirSlash = dir.lossyString + "/"
        for p in patterns where p.exclusion {
            let text = semantics == .buildkit ? DockerIgnore.trimTrailingGlob(p.text) : p.text
            if (text + "/").hasPrefix(dirSlash) { return true }
        }
        return false
    }

    static func trimTrailingGlob(_ s: String) -> String {
        var t = s
        if t.hasSuffix("/**") { t.removeLast(3) }
        if t.hasSuffix("/*") { t.removeLast(2) }
        return t
    }

    /// Go's `filepath.Clean` for slash-separated paths.
    static func goClean(_ path: String) -> String {
        if path.isEmpty { return "." }
        let rooted = path.hasPrefix("/")
        var out: [Substring] = []
        for comp in path.split(separator: "/", omittingEmptySubsequences: true) {
            if comp == "." { continue }
            if comp == ".." {
                if let last = out.last, last != ".." { out.removeLast() } else if !rooted { out.append(comp) }
                continue
            }
            out.append(comp)
        }
        let joined = out.joined(separator: "/")
        if rooted { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }

    /// Returns the reason `filepath.Match(pattern, ".")` would fail with ErrBadPattern, or nil.
    static func validateGoMatchSyntax(_ pattern: String) -> String? {
        let s = Array(pattern.unicodeScalars)
        var i = 0
        func esc() -> Bool {  // reads one (possibly escaped) class character; false when malformed
            guard i < s.count else { return false }
            if s[i] == "-" || s[i] == "]" { return false }
            if s[i] == "\\" { i += 1; guard i < s.count else { return false } }
            i += 1
            return true
        }
        while i < s.count {
            switch s[i] {
            case "\\":
                i += 1
                if i >= s.count { return "trailing backslash" }
                i += 1
            case "[":
                i += 1
                if i < s.count, s[i] == "^" { i += 1 }
                var first = true
                while true {
                    if i < s.count, s[i] == "]", !first { i += 1; break }
                    first = false
                    guard esc() else { return "malformed character class" }
                    if i < s.count, s[i] == "-" {
                        i += 1
                        guard esc() else { return "malformed character class range" }
                    }
                    if i >= s.count { return "unterminated character class" }
                }
            default:
                i += 1
            }
        }
        return nil
    }
}
