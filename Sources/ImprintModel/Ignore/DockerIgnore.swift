/// Which builder's `.dockerignore` behaviour to reproduce.
package enum IgnoreSemantics: String, Sendable, CaseIterable {
    /// Current BuildKit (moby/patternmatcher ≥ 0.5, tonistiigi/fsutil): regex metacharacters are literal, a
    /// wildcard exception makes the walk enter excluded directories, `<Dockerfile>.dockerignore` wins, a socket is
    /// sent as an empty file and the sender checks each file again when it opens it.
    case buildkit
    /// Docker's legacy builder as the current docker CLI sends its context (`DOCKER_BUILDKIT=0`): patterns compiled
    /// by the same moby/patternmatcher (`( ) + | { }` literal), the walk of docker/docker's `TarWithOptions` (an
    /// excluded directory is entered only when an exception's text starts with its path), the context's
    /// `.dockerignore` only, `.dockerignore` and the Dockerfile re-included (`TrimBuildFilesFromExcludes`), sockets
    /// left out.
    case classic
    /// buildah and `podman build` (1.28): containers/storage's fileutils escapes only `.` and `$`, so `( ) + | { }`
    /// keep their regex meaning; `.containerignore` before `.dockerignore`; the legacy walk; sockets left out.
    case buildah

    /// Whether `( ) + | { }` are literal characters (patternmatcher), not regexp syntax (the older fileutils).
    package var literalMetacharacters: Bool { self != .buildah }
    /// BuildKit sends a socket as an empty regular file; the others leave it out.
    package var sendsSocketsEmpty: Bool { self == .buildkit }
    /// BuildKit's sender checks a listed file again when it opens it (`MatchesOrParentMatches`).
    package var checksAgainOnOpen: Bool { self == .buildkit }
    /// The docker CLI adds `!.dockerignore` and `!<Dockerfile>` when the ignore file excludes them.
    package var reincludesBuildFiles: Bool { self == .classic }
    /// The legacy builder's tar has no entry for an excluded directory it enters: the daemon creates it, mode
    /// 0755, when it unpacks what is below. BuildKit sends it with its own mode.
    package var sendsEnteredDirectories: Bool { self != .classic }
    /// The builder, for messages.
    package var builderName: String {
        switch self {
        case .buildkit: return "BuildKit"
        case .classic: return "the legacy builder"
        case .buildah: return "buildah"
        }
    }
    /// The builder whose answer `why` gives beside this one's.
    package var comparedWith: IgnoreSemantics { self == .buildkit ? .classic : .buildkit }
}

/// A parsed `.dockerignore` file.
///
/// Reading follows BuildKit's `ignorefile.ReadAll` then `patternmatcher.New` byte for byte (Go's `bufio.Scanner`
/// lines, `strings.TrimSpace`, `filepath.Clean` twice, `!` exceptions, `filepath.Match`'s syntax check); matching
/// follows `MatchesUsingParentResults` (what the walk decides) and `MatchesOrParentMatches` (what the sender then
/// agrees to open). See `PatternMatcher` for how one pattern matches.
package struct DockerIgnore: Sendable {
    package struct Pattern: Sendable {
        /// The cleaned pattern, without the leading `!` (bytes: a pattern need not be valid UTF-8).
        package let bytes: Bytes
        package let exclusion: Bool
        /// 1-based line in the ignore file; 0 for an exception the docker CLI adds (`TrimBuildFilesFromExcludes`).
        package let line: Int
        package let matcher: PatternMatcher

        /// The pattern as text (invalid UTF-8 replaced), for messages.
        package var text: String { bytes.lossyString }
    }

    package let patterns: [Pattern]
    package let semantics: IgnoreSemantics
    /// True when at least one pattern is an exception (`!…`).
    package let hasExceptions: Bool
    /// fsutil's `onlyPrefixExcludeExceptions`: no exception holds a pattern character before a trailing `/**` or
    /// `/*`, so an excluded directory is entered only when an exception starts with its path.
    package let onlyPrefixExceptions: Bool

    package static let empty = DockerIgnore(patterns: [], semantics: .buildkit)

    package init(patterns: [Pattern], semantics: IgnoreSemantics) {
        self.patterns = patterns
        self.semantics = semantics
        hasExceptions = patterns.contains { $0.exclusion }
        onlyPrefixExceptions = !patterns.contains { p in
            p.exclusion && DockerIgnore.trimTrailingGlob(p.bytes).contains { "*[]?^\\".utf8.contains($0) }
        }
    }

    /// An ignore file with no patterns, read with `semantics`.
    package static func none(_ semantics: IgnoreSemantics) -> DockerIgnore { DockerIgnore(patterns: [], semantics: semantics) }

    /// Parses the bytes of an ignore file.
    /// - Throws: `ImprintError.badInput` naming `file`, the line and the reason where BuildKit refuses the file: a
    ///   line of 64 KiB or more, a lone `!` or an exception of the whole context, a pattern `filepath.Match`
    ///   rejects.
    package static func parse(_ data: [UInt8], file: String, semantics: IgnoreSemantics = .buildkit) throws -> DockerIgnore {
        let lines: [Bytes]
        switch GoText.scanLines(data) {
        case .success(let l): lines = l
        case .failure(let e):
            throw ImprintError.badInput("\(file):\(e.line): line is longer than \(GoText.maxLineLength) bytes (bufio.Scanner: token too long)")
        }
        var patterns: [Pattern] = []
        for (index, rawLine) in lines.enumerated() {
            var line = rawLine
            if index == 0, line.starts(with: [0xEF, 0xBB, 0xBF]) { line.removeFirst(3) }
            let lineNo = index + 1
            // ignorefile.ReadAll
            if line.first == UInt8(ascii: "#") { continue }
            var p = GoText.trimSpace(line)
            if p.isEmpty { continue }
            let invert = p[0] == UInt8(ascii: "!")
            if invert { p = GoText.trimSpace(Array(p.dropFirst())) }
            if !p.isEmpty {
                p = GoText.clean(p)
                if p.count > 1 && p[0] == GoText.slash { p.removeFirst() }
            }
            if invert { p.insert(UInt8(ascii: "!"), at: 0) }
            // patternmatcher.New
            p = GoText.trimSpace(p)
            if p.isEmpty { continue }
            p = GoText.clean(p)
            var exclusion = false
            if p[0] == UInt8(ascii: "!") {
                if p.count == 1 {
                    throw ImprintError.badInput("\(file):\(lineNo): illegal exclusion pattern: \"!\"\(invert && rawLine.count > 1 ? " (an exception of the whole context)" : "")")
                }
                exclusion = true
                p.removeFirst()
            }
            if GoText.matchReportsBadPattern(p) {
                throw ImprintError.badInput("\(file):\(lineNo): invalid pattern \"\(rawLine.lossyString)\": syntax error in pattern")
            }
            patterns.append(Pattern(bytes: p, exclusion: exclusion, line: lineNo, matcher: PatternMatcher(p, semantics: semantics)))
        }
        return DockerIgnore(patterns: patterns, semantics: semantics)
    }

    /// `self`, after checking that every pattern's expression compiles (for globs given on the command line, where
    /// an invalid one should be an error at once rather than when a path first reaches it).
    package func checked() throws -> DockerIgnore {
        for p in patterns {
            if let e = p.matcher.compileError {
                throw ImprintError.badInput("invalid pattern \"\(p.text)\": \(e.message)")
            }
        }
        return self
    }

    /// The per-pattern results for a directory, handed to its children (patternmatcher's `MatchInfo`).
    package typealias MatchInfo = [Bool]

    /// The outcome of matching one path.
    package struct Decision: Sendable {
        package var excluded: Bool
        /// Per-pattern results to hand to the path's children.
        package var info: MatchInfo
        /// The index of the last pattern that applied (the one that decided), or nil when none did.
        package var decidedBy: Int?
    }

    /// `MatchesUsingParentResults`: whether `path` (slash-separated, relative to the context) is excluded, given its
    /// parent directory's match info (nil for an entry at the top, or when the parent was not matched: then every
    /// ancestor is tested, as `MatchesOrParentMatches` does).
    /// - Throws: `badInput` naming the pattern when matching reaches a pattern whose expression is invalid.
    package func decide(_ path: Bytes, parent: MatchInfo?) throws -> Decision {
        if patterns.isEmpty { return Decision(excluded: false, info: [], decidedBy: nil) }
        var matched = false
        var decidedBy: Int?
        var info = [Bool](repeating: false, count: patterns.count)
        var ancestors: [Bytes]?
        for (i, pattern) in patterns.enumerated() {
            var match = parent?[i] ?? false
            if !match {
                if pattern.exclusion != matched { continue }
                match = try evaluate(pattern, path)
                if !match, parent == nil {
                    if ancestors == nil { ancestors = DockerIgnore.ancestors(of: path) }
                    for a in ancestors! where try evaluate(pattern, a) { match = true; break }
                }
            }
            info[i] = match
            if match { matched = !pattern.exclusion; decidedBy = i }
        }
        return Decision(excluded: matched, info: info, decidedBy: decidedBy)
    }

    /// `decide` without the decision details.
    package func matches(_ path: Bytes, parent: MatchInfo?) throws -> (excluded: Bool, info: MatchInfo) {
        let d = try decide(path, parent: parent)
        return (d.excluded, d.info)
    }

    /// `MatchesOrParentMatches`: what the sender checks again when it opens a file it listed. Where it disagrees
    /// with the walk's decision, BuildKit sends the file with empty content.
    package func excludedOnOpen(_ path: Bytes) throws -> Bool {
        var matched = false
        var ancestors: [Bytes]?
        for pattern in patterns {
            if pattern.exclusion != matched { continue }
            var match = try evaluate(pattern, path)
            if !match {
                if ancestors == nil { ancestors = DockerIgnore.ancestors(of: path) }
                for a in ancestors! where try evaluate(pattern, a) { match = true; break }
            }
            if match { matched = !pattern.exclusion }
        }
        return matched
    }

    private func evaluate(_ pattern: Pattern, _ path: Bytes) throws -> Bool {
        do {
            return try pattern.matcher.matches(path)
        } catch let e as ImprintError {
            throw ImprintError.badInput("ignore pattern \"\(pattern.text)\" (line \(pattern.line)) is invalid: \(e.message) (syntax error in pattern)")
        }
    }

    /// `a`, `a/b` for `a/b/c`: every proper ancestor, shortest first (none for a top-level path).
    package static func ancestors(of path: Bytes) -> [Bytes] {
        var out: [Bytes] = []
        for (i, c) in path.enumerated() where c == GoText.slash { out.append(Array(path[..<i])) }
        return out
    }

    /// The docker CLI's `TrimBuildFilesFromExcludes` (legacy builder): when the patterns exclude `.dockerignore`,
    /// `!.dockerignore` is appended; then, when they exclude the Dockerfile (its path relative to the context),
    /// `!<Dockerfile>`. The CLI ignores a pattern error here (the walk reports it).
    package func reincludingBuildFiles(dockerfile: String) -> DockerIgnore {
        guard semantics.reincludesBuildFiles, !patterns.isEmpty else { return self }
        var out = self
        for name in [".dockerignore", dockerfile] {
            let path = GoText.clean(Array(name.utf8))
            guard path != [0x2E], (try? out.excludedOnOpen(path)) == true else { continue }
            out = DockerIgnore(patterns: out.patterns + [Pattern(bytes: path, exclusion: true, line: 0, matcher: PatternMatcher(path, semantics: semantics))],
                               semantics: semantics)
        }
        return out
    }

    /// Whether the walk must enter an excluded directory because an exception may re-include something below it.
    package func mustDescend(intoExcluded dir: Bytes) -> Bool {
        guard hasExceptions else { return false }
        if semantics == .buildkit && !onlyPrefixExceptions { return true }
        let dirSlash = dir + [GoText.slash]
        for p in patterns where p.exclusion {
            let text = semantics == .buildkit ? DockerIgnore.trimTrailingGlob(p.bytes) : p.bytes
            if (text + [GoText.slash]).starts(with: dirSlash) { return true }
        }
        return false
    }

    /// fsutil's `patternWithoutTrailingGlob`.
    package static func trimTrailingGlob(_ s: Bytes) -> Bytes {
        var t = s
        if t.count >= 3 && t.suffix(3).elementsEqual("/**".utf8) { t.removeLast(3) }
        if t.count >= 2 && t.suffix(2).elementsEqual("/*".utf8) { t.removeLast(2) }
        return t
    }

    /// Go's `filepath.Clean` for slash-separated paths.
    package static func goClean(_ path: String) -> String { GoText.clean(Array(path.utf8)).lossyString }
}
