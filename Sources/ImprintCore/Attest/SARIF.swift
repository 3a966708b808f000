import Foundation

/// SARIF 2.1.0 (OASIS) for code scanning and CI dashboards: `fingerprint` hygiene findings, `verify` findings and
/// `diff` changes as results of stable rules (`imprint/hygiene/<kind>`, `imprint/verify/<class>`,
/// `imprint/diff/<kind>`), each with help text. Every result has a location relative to the repository root
/// (`uriBaseId` `SRCROOT`, `SARIFPlacement`): its file, or the file it is about (the ignore file's line, the
/// Dockerfile, the manifest); and a `partialFingerprints` entry that stays the same across runs.
package enum SARIF {
    package static let schema = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

    struct Rule {
        var id: String
        var name: String
        var short: String
        var help: String
        var level: String
    }

    struct Result {
        var rule: String
        var level: String
        var message: String
        var location: SARIFPlacement.Location
        /// What the result is about, for its fingerprint (a path, a config field).
        var key: String
    }

    // MARK: Rules

    static func hygieneRule(_ k: HygieneFinding.Kind) -> Rule {
        let (short, help): (String, String)
        switch k {
        case .bytecode: (short, help) = ("Python bytecode in the build context", "Compiled .pyc files and __pycache__ directories ship stale code when their source changes; add `**/__pycache__` and `**/*.pyc` to .dockerignore.")
        case .vcs: (short, help) = ("Version-control metadata in the build context", "`.git` and the like leak history and credentials into the image; add them to .dockerignore.")
        case .secret: (short, help) = ("A likely secret in the build context", "Files such as .env, *.pem and id_rsa end up in the image for anyone who pulls it; exclude them and pass secrets at run time (or with BuildKit secret mounts).")
        case .nodeModules: (short, help) = ("node_modules in the build context", "A host node_modules overrides what the Dockerfile installs and bloats the context; exclude it.")
        case .largeFile: (short, help) = ("A very large file in the build context", "Large files slow every build and are often data or artifacts that do not belong in the image.")
        case .noIgnoreFile: (short, help) = ("No .dockerignore", "Without an ignore file every file in the context is sent to the builder: junk, secrets, bytecode.")
        case .socket: (short, help) = ("A socket in the build context", "BuildKit sends a socket as an empty file; the classic builder skips it.")
        case .sentEmpty: (short, help) = ("A file the builder sends empty", "The builder could not open this file and sends it as an empty file.")
        case .emptyContext: (short, help) = ("An empty build context", "Nothing is sent to the builder; the ignore file probably excludes everything.")
        case .ignorePattern: (short, help) = ("An ignore pattern that matches less than it seems", "Patterns like `__pycache__` match only at the context root; write `**/__pycache__`.")
        case .cacheStaleRisk: (short, help) = ("Content changed, metadata did not: a cached COPY may ship old bytes", "The file's bytes changed while its size, modification time and mode stayed the same (cp -p, rsync -a, tar -x, touch -r). BuildKit compares that metadata for local files and can reuse a cached layer with the old content: touch the file or build with --no-cache-filter.")
        }
        return Rule(id: "imprint/hygiene/\(k.rawValue)", name: "Hygiene" + k.rawValue.capitalized.replacingOccurrences(of: "-", with: ""),
                    short: short, help: help, level: k == .secret || k == .emptyContext || k == .cacheStaleRisk ? "error" : "warning")
    }

    static func verifyRule(_ c: VerifyFinding.Class) -> Rule {
        let (short, help): (String, String)
        switch c {
        case .modified: (short, help) = ("A file differs from the build context", "The deployed file's bytes are not the bytes that were built: a cached COPY layer, a stale image or an edit after deploy.")
        case .mode: (short, help) = ("A file's permissions differ", "The deployed mode bits are not those of the build context.")
        case .type: (short, help) = ("An entry changed type", "A file became a directory or a symlink (or the reverse).")
        case .symlinkTarget: (short, help) = ("A symlink points elsewhere", "The deployed symlink's target differs from the context's.")
        case .device: (short, help) = ("A device node differs", "Device numbers differ from the context's.")
        case .missing: (short, help) = ("A file of the build context is missing", "The deployed tree lacks a file the build context has.")
        case .extra: (short, help) = ("A file that is not in the build context", "The deployed tree has a file the context did not: old code left behind, or something added after the build.")
        case .extraAllowed: (short, help) = ("An extra file that is allowed", "An extra file matched --allow-extra.")
        case .digestMismatch: (short, help) = ("The manifest is not the expected one", "The target carries a manifest whose root digest is not the one CI recorded.")
        case .signature: (short, help) = ("The manifest's signature does not verify", "The manifest is not signed by the given key, or not for this digest.")
        case .bytecode: (short, help) = ("Python bytecode that would run instead of the source", "Stale or sourceless .pyc files run old code; rebuild without them.")
        case .process: (short, help) = ("A process runs code other than the deployed files", "A process started before the files changed, or runs a deleted or replaced executable or library: restart it.")
        case .container: (short, help) = ("The container is not the image that was deployed", "The engine reports a different image, or a mount hides the application directory.")
        case .runtime: (short, help) = ("A running Python process imported other code", "The probe reports modules whose bytes are not the deployed ones.")
        case .attestation: (short, help) = ("A required attestation is missing or does not verify", "The image lacks an attestation of the required type signed by the given key about this image.")
        case .served: (short, help) = ("A site serves other bytes than the build", "A cache, the origin or a service worker gives browsers an asset of another build, or the build's asset is missing: purge the cache or redeploy.")
        }
        return Rule(id: "imprint/verify/\(c.rawValue)", name: "Verify" + c.rawValue.capitalized.replacingOccurrences(of: "-", with: ""),
                    short: short, help: help, level: c == .extraAllowed ? "note" : "error")
    }

    static func diffRule(_ k: String) -> Rule {
        Rule(id: "imprint/diff/\(k)", name: "Diff" + k.capitalized.replacingOccurrences(of: "-", with: ""),
             short: "A difference between the two sides: \(k)",
             help: "`imprint diff` found a difference of kind \(k) between side A and side B.", level: "warning")
    }

    // MARK: Documents

    package static func fingerprint(_ m: Manifest, context: String, placement: SARIFPlacement? = nil) -> [UInt8] {
        var place = placement ?? SARIFPlacement(root: nil, context: context)
        // Results about the context as a whole sit on its Dockerfile, else its ignore file.
        place.about = [m.metadata.dockerfile?.path, m.metadata.ignoreFile].compactMap { $0 }.map(place.contextFile) + place.about
        let rules = HygieneFinding.Kind.allCases.map(hygieneRule)
        let results = m.findings.map { f -> Result in
            let rule = hygieneRule(f.kind)
            var location: SARIFPlacement.Location
            switch f.kind {
            case .ignorePattern:
                // About a line of the ignore file; the file it misses is the related location.
                location = place.file(m.metadata.ignoreFile.map(place.contextFile), line: f.line)
            case .noIgnoreFile, .emptyContext: location = place.about(nil)
            default: location = f.path.isEmpty || f.path == "." ? place.about(nil) : place.inContext(f.path)
            }
            location.related = f.kind == .ignorePattern ? [place.inContext(f.path)] : []
            return Result(rule: rule.id, level: rule.level, message: "\(f.path): \(f.message)", location: location, key: f.path)
        }
        return document(rules: rules, results: results, placement: place)
    }

    package static func verify(_ r: VerifyReport, placement: SARIFPlacement? = nil) -> [UInt8] {
        let place = placement ?? SARIFPlacement(root: nil, context: FileManager.default.currentDirectoryPath)
        let rules = VerifyFinding.Class.allCases.map(verifyRule)
        let results = r.findings.map { f -> Result in
            var path = f.path
            // Paths in the target's own terms (a process's file, a container path) are placed relative to the
            // context when they are below the context's destination.
            let at = r.at == "/" ? "" : r.at
            if path.hasPrefix("/"), !at.isEmpty, path.hasPrefix(at + "/") { path = String(path.dropFirst(at.count + 1)) }
            let location = path.isEmpty || path.hasPrefix("/") ? place.about(nil) : place.inContext(path)
            return Result(rule: verifyRule(f.findingClass).id, level: f.severity == .error ? "error" : f.severity == .warning ? "warning" : "note",
                          message: f.message.isEmpty ? "\(f.findingClass.rawValue): \(f.path)" : "\(f.path.isEmpty ? r.target : f.path): \(f.message)",
                          location: location, key: f.path + "\u{0}" + (f.detail ?? ""))
        }
        return document(rules: rules, results: results, placement: place)
    }

    package static func diff(_ r: DiffReport, placement: SARIFPlacement? = nil) -> [UInt8] {
        let place = placement ?? SARIFPlacement(root: nil, context: FileManager.default.currentDirectoryPath)
        var kinds = TreeChange.Kind.allCases.map(\.rawValue) + ["config", "bytecode", "manifest"]
        kinds = Array(Set(kinds)).sorted()
        let rules = kinds.map(diffRule)
        var results: [Result] = []
        for c in r.changes {
            let k = c.kind.rawValue
            let what = c.kind == .added ? "only in \(r.b.name)" : c.kind == .removed ? "only in \(r.a.name)" : "\(k) differs between \(r.a.name) and \(r.b.name)"
            let path = c.path.lossyString
            results.append(Result(rule: "imprint/diff/\(k)", level: "warning", message: "\(path): \(what)", location: place.inContext(path), key: path))
        }
        for c in r.config {
            results.append(Result(rule: "imprint/diff/config", level: "warning", message: "config \(c.field): \(c.a ?? "(none)") → \(c.b ?? "(none)")",
                                  location: place.about(nil), key: c.field))
        }
        for (side, f) in r.bytecodeDifferences {
            let path = f.path.lossyString
            results.append(Result(rule: "imprint/diff/bytecode", level: "warning", message: "[\(side.rawValue.uppercased())] \(path): \(f.kind.rawValue): \(f.detail)",
                                  location: place.inContext(path), key: side.rawValue + "\u{0}" + path + "\u{0}" + f.kind.rawValue))
        }
        return document(rules: rules, results: results, placement: place)
    }

    static func document(rules: [Rule], results: [Result], placement: SARIFPlacement) -> [UInt8] {
        var index: [String: Int] = [:]
        for (i, r) in rules.enumerated() { index[r.id] = i }
        var w = JSONWriter(pretty: true)
        w.beginObject()
        w.string("$schema", schema)
        w.string("version", "2.1.0")
        w.beginArray("runs")
        w.beginObject()
        w.beginObject("tool"); w.beginObject("driver")
        w.string("name", "imprint")
        w.string("version", Imprint.version)
        w.string("semanticVersion", Imprint.version)
        w.string("informationUri", "https://github.com/imprint/imprint")
        w.beginArray("rules")
        for r in rules {
            w.beginObject()
            w.string("id", r.id)
            w.string("name", r.name)
            w.beginObject("shortDescription"); w.string("text", r.short); w.endObject()
            w.beginObject("fullDescription"); w.string("text", r.help); w.endObject()
            w.beginObject("help"); w.string("text", r.help); w.endObject()
            w.beginObject("defaultConfiguration"); w.string("level", r.level); w.endObject()
            w.endObject()
        }
        w.endArray()
        w.endObject(); w.endObject()
        w.beginArray("invocations")
        w.beginObject()
        w.bool("executionSuccessful", true)
        w.beginArray("arguments"); for a in CommandLine.arguments.dropFirst() { w.string(nil, a) }; w.endArray()
        w.endObject()
        w.endArray()
        // Result paths are relative to the repository root: SRCROOT, the directory a code scanner checked out.
        w.beginObject("originalUriBaseIds")
        w.beginObject(SARIFPlacement.baseId); w.string("uri", "file://" + uriPath(placement.root.hasSuffix("/") ? placement.root : placement.root + "/")); w.endObject()
        w.endObject()
        w.beginArray("results")
        for r in results {
            w.beginObject()
            w.string("ruleId", r.rule)
            if let i = index[r.rule] { w.int("ruleIndex", i) }
            w.string("level", r.level)
            w.beginObject("message"); w.string("text", r.message); w.endObject()
            w.beginArray("locations"); location(r.location, into: &w); w.endArray()
            if !r.location.related.isEmpty {
                w.beginArray("relatedLocations")
                for (i, l) in r.location.related.enumerated() { location(l, id: i + 1, into: &w) }
                w.endArray()
            }
            // Stable across runs and line moves: the rule, where it is, and what it is about (never a digest).
            w.beginObject("partialFingerprints")
            w.string("imprintFingerprint/v1", SHA256.hash(Array("\(r.rule)\u{0}\(r.location.uri)\u{0}\(r.key)".utf8)).hex)
            w.endObject()
            w.endObject()
        }
        w.endArray()
        w.endObject()
        w.endArray()
        w.endObject()
        w.end()
        return w.bytes
    }

    static func location(_ l: SARIFPlacement.Location, id: Int? = nil, into w: inout JSONWriter) {
        w.beginObject()
        if let id { w.int("id", id) }
        w.beginObject("physicalLocation")
        w.beginObject("artifactLocation")
        w.string("uri", l.uri)
        if l.relative { w.string("uriBaseId", SARIFPlacement.baseId) }
        w.endObject()
        if let line = l.line { w.beginObject("region"); w.int("startLine", line); w.endObject() }
        w.endObject()
        w.endObject()
    }

    /// A path as a URI reference: each segment percent-encoded.
    static func uriPath(_ path: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: ":;?#[]@!$&'()*+,=%")
        return path.addingPercentEncoding(withAllowedCharacters: allowed) ?? path
    }
}

/// Where SARIF results go: paths relative to the repository root, so that code scanning places them on the
/// repository's files.
package struct SARIFPlacement: Sendable {
    static let baseId = "SRCROOT"

    package struct Location: Sendable {
        package var uri: String
        /// Relative to SRCROOT (else an absolute `file:` URI: a file outside the repository).
        package var relative: Bool
        package var line: Int?
        var related: [Location] = []
    }

    /// The repository root, absolute.
    package var root: String
    /// The build context's directory, absolute: report paths are relative to it.
    package var context: String
    /// Files that results without a path of their own are about, most specific first; the first that exists is used.
    package var about: [String] = []

    /// - Parameters:
    ///   - root: the repository root; nil: the git work tree that holds `context` (the nearest directory above it with
    ///     `.git`), else the current directory.
    ///   - about: files a result without a path is about (the manifest that was verified); the context's Dockerfile
    ///     and `.dockerignore` come after them.
    package init(root: String?, context: String, about: [String] = []) {
        let ctx = Self.absolute(context)
        self.context = ctx
        self.root = root.map(Self.absolute) ?? Self.repositoryRoot(of: ctx) ?? Self.absolute(FileManager.default.currentDirectoryPath)
        self.about = about.map(Self.absolute) + [ctx + "/Dockerfile", ctx + "/.dockerignore"]
    }

    /// The nearest directory at or above `dir` holding `.git` (a directory, or a file for worktrees and submodules).
    package static func repositoryRoot(of dir: String) -> String? {
        var d = absolute(dir)
        while true {
            if access(d + "/.git", F_OK) == 0 { return d }
            if d == "/" || d.isEmpty { return nil }
            d = (d as NSString).deletingLastPathComponent
        }
    }

    static func absolute(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.path }

    /// A path given relative to the context, or as written in the manifest (context-relative, or absolute).
    func contextFile(_ p: String) -> String {
        if p.hasPrefix("/") { return p }
        return access(context + "/" + p, F_OK) == 0 ? context + "/" + p : Self.absolute(p)
    }

    /// A path relative to the context.
    func inContext(_ path: String) -> Location { file(context + "/" + path, line: nil) }

    func file(_ abs: String?, line: Int?) -> Location {
        guard let abs else { return about(line) }
        let a = Self.absolute(abs)
        let r = root == "/" ? "" : root
        if a.hasPrefix(r + "/") { return Location(uri: SARIF.uriPath(String(a.dropFirst(r.count + 1))), relative: true, line: line) }
        if a == root { return Location(uri: "./", relative: true, line: nil) }
        return Location(uri: "file://" + SARIF.uriPath(a), relative: false, line: line)
    }

    /// The first `about` file that exists, else the context directory.
    func about(_ line: Int?) -> Location {
        for f in about where access(f, F_OK) == 0 { return file(f, line: line) }
        return file(context, line: nil)
    }
}
