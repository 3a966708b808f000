import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a path is in or out of the build context (`imprint why`), decided exactly as the walk decides it: each
/// ancestor directory in turn (an excluded directory is entered only when an exception could re-include something
/// below it), then the path itself with its parent's match results, then the sender's second check when it opens a
/// file.
package struct ContextExplanation: Sendable {
    package enum Verdict: String, Sendable {
        /// Sent to the builder.
        case included
        /// Sent, but with empty content (the sender's open-time check excludes it).
        case sentEmpty = "sent-empty"
        /// Excluded itself, but the walk enters it (an exception may re-include something below) and sends it as the
        /// parent of what is re-included.
        case sentAsParent = "sent-as-parent"
        /// Excluded itself; the walk still enters it, and it would be sent only as the parent of something
        /// re-included, which nothing below is (or the directory is not on disk to look).
        case excludedWalked = "excluded-walked"
        /// Not sent.
        case excluded
        /// Not sent because an ancestor directory is excluded and never entered.
        case excludedByParent = "excluded-by-parent"
    }

    package struct Rule: Sendable {
        package var file: String
        package var line: Int
        package var pattern: String
        /// A `!pattern` (re-includes).
        package var exception: Bool

        package init(file: String, line: Int, pattern: String, exception: Bool) {
            self.file = file; self.line = line; self.pattern = pattern; self.exception = exception
        }

        /// A pattern of `file`; line 0 is an exception the docker CLI adds itself (`TrimBuildFilesFromExcludes`).
        package init(_ p: DockerIgnore.Pattern, file: String) {
            self.init(file: p.line == 0 ? "the docker CLI" : file, line: p.line, pattern: (p.exclusion ? "!" : "") + p.text, exception: p.exclusion)
        }
    }

    package var path: String
    package var isDirectory: Bool
    /// The entry's type as the builder sends it (a socket: an empty file for BuildKit), nil when it is not on disk.
    package var type: EntryType?
    package var verdict: Verdict
    /// The rule that decided (nil: no pattern matched, the default is to send).
    package var decidedBy: Rule?
    /// For `excludedByParent`: the ancestor that was not entered.
    package var blockedAt: String?
    /// Exceptions (`!pattern`) that re-include this path or something below it, for excluded directories the walk
    /// enters, or that would re-include the path were its directory entered.
    package var reincludedBy: [Rule]
    /// For a directory: whether the walk enters it.
    package var descends: Bool?
    /// For `sentAsParent`: the first path below that is sent.
    package var sentBelow: String?
    /// What the rules do not say: a socket, which BuildKit sends empty and the legacy builder skips.
    package var note: String?

    /// Sent to the builder (with content, empty, or as the parent directory of something re-included).
    package var sent: Bool { verdict == .included || verdict == .sentEmpty || verdict == .sentAsParent }

    package var summary: String {
        func rule(_ r: Rule) -> String { r.line == 0 ? "\(r.file)'s `\(r.pattern)`" : "\(r.file):\(r.line) `\(r.pattern)`" }
        if let note { return note }
        switch verdict {
        case .included:
            if let r = decidedBy { return "included: re-included by \(rule(r))" }
            return "included: no pattern matches it"
        case .sentEmpty:
            return "included, but sent empty: the walk lists it, yet \(decidedBy.map(rule) ?? "a pattern") excludes it when the sender opens it (BuildKit's MatchesOrParentMatches)"
        case .sentAsParent:
            return "sent as the parent of \(sentBelow ?? "what is re-included"): excluded by \(decidedBy.map(rule) ?? "a pattern"), but the walk enters it because \(reincludedBy.map(rule).joined(separator: ", ")) may re-include something below, and something is"
        case .excludedWalked:
            return "excluded by \(decidedBy.map(rule) ?? "a pattern"); the walk still enters it because \(reincludedBy.map(rule).joined(separator: ", ")) may re-include something below, but nothing below is sent"
        case .excluded:
            var s = "excluded by \(decidedBy.map(rule) ?? "a pattern")"
            if isDirectory { s += "; the walk does not enter it" }
            return s
        case .excludedByParent:
            return "excluded: its directory \(blockedAt ?? "?") is excluded by \(decidedBy.map(rule) ?? "a pattern") and never entered"
        }
    }
}

package enum ContextExplainer {
    /// Explains `path` (relative to the context) under `ignore`; `isDirectory` says what the path is.
    /// - Throws: `badInput` when a pattern that must be evaluated is invalid.
    package static func explain(_ path: String, isDirectory: Bool, ignore: DockerIgnore, file: String = ".dockerignore") throws -> ContextExplanation {
        try explain(GoText.clean(Array(path.utf8)), isDirectory: isDirectory, ignore: ignore, file: file)
    }

    /// `explain` for a context-relative path given as bytes (names need not be UTF-8). With `context`, the path is
    /// looked up on disk as the walk meets it: its type, a socket (BuildKit sends it empty, the legacy builder skips
    /// it), and for an excluded directory the walk enters, whether something below is sent.
    package static func explain(_ rel: Bytes, isDirectory: Bool, ignore: DockerIgnore, file: String = ".dockerignore",
                               context: String? = nil) throws -> ContextExplanation {
        // The legacy builder with a pattern that fails: its walk ends there, and nothing after is sent.
        if let context, LegacyContext.applies(ignore), let cut = try ContextListing.list(context: context, ignore: ignore, ignoreFileName: file).cut,
           !LegacyContext.precedes(rel, cut) {
            var st = stat()
            let abs = Array(context.utf8) + [0x2F] + rel
            let type = ContextListing.withCString(abs, { lstat($0, &st) }) == 0 ? EntryType(mode: st.st_mode) : nil
            return ContextExplanation(path: rel.lossyString, isDirectory: isDirectory, type: type, verdict: .excluded, decidedBy: nil, blockedAt: nil,
                                      reincludedBy: [], descends: nil,
                                      note: "not sent: the legacy builder's walk ends at \(cut.lossyString), where a pattern of the ignore file fails (it logs the error and sends what it has)")
        }
        var out = try explainRules(rel, isDirectory: isDirectory, ignore: ignore, file: file)
        guard let context else { return out }
        var st = stat()
        let abs = Array(context.utf8) + (out.path == "." ? [] : [0x2F] + rel)
        guard ContextListing.withCString(abs, { lstat($0, &st) }) == 0 else { return out }
        let type = EntryType(mode: st.st_mode)
        out.type = type
        if type == .socket && out.sent {
            if !ignore.semantics.sendsSocketsEmpty {
                out.verdict = .excluded
                out.note = "not sent: \(ignore.semantics.builderName) leaves sockets out"
            } else {
                out.type = .file
                out.verdict = .sentEmpty
                out.note = "sent as an empty file: BuildKit sends a socket as a regular file it cannot read"
            }
        }
        if out.verdict == .excludedWalked, type == .directory,
           let below = try ContextListing.firstSent(below: abs, relative: rel, ignore: ignore, info: ignore.decide(rel, parent: parentInfo(rel, ignore)).info) {
            out.verdict = .sentAsParent
            out.sentBelow = below.lossyString
        }
        return out
    }

    /// The match results of `rel`'s parent directory, as the walk carries them down.
    package static func parentInfo(_ rel: Bytes, _ ignore: DockerIgnore) throws -> DockerIgnore.MatchInfo? {
        var parent: DockerIgnore.MatchInfo?
        for ancestor in DockerIgnore.ancestors(of: rel) { parent = try ignore.decide(ancestor, parent: parent).info }
        return parent
    }

    package static func explainRules(_ rel: Bytes, isDirectory: Bool, ignore: DockerIgnore, file: String) throws -> ContextExplanation {
        func rule(_ i: Int?) -> ContextExplanation.Rule? {
            guard let i, i < ignore.patterns.count else { return nil }
            let p = ignore.patterns[i]
            return .init(p, file: file)
        }
        let exceptions = ignore.patterns.filter(\.exclusion).map {
            ContextExplanation.Rule($0, file: file)
        }
        var out = ContextExplanation(path: rel.lossyString, isDirectory: isDirectory, type: nil, verdict: .included, decidedBy: nil, blockedAt: nil,
                                     reincludedBy: [], descends: nil)
        if rel.isEmpty || rel == [0x2E] {
            out.path = "."
            out.descends = true
            return out
        }
        // Each ancestor, as the walk meets it.
        var parent: DockerIgnore.MatchInfo?
        for ancestor in DockerIgnore.ancestors(of: rel) {
            let d = try ignore.decide(ancestor, parent: parent)
            if d.excluded && !ignore.mustDescend(intoExcluded: ancestor) {
                out.verdict = .excludedByParent
                out.blockedAt = ancestor.lossyString
                out.decidedBy = rule(d.decidedBy)
                out.reincludedBy = exceptions
                return out
            }
            parent = d.info
        }
        let d = try ignore.decide(rel, parent: parent)
        out.decidedBy = rule(d.decidedBy)
        if d.excluded {
            if isDirectory && ignore.mustDescend(intoExcluded: rel) {
                out.verdict = .excludedWalked
                out.descends = true
                out.reincludedBy = exceptions
            } else {
                out.verdict = .excluded
                out.descends = isDirectory ? false : nil
                out.reincludedBy = exceptions
            }
            return out
        }
        if isDirectory {
            out.descends = true
        } else if ignore.semantics.checksAgainOnOpen && ignore.hasExceptions, try ignore.excludedOnOpen(rel) {
            out.verdict = .sentEmpty
        }
        return out
    }

    /// Loads the context's ignore file as `fingerprint` would (`Dockerfile.dockerignore` beside the Dockerfile
    /// first), then explains each path, looking at the disk to know which are directories.
    package static func explain(_ paths: [String], context: String, dockerfile: String? = nil, ignoreFile: String? = nil,
                               semantics: IgnoreSemantics = .buildkit) throws -> [ContextExplanation] {
        try explain(targets(paths, context: context), context: context, dockerfile: dockerfile, ignoreFile: ignoreFile, semantics: semantics)
    }

    /// A path to explain: context-relative, and whether it is a directory on disk.
    package struct Target: Sendable {
        package var path: String
        package var isDirectory: Bool
    }

    /// The context's own answer for the targets: each explained, then looked up on disk as the walk meets it.
    package static func explainOnDisk(_ targets: [Target], context: String, ignore: DockerIgnore, file: String) throws -> [ContextExplanation] {
        try targets.map { try explain(GoText.clean(Array($0.path.utf8)), isDirectory: $0.isDirectory, ignore: ignore, file: file, context: context) }
    }

    /// The command line's paths as context-relative targets: a path relative to the working directory that exists
    /// and lies inside the context becomes its context-relative form; any other is taken as context-relative.
    /// Resolved once, for as many explanations (both builders' semantics) as needed.
    package static func targets(_ paths: [String], context: String) -> [Target] {
        var resolver = ContextPathResolver(context: context)
        return paths.map { p in
            var st = stat()
            let rel = resolver.relative(p)
            let full = (context as NSString).appendingPathComponent(rel)
            return Target(path: rel, isDirectory: lstat(full, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR)
        }
    }

    /// Explains `targets` under the context's ignore file read with `semantics`.
    package static func explain(_ targets: [Target], context: String, dockerfile: String? = nil, ignoreFile: String? = nil,
                               semantics: IgnoreSemantics = .buildkit) throws -> [ContextExplanation] {
        let (ignore, name) = try IgnoreFileLocator(context: context, dockerfile: dockerfile, ignoreFile: ignoreFile, semantics: semantics).load()
        return try explainOnDisk(targets, context: context, ignore: ignore, file: name ?? ".dockerignore")
    }
}

/// Where command-line paths lie relative to a build context: the context's and the working directory's real paths
/// resolved once, and each parent directory's once (symbolic links in a path's directories are followed, as the
/// shell user meant them; a directory that does not exist yet is resolved as far as it exists).
package struct ContextPathResolver {
    private let context: String
    private let cwd: String
    private var parents: [String: String] = [:]

    package init(context: String) {
        let cwd = FileManager.default.currentDirectoryPath
        self.cwd = cwd
        self.context = ContextPathResolver.resolve(ContextPathResolver.absolute(context, cwd: cwd))
    }

    /// `path` made absolute against `cwd` and cleaned lexically (`.`, `..`, repeated `/`).
    private static func absolute(_ path: String, cwd: String) -> String {
        String(decoding: GoText.clean(Array((path.hasPrefix("/") ? path : cwd + "/" + path).utf8)), as: UTF8.self)
    }

    /// The real path of `path`, or of its longest existing prefix with the rest appended.
    private static func resolve(_ path: String) -> String {
        if let r = realpath(path, nil) {
            defer { free(r) }
            return String(cString: r)
        }
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return path }
        let head = resolve(String(path[..<slash]))
        return (head == "/" ? "" : head) + path[slash...]
    }

    /// The context-relative form of `path` when it lies inside the context (it need not exist), else nil.
    package mutating func inside(_ path: String) -> String? {
        let abs = ContextPathResolver.absolute(path, cwd: cwd)
        guard let slash = abs.lastIndex(of: "/") else { return nil }
        let dir = slash == abs.startIndex ? "/" : String(abs[..<slash])
        let parent: String
        if let cached = parents[dir] { parent = cached } else { parent = ContextPathResolver.resolve(dir); parents[dir] = parent }
        let full = (parent == "/" ? "" : parent) + abs[slash...]
        return full.hasPrefix(context + "/") ? String(full.dropFirst(context.count + 1)) : nil
    }

    /// `why`'s reading of a command-line path: a path (relative to the working directory) that exists and lies
    /// inside the context becomes its context-relative form; any other is taken as context-relative already.
    package mutating func relative(_ path: String) -> String {
        guard access(path, F_OK) == 0 else { return path }
        return inside(path) ?? path
    }
}

extension ContextExplainer {
    /// `imprint why --format json` (schemas/why.schema.json).
    package static func json(_ list: [ContextExplanation], semantics: IgnoreSemantics, other: [(ContextExplanation, IgnoreSemantics)?],
                            otherError: (IgnoreSemantics, String)? = nil) -> [UInt8] {
        func rule(_ w: inout JSONWriter, _ k: String, _ r: ContextExplanation.Rule) {
            w.beginObject(k); w.string("file", r.file); w.int("line", r.line); w.string("pattern", r.pattern); w.bool("exception", r.exception); w.endObject()
        }
        var w = JSONWriter(pretty: true)
        w.beginObject()
        w.string("semantics", semantics.rawValue)
        if let (sem, message) = otherError {
            w.beginObject("otherBuilderError"); w.string("semantics", sem.rawValue); w.string("error", message); w.endObject()
        }
        w.beginArray("paths")
        for (i, e) in list.enumerated() {
            w.beginObject()
            w.string("path", e.path)
            if let t = e.type { w.string("type", t.rawValue) } else { w.null("type") }
            w.string("verdict", e.verdict.rawValue)
            w.bool("sent", e.sent)
            if let r = e.decidedBy { rule(&w, "decidedBy", r) } else { w.null("decidedBy") }
            if let b = e.blockedAt { w.string("blockedAt", b) }
            if let d = e.descends { w.bool("descends", d) }
            if let b = e.sentBelow { w.string("sentBelow", b) }
            w.beginArray("reincludedBy")
            for r in e.reincludedBy { w.compact(nil) { o in o.beginObject(); o.string("file", r.file); o.int("line", r.line); o.string("pattern", r.pattern); o.endObject() } }
            w.endArray()
            w.string("explanation", e.summary)
            if i < other.count, let (o, sem) = other[i] {
                w.beginObject("otherBuilder"); w.string("semantics", sem.rawValue); w.string("verdict", o.verdict.rawValue); w.string("explanation", o.summary); w.endObject()
            }
            w.endObject()
        }
        w.endArray()
        w.endObject()
        w.end()
        return w.bytes
    }
}

/// `imprint why`: each path explained with the semantics asked for and with the other builder's, so a path the two
/// builders treat differently is named.
package struct WhyReport: Sendable, ExitStatusReporting {
    package var semantics: IgnoreSemantics
    package var explanations: [ContextExplanation]
    /// The other builder's semantics and its explanation of each path (empty when it refuses the ignore file).
    package var other: IgnoreSemantics
    package var otherExplanations: [ContextExplanation]
    /// Why the other builder refuses the ignore file (e.g. a pattern the legacy builder's regexp cannot compile).
    package var otherError: String?

    /// Explains `paths` (command-line paths, see `ContextExplainer.targets`) under both builders' readings of the
    /// context's ignore file.
    package init(paths: [String], context: String, dockerfile: String? = nil, ignoreFile: String? = nil,
                semantics: IgnoreSemantics = .buildkit) throws {
        let targets = ContextExplainer.targets(paths, context: context)
        self.semantics = semantics
        other = semantics.comparedWith
        explanations = try ContextExplainer.explain(targets, context: context, dockerfile: dockerfile, ignoreFile: ignoreFile, semantics: semantics)
        // The other builder is a comparison: its refusal is reported, never the answer.
        do {
            otherExplanations = try ContextExplainer.explain(targets, context: context, dockerfile: dockerfile, ignoreFile: ignoreFile, semantics: other)
        } catch let e as ImprintError {
            otherExplanations = []
            otherError = e.message
        }
    }

    /// True when the builder sends every path asked about.
    package var allSent: Bool { explanations.allSatisfy(\.sent) }
    /// 1 when a path asked about is not sent.
    package var exitStatus: Int32 { Self.status(ok: allSent) }

    /// One line per path, and a second one where the other builder decides otherwise.
    package func text() -> String {
        var out = ""
        let otherName = other.builderName
        for (i, a) in explanations.enumerated() {
            out += "\(a.path)\(a.isDirectory ? "/" : ""): \(a.summary)\n"
            if i < otherExplanations.count, a.verdict != otherExplanations[i].verdict {
                out += "  \(otherName) decides otherwise: \(otherExplanations[i].summary)\n"
            }
        }
        if let otherError { out += "(\(otherName) refuses this ignore file: \(otherError))\n" }
        return out
    }

    /// `--format json` (schemas/why.schema.json).
    package func json() -> [UInt8] {
        ContextExplainer.json(explanations, semantics: semantics,
                              other: zip(explanations, otherExplanations).map { $0.verdict == $1.verdict ? nil : ($1, other) },
                              otherError: otherError.map { (other, $0) })
    }
}

/// The context-relative form of `path` when it lies inside `context` (it need not exist yet), else nil.
package func relativeInside(context: String, path: String) -> String? {
    var resolver = ContextPathResolver(context: context)
    return resolver.inside(path)
}
