import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A hygiene finding about a build context (bytecode, VCS metadata, secrets...).
package struct HygieneFinding: Sendable, Equatable {
    package enum Kind: String, Sendable, CaseIterable {
        case bytecode, vcs, secret
        case nodeModules = "node-modules"
        case largeFile = "large-file"
        case noIgnoreFile = "no-ignore-file"
        case socket
        case sentEmpty = "sent-empty"
        case emptyContext = "empty-context"
        case ignorePattern = "ignore-pattern"
        /// Content changed while size, mtime and mode did not (against an earlier record's file times).
        case cacheStaleRisk = "cache-stale-risk"
    }
    package var kind: Kind
    package var path: String
    package var message: String
    /// The line of the ignore file the finding is about (ignore-pattern), for reports that place it; not recorded.
    package var line: Int?
    package init(kind: Kind, path: String, message: String, line: Int? = nil) { self.kind = kind; self.path = path; self.message = message; self.line = line }
    /// The recorded fields (the line is not recorded).
    package static func == (a: HygieneFinding, b: HygieneFinding) -> Bool { a.kind == b.kind && a.path == b.path && a.message == b.message }
}

/// Facts about the build that are recorded beside the tree but never enter its digest.
package struct ManifestMetadata: Sendable {
    package var tool: String = "imprint \(Imprint.version)"
    /// RFC 3339 UTC, from `SOURCE_DATE_EPOCH` when set.
    package var created: String = ManifestMetadata.now()
    package var ignoreFile: String?
    package var ignoreFileDigest: Digest?
    package var ignoreSemantics: IgnoreSemantics = .buildkit
    /// Paths inside the context left out of the digest because imprint writes them (`--emit`, `-o`).
    package var excluded: [String] = []
    package var gitCommit: String?
    package var gitBranch: String?
    package var gitDirty: Bool?
    /// CI variables that were set (GITHUB_SHA, CI_COMMIT_SHA, BUILD_ID...), sorted by name.
    package var ci: [(String, String)] = []
    /// The Dockerfile read with `-f` (or the context's `Dockerfile`): its path, digest and the final stage's copies
    /// from the context, which say where each context file lands in the image.
    package var dockerfile: (path: String, digest: Digest, parsed: Dockerfile)?

    package init() {}

    package static func now(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        var seconds = Int64(Date().timeIntervalSince1970)
        if let s = environment["SOURCE_DATE_EPOCH"], let v = Int64(s.trimmingCharacters(in: .whitespaces)) { seconds = v }
        return rfc3339(seconds)
    }

    package static func rfc3339(_ seconds: Int64) -> String { RFC3339.format(seconds: seconds) }

    package static let ciVariables = [
        "BUILDKITE_BUILD_ID", "BUILDKITE_COMMIT", "BUILD_ID", "BUILD_NUMBER", "CIRCLE_BUILD_NUM", "CIRCLE_SHA1",
        "CI_COMMIT_REF_NAME", "CI_COMMIT_SHA", "CI_JOB_ID", "CI_PIPELINE_ID", "CI_PROJECT_PATH", "GITHUB_REF",
        "GITHUB_REPOSITORY", "GITHUB_RUN_ID", "GITHUB_RUN_NUMBER", "GITHUB_SHA", "GIT_COMMIT", "JOB_NAME",
        "TRAVIS_BUILD_ID", "TRAVIS_COMMIT",
    ]

    /// Collects CI variables and git facts for a context directory.
    package mutating func collect(context: String, environment: [String: String] = ProcessInfo.processInfo.environment) {
        ci = Self.ciVariables.compactMap { k in environment[k].flatMap { $0.isEmpty ? nil : (k, $0) } }
        guard Self.mayBeInGitRepository(context) else { return }
        if let commit = Self.git(["rev-parse", "HEAD"], in: context) {
            gitCommit = commit
            gitBranch = Self.git(["symbolic-ref", "--short", "-q", "HEAD"], in: context)
            if let status = Self.git(["status", "--porcelain", "--untracked-files=normal", "--", "."], in: context, keepEmpty: true) {
                gitDirty = !status.isEmpty
            }
        }
    }

    /// False only when git certainly finds no repository for `dir`: no `GIT_DIR`, and neither `dir` nor any
    /// directory above it holds a `.git` (work tree) or a `HEAD` (a repository itself, as a bare one). Spares the
    /// `git` process (several milliseconds) outside repositories.
    package static func mayBeInGitRepository(_ dir: String) -> Bool {
        let env = ProcessInfo.processInfo.environment
        if env["GIT_DIR"] != nil || env["GIT_WORK_TREE"] != nil || env["GIT_COMMON_DIR"] != nil { return true }
        // git -C resolves symlinks (chdir, then getcwd) and searches upwards from the physical directory.
        guard let resolved = realpath(dir, nil) else { return true }
        var path = String(cString: resolved)
        free(resolved)
        while true {
            let base = path == "/" ? "" : path
            for name in ["/.git", "/HEAD"] {
                // Present, or cannot tell (no permission...): let git decide.
                if access(base + name, F_OK) == 0 || (errno != ENOENT && errno != ENOTDIR) { return true }
            }
            if path == "/" { return false }
            path = (path as NSString).deletingLastPathComponent
            if path.isEmpty { path = "/" }
        }
    }

    package static func git(_ args: [String], in dir: String, keepEmpty: Bool = false) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git", "-C", dir] + args
        var env = ProcessInfo.processInfo.environment
        env["LC_ALL"] = "C"
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return nil }
        let s = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return s.isEmpty && !keepEmpty ? nil : s
    }
}

/// The context manifest: a tree with its Merkle digests, hygiene findings and metadata.
///
/// Serialised as deterministic JSON (`schemas/manifest.schema.json`): fixed key order, entries in walk order
/// (depth-first, names sorted bytewise), one entry per line, no floats.
package struct Manifest {
    package static let mediaType = "application/vnd.imprint.manifest.v1+json"
    package static let digestAlgorithm = Digest.treeAlgorithm

    package var tree: Tree
    package var findings: [HygieneFinding]
    package var metadata: ManifestMetadata

    package init(tree: Tree, findings: [HygieneFinding] = [], metadata: ManifestMetadata = ManifestMetadata()) {
        self.tree = tree
        self.findings = findings
        self.metadata = metadata
    }

    package var rootDigest: Digest { tree.rootDigest }

    // MARK: Writing

    package func jsonBytes() -> [UInt8] {
        let chunks = jsonChunks()
        var out: [UInt8] = []
        out.reserveCapacity(chunks.reduce(0) { $0 + $1.count })
        for c in chunks { out.append(contentsOf: c) }
        return out
    }

    /// `jsonBytes()` in pieces, to be written one after another: a large manifest is never copied into one buffer.
    package func jsonChunks() -> [[UInt8]] {
        let stats = tree.statistics
        var w = JSONWriter(pretty: true, reserve: 4096)
        w.beginObject()
        w.string("mediaType", Manifest.mediaType)
        w.string("digestAlgorithm", Manifest.digestAlgorithm)
        w.string("digest", tree.rootDigest.prefixed)
        w.beginObject("summary")
        w.int("files", stats.files)
        w.int("directories", stats.directories)
        w.int("symlinks", stats.symlinks)
        w.int("other", stats.other)
        w.int("bytes", stats.bytes)
        w.endObject()
        w.beginArray("entries")
        let separator = w.elementSeparator
        let entryCount = stats.files + stats.directories + stats.symlinks + stats.other
        let workers = ProcessInfo.processInfo.activeProcessorCount
        var out: [[UInt8]] = []
        if entryCount < 4096 || workers < 2 {
            var chunk: [UInt8] = []
            tree.walkEntries { path, _, node in Manifest.appendEntry(path, node, separator: separator, to: &chunk); return true }
            w.rawElements(chunk)
        } else {
            // Large trees: pieces of the walk serialised on all cores, joined in walk order. (`statistics` above
            // visited every directory, so the children caches are filled and the tree is only read here.)
            let pieces = tree.walkPieces(target: 64 * workers)
            let chunks = parallelMap(pieces, workers: workers) { piece -> [UInt8] in
                var chunk: [UInt8] = []
                tree.walkEntries(of: piece) { path, _, node in
                    Manifest.appendEntry(path, node, separator: separator, to: &chunk)
                    return true
                }
                return chunk
            }
            // The first element of the array takes no comma.
            var first = true
            out.append(w.takeBytes())
            for chunk in chunks where !chunk.isEmpty {
                out.append(first ? Array(chunk[1...]) : chunk)
                first = false
            }
            if !first { w.noteRawElements() }
        }
        w.endArray()
        HygieneFinding.write(findings, into: &w)
        metadata.write(into: &w)
        w.endObject()
        w.end()
        out.append(w.takeBytes())
        return out
    }

    package static func isValidUTF8(_ bytes: [UInt8]) -> Bool {
        let ascii = bytes.withUnsafeBufferPointer { p in
            var acc: UInt8 = 0
            for b in p { acc |= b }
            return acc < 0x80
        }
        return ascii || bytes.exactString != nil
    }

    /// `separator` and the entry as `writeEntry` writes it in a compact writer.
    package static func appendEntry(_ path: Bytes, _ node: TreeNode, separator: [UInt8], to out: inout [UInt8]) {
        out.append(contentsOf: separator)
        if (node.type == .file || node.type == .directory) && Manifest.isValidUTF8(path) {
            appendEntry(path, node, to: &out)
        } else {
            var o = JSONWriter(pretty: false, reserve: 256)
            writeEntry(path, node, &o)
            out.append(contentsOf: o.bytes)
        }
    }

    /// The bytes `writeEntry` gives for a file or directory whose path is valid UTF-8, written straight from the
    /// node (no Strings, no writer of its own).
    package static func appendEntry(_ path: Bytes, _ node: TreeNode, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"path":"#.utf8)
        JSONWriter.appendEscaped(path, to: &out)
        if node.type == .file {
            out.append(contentsOf: #","type":"file","mode":""#.utf8)
            appendOctalMode(node.canonicalMode, to: &out)
            out.append(contentsOf: #"","size":"#.utf8)
            JSONWriter.appendDecimal(node.size, to: &out)
            out.append(contentsOf: #","sha256":""#.utf8)
            node.digest.appendHex(to: &out)
        } else {
            out.append(contentsOf: #","type":"directory","mode":""#.utf8)
            appendOctalMode(node.canonicalMode, to: &out)
            out.append(contentsOf: #"","digest":"sha256:"#.utf8)
            node.digest.appendHex(to: &out)
        }
        out.append(contentsOf: #""}"#.utf8)
    }

    package static func writeEntry(_ path: Bytes, _ node: TreeNode, _ o: inout JSONWriter) {
        o.beginObject()
        if let exact = path.exactString {
            o.string("path", exact)
        } else {
            o.string("path", path.lossyString)
            o.string("pathBase64", Data(path).base64EncodedString())
        }
        o.string("type", node.type.rawValue)
        o.string("mode", octalMode(node.canonicalMode))
        switch node.type {
        case .file:
            o.int("size", node.size)
            o.hexDigest("sha256", node.digest)
        case .directory:
            o.string("digest", node.digest.prefixed)
        case .symlink:
            let t = node.target ?? []
            o.string("target", t.lossyString)
            if t.exactString == nil { o.string("targetBase64", Data(t).base64EncodedString()) }
        case .charDevice, .blockDevice:
            o.int("devMajor", node.devMajor)
            o.int("devMinor", node.devMinor)
        case .fifo, .socket:
            break
        }
        o.endObject()
    }

    // MARK: Reading

    /// Parses a manifest and checks that its recorded digests agree with its entries.
    /// - Throws: `badInput` naming `source` for invalid JSON, a wrong media type, a malformed entry or an
    ///   inconsistent digest (a manifest edited by hand or damaged).
    package static func parse(_ data: [UInt8], source: String) throws -> Manifest {
        let obj = try JSONRead.object(data, what: source)
        guard obj["mediaType"] as? String == mediaType else {
            throw ImprintError.badInput("\(source) is not an imprint manifest (mediaType is not \(mediaType))")
        }
        guard let entries = obj["entries"] as? [[String: Any]] else { throw ImprintError.badInput("\(source): no entries array") }
        let tree = Tree()
        var recordedDirDigests: [(Bytes, Digest)] = []
        for (i, e) in entries.enumerated() {
            func bad(_ why: String) -> ImprintError { ImprintError.badInput("\(source): entry \(i + 1): \(why)") }
            var path: Bytes
            if let b = e["pathBase64"] as? String {
                guard let d = Data(base64Encoded: b) else { throw bad("pathBase64 is not base64") }
                path = Array(d)
            } else if let p = e["path"] as? String {
                path = Array(p.utf8)
            } else { throw bad("missing path") }
            let comps = path.pathComponents
            guard !comps.isEmpty, !comps.contains([0x2E, 0x2E]), !comps.contains([0x2E]), path.first != 0x2F else {
                throw bad("invalid path \"\(Array(path.prefix(120)).lossyString)\"")
            }
            // The kernel's PATH_MAX: no file system a manifest describes holds a longer path, and it bounds how
            // deep a manifest's tree can be.
            guard path.count <= 4095 else { throw bad("path of \(path.count) bytes, longer than the kernel's PATH_MAX (4096)") }
            path = comps.joinedPath
            guard let t = (e["type"] as? String).flatMap(EntryType.init(rawValue:)) else { throw bad("unknown type") }
            guard let ms = e["mode"] as? String, let mode = parseOctalMode(ms) else { throw bad("invalid mode") }
            let node: TreeNode
            switch t {
            case .file:
                guard let hex = e["sha256"] as? String, let d = Digest(hex: hex), !hex.hasPrefix("sha256:") else { throw bad("invalid sha256") }
                guard let size = JSONRead.size(e["size"]) else { throw bad("size is missing or not a whole number of bytes from 0 to 2^56") }
                node = TreeNode(type: .file, mode: mode, size: size, digest: d)
            case .directory:
                node = TreeNode.directory(mode: mode)
                if let ds = e["digest"] as? String {
                    guard let d = Digest(hex: ds) else { throw bad("invalid digest") }
                    recordedDirDigests.append((path, d))
                }
            case .symlink:
                var target: Bytes
                if let b = e["targetBase64"] as? String, let d = Data(base64Encoded: b) { target = Array(d) } else if let s = e["target"] as? String { target = Array(s.utf8) } else { throw bad("missing target") }
                node = TreeNode.symlink(target)
            case .charDevice, .blockDevice:
                guard let major = JSONRead.uint32(e["devMajor"] ?? 0), let minor = JSONRead.uint32(e["devMinor"] ?? 0) else {
                    throw bad("device numbers must be whole numbers from 0 to 2^32-1")
                }
                node = TreeNode.device(t, mode: mode, major: major, minor: minor)
            case .fifo, .socket:
                node = TreeNode(type: t, mode: mode)
            }
            tree.insert(path, node)
        }
        tree.computeDigests()
        if let rd = obj["digest"] as? String {
            guard let recorded = Digest(hex: rd) else { throw ImprintError.badInput("\(source): invalid digest \(rd)") }
            if recorded != tree.rootDigest {
                throw ImprintError.badInput("\(source): recorded digest \(recorded) does not match its entries (\(tree.rootDigest)); the manifest was altered or damaged")
            }
        } else {
            throw ImprintError.badInput("\(source): missing digest")
        }
        for (p, d) in recordedDirDigests where tree.node(at: p)?.digest != d {
            throw ImprintError.badInput("\(source): directory \(p.lossyString) has digest \(d) in the manifest but its entries give \(tree.node(at: p)!.digest)")
        }
        var findings: [HygieneFinding] = []
        for f in obj["findings"] as? [[String: Any]] ?? [] {
            if let k = (f["kind"] as? String).flatMap(HygieneFinding.Kind.init(rawValue:)) {
                findings.append(HygieneFinding(kind: k, path: f["path"] as? String ?? "", message: f["message"] as? String ?? ""))
            }
        }
        let meta = ManifestMetadata(json: obj["metadata"] as? [String: Any] ?? [:])
        return Manifest(tree: tree, findings: findings, metadata: meta)
    }
}

extension ManifestMetadata {
    /// Writes the `metadata` object (the same bytes in manifests and history records).
    package func write(into w: inout JSONWriter) {
        w.beginObject("metadata")
        let m = self
        w.string("tool", m.tool)
        w.string("created", m.created)
        w.string("ignoreSemantics", m.ignoreSemantics.rawValue)
        if let f = m.ignoreFile {
            w.beginObject("ignoreFile"); w.string("path", f); w.string("digest", m.ignoreFileDigest?.prefixed); w.endObject()
        }
        if !m.excluded.isEmpty { w.beginArray("excluded"); for e in m.excluded { w.string(nil, e) }; w.endArray() }
        if let c = m.gitCommit {
            w.beginObject("git")
            w.string("commit", c)
            w.string("branch", m.gitBranch)
            if let d = m.gitDirty { w.bool("dirty", d) }
            w.endObject()
        }
        if !m.ci.isEmpty { w.beginObject("ci"); for (k, v) in m.ci { w.string(k, v) }; w.endObject() }
        if let d = m.dockerfile {
            w.beginObject("dockerfile")
            w.string("path", d.path)
            w.string("digest", d.digest.prefixed)
            w.beginArray("copies")
            for c in d.parsed.copies {
                w.compact(nil) { o in
                    o.beginObject()
                    o.int("line", c.line); o.string("instruction", c.instruction); o.string("command", c.command)
                    o.beginArray("sources"); for s in c.sources { o.string(nil, s) }; o.endArray()
                    o.string("destination", c.destination)
                    if let m = c.chmod { o.string("chmod", String(format: "%04o", m)) }
                    o.string("chown", c.chown)
                    if c.link { o.bool("link", true) }
                    if c.parents { o.bool("parents", true) }
                    if !c.excludes.isEmpty { o.beginArray("excludes"); for e in c.excludes { o.string(nil, e) }; o.endArray() }
                    o.endObject()
                }
            }
            w.endArray()
            w.beginArray("unsupported")
            for u in d.parsed.unsupported {
                w.compact(nil) { o in o.beginObject(); o.int("line", u.line); o.string("instruction", u.instruction); o.string("reason", u.reason); o.endObject() }
            }
            w.endArray()
            w.endObject()
        }
        w.endObject()
    }
}

extension HygieneFinding {
    /// Writes the `findings` array, one finding per line.
    package static func write(_ findings: [HygieneFinding], into w: inout JSONWriter) {
        w.beginArray("findings")
        for f in findings {
            w.compact(nil) { o in
                o.beginObject(); o.string("kind", f.kind.rawValue); o.string("path", f.path); o.string("message", f.message); o.endObject()
            }
        }
        w.endArray()
    }
}

extension ManifestMetadata {
    /// Reads the `metadata` object written by `write(into:)`; missing fields keep their defaults.
    package init(json md: [String: Any]) {
        self.init()
        tool = md["tool"] as? String ?? tool
        created = md["created"] as? String ?? created
        ignoreSemantics = (md["ignoreSemantics"] as? String).flatMap(IgnoreSemantics.init(rawValue:)) ?? .buildkit
        if let f = md["ignoreFile"] as? [String: Any] {
            ignoreFile = f["path"] as? String
            ignoreFileDigest = (f["digest"] as? String).flatMap(Digest.init(hex:))
        }
        excluded = md["excluded"] as? [String] ?? []
        if let g = md["git"] as? [String: Any] {
            gitCommit = g["commit"] as? String
            gitBranch = g["branch"] as? String
            gitDirty = g["dirty"] as? Bool
        }
        if let ci = md["ci"] as? [String: String] { self.ci = ci.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
        if let d = md["dockerfile"] as? [String: Any], let path = d["path"] as? String,
           let digest = (d["digest"] as? String).flatMap(Digest.init(hex:)) {
            var copies: [Dockerfile.Copy] = []
            for c in d["copies"] as? [[String: Any]] ?? [] {
                guard let dest = c["destination"] as? String else { continue }
                var copy = Dockerfile.Copy(line: (c["line"] as? NSNumber)?.intValue ?? 0, instruction: c["instruction"] as? String ?? "",
                                           command: c["command"] as? String ?? "COPY", sources: c["sources"] as? [String] ?? [], destination: dest)
                copy.chmod = (c["chmod"] as? String).flatMap { UInt32($0, radix: 8) }
                copy.chown = c["chown"] as? String
                copy.link = c["link"] as? Bool ?? false
                copy.parents = c["parents"] as? Bool ?? false
                copy.excludes = c["excludes"] as? [String] ?? []
                copies.append(copy)
            }
            let unsupported = (d["unsupported"] as? [[String: Any]] ?? []).map {
                (line: ($0["line"] as? NSNumber)?.intValue ?? 0, instruction: $0["instruction"] as? String ?? "", reason: $0["reason"] as? String ?? "")
            }
            dockerfile = (path, digest, Dockerfile(copies: copies, unsupported: unsupported, base: nil))
        }
    }
}
