import Foundation
import Testing
@testable import ImprintCore
#if canImport(Glibc)
import Glibc
#endif

/// Replays BuildKit's own answers: `Fixtures/dockerignore-oracle.jsonl` holds random contexts and ignore files
/// (`ci/fuzzing/dockerignore_contexts.py`, a fixed seed, realistic and exotic patterns alternating) with what the
/// oracle built from tonistiigi/fsutil @91a3fc4 + moby/patternmatcher v0.6.1 sends for each: every entry with
/// its content digest, or an error. The walker must send exactly that.
@Suite struct DockerIgnoreOracleTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var seed: Int
        var exotic: Bool
        var ignore: [UInt8]
        var entries: [(path: [UInt8], kind: String, content: String?)]
        /// nil when BuildKit refuses the context.
        var expect: [[String]]?
        var testDescription: String { "seed \(seed)\(exotic ? " (exotic)" : "")" }
    }

    static let cases: [Case] = load("dockerignore-oracle.jsonl")
    /// The same generator's contexts with the legacy builder's answers: the docker CLI's own context code
    /// (docker/cli v29.7.2 `build.ReadDockerignore`, `ValidateContextDirectory`, `TrimBuildFilesFromExcludes`,
    /// moby/go-archive v0.3.3 `TarWithOptions`, moby/patternmatcher v0.6.1), with the parent directories the
    /// daemon creates when it unpacks the tar.
    static let legacyCases: [Case] = load("dockerignore-legacy-oracle.jsonl")

    static func load(_ name: String) -> [Case] {
        guard let url = try? Fixture.url(name), let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line -> Case? in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            let entries = (o["entries"] as? [[String: Any]] ?? []).map { e in
                (path: Array(Data(base64Encoded: e["p"] as? String ?? "") ?? Data()), kind: e["t"] as? String ?? "f", content: e["c"] as? String)
            }
            return Case(seed: o["seed"] as? Int ?? 0, exotic: o["exotic"] as? Bool ?? false,
                        ignore: Array(Data(base64Encoded: o["ignore"] as? String ?? "") ?? Data()),
                        entries: entries, expect: o["expect"] as? [[String]])
        }
    }

    @Test func fixturesArePresent() {
        #expect(Self.cases.count >= 1000)
        #expect(Self.legacyCases.count >= 1000 && Self.legacyCases.contains { $0.expect == nil })
        #expect(Self.cases.contains { $0.expect == nil } && Self.cases.contains { $0.exotic })
    }

    /// Writes a case's entries under `root` (directories, files, symlinks, sockets).
    static func materialize(_ c: Case, at root: String) throws {
        for e in c.entries {
            let p = Array(root.utf8) + [0x2F] + e.path
            let cpath = String(decoding: p, as: UTF8.self)
            try p.withUnsafeBufferPointer { buf in
                var z = Array(buf); z.append(0)
                try z.withUnsafeBufferPointer { zp in
                    let path = UnsafeRawPointer(zp.baseAddress!).assumingMemoryBound(to: CChar.self)
                    switch e.kind {
                    case "d": #expect(mkdir(path, 0o755) == 0 || errno == EEXIST)
                    case "f":
                        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                        #expect(fd >= 0, "create \(cpath)")
                        let bytes = Array((e.content ?? "").utf8)
                        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                        close(fd)
                    case "l":
                        #expect(symlink(e.content ?? "", path) == 0)
                    case "s":
                        try Self.makeSocket(path)
                    default: throw ImprintError.badInput("unknown kind \(e.kind)")
                    }
                }
            }
        }
    }

    @Test(arguments: cases)
    func sendsWhatBuildKitSends(_ c: Case) throws {
        try Self.check(c, name: "oracle") { _ in try DockerIgnore.parse(c.ignore, file: ".dockerignore") }
    }

    @Test(arguments: legacyCases)
    func sendsWhatTheLegacyBuilderSends(_ c: Case) throws {
        try Self.check(c, name: "legacy-oracle") { root in try IgnoreFileLocator(context: root, semantics: .classic).load().0 }
    }

    /// Builds the case's context and compares the walk under `ignore` with the oracle's listing.
    static func check(_ c: Case, name: String, ignore: (String) throws -> DockerIgnore) throws {
        let root = NSTemporaryDirectory() + "imprint-\(name)-\(getpid())-\(c.seed)"
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.materialize(c, at: root)
        try c.ignore.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: root + "/.dockerignore")) }
        let got = try Self.listing(root, ignore: { try ignore(root) })
        let expect = c.expect.map { $0.sorted { $0.lexicographicallyPrecedes($1) } }
        #expect(got == expect, "ignore file: \(String(decoding: c.ignore, as: UTF8.self).debugDescription)")
    }

    /// An excluded directory the walk enters: BuildKit sends it with its own mode; the legacy builder's tar has no
    /// entry for it (the oracle shows none), so the daemon creates it, 0755, when it unpacks what lies below
    /// (moby's `Unpack`, `MkdirAllAndChownNew(parent, 0o755)`).
    @Test func enteredDirectoriesKeepTheirModeOnlyWithBuildKit() throws {
        let root = NSTemporaryDirectory() + "imprint-entered-\(getpid())"
        try? FileManager.default.removeItem(atPath: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/build/keep", withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: root + "/build/keep/a.py"))
        try Data("build\n!build/keep\n".utf8).write(to: URL(fileURLWithPath: root + "/.dockerignore"))
        #expect(chmod(root + "/build", 0o700) == 0)
        for (semantics, mode) in [(IgnoreSemantics.buildkit, UInt32(0o700)), (.classic, 0o755)] {
            let (ignore, _) = try IgnoreFileLocator(context: root, semantics: semantics).load()
            let (tree, _) = try ContextWalker(ignore: ignore).walk(root)
            #expect(tree.node(at: Array("build".utf8)).map { $0.mode & 0o7777 } == mode, "\(semantics)")
            #expect(tree.node(at: Array("build/keep/a.py".utf8))?.type == .file)
        }
    }

    /// The walk's entries in the oracle's form, sorted; nil where the walk refuses the context.
    static func listing(_ root: String, ignore: () throws -> DockerIgnore) throws -> [[String]]? {
        do {
            let (tree, _) = try ContextWalker(ignore: try ignore()).walk(root)
            var list: [[String]] = []
            tree.walk { path, node in
                let b = Data(path).base64EncodedString()
                switch node.type {
                case .directory: list.append(["d", b])
                case .file: list.append(["f", b, node.digest.hex])
                case .symlink: list.append(["l", b, Data(node.target ?? []).base64EncodedString()])
                default: list.append(["o", b])
                }
            }
            return list.sorted { $0.lexicographicallyPrecedes($1) }
        } catch let e as ImprintError where e.code == .badInput {
            return nil
        }
    }

    static func makeSocket(_ path: UnsafePointer<CChar>) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let len = strlen(path)
        guard len < MemoryLayout.size(ofValue: addr.sun_path) else {
            // Too long for a socket address: the generator then wrote a plain empty file.
            let f = open(path, O_WRONLY | O_CREAT, 0o644); close(f); return
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyMemory(from: UnsafeRawBufferPointer(start: path, count: len)) }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(rc == 0)
    }
}
