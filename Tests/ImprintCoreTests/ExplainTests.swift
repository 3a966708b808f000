import Foundation
import Testing
@testable import ImprintCore

/// `why` and `ls` against the fingerprint walk and BuildKit's own answers, on the oracle's random contexts.
@Suite struct ExplainTests {
    static let valid = DockerIgnoreOracleTests.cases.filter { $0.expect != nil }

    @Test(arguments: valid)
    func whyAndLsAgreeWithTheWalkAndBuildKit(_ c: DockerIgnoreOracleTests.Case) throws {
        let root = NSTemporaryDirectory() + "imprint-explain-\(getpid())-\(c.seed)"
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try DockerIgnoreOracleTests.materialize(c, at: root)
        try Data(c.ignore).write(to: URL(fileURLWithPath: root + "/.dockerignore"))
        let ignore = try DockerIgnore.parse(c.ignore, file: ".dockerignore")
        // What BuildKit sends, by path, with the content digest of files.
        var sent: [Bytes: String] = [:]
        for e in c.expect ?? [] where e.count >= 2 {
            sent[Array(Data(base64Encoded: e[1]) ?? Data())] = e.count > 2 ? e[2] : e[0]
        }
        let lines = c.ignore.filter { $0 == 0x0A }.count + 1
        let empty = SHA256.hash([]).hex
        var all = c.entries.map { ($0.path, $0.kind) }
        all.append((Array(".dockerignore".utf8), "f"))
        for (path, kind) in all {
            let isDir = kind == "d"
            let e = try ContextExplainer.explain(path, isDirectory: isDir, ignore: ignore)
            let wasSent = sent[path] != nil
            switch e.verdict {
            case .included, .sentEmpty:
                #expect(wasSent, "\(path.lossyString): why says \(e.verdict.rawValue), BuildKit does not send it (\(e.summary))")
                if e.verdict == .sentEmpty, kind == "f" { #expect(sent[path] == empty, "\(path.lossyString): sent empty per why") }
            case .excluded, .excludedByParent:
                #expect(!wasSent, "\(path.lossyString): why says \(e.verdict.rawValue), BuildKit sends it (\(e.summary))")
            case .excludedWalked, .sentAsParent:
                let below = sent.keys.contains { $0.count > path.count + 1 && $0.starts(with: path + [0x2F]) }
                #expect(wasSent == below, "\(path.lossyString): excluded-walked, sent \(wasSent), something below sent \(below)")
            }
            if let r = e.decidedBy { #expect(r.line >= 1 && r.line <= lines, "\(path.lossyString): line \(r.line) of \(lines)") }
        }
        // ls lists exactly what BuildKit sends.
        let listing = try ContextListing.list(context: root)
        #expect(Set(listing.entries.map(\.rawPath)) == Set(sent.keys), "ls differs from BuildKit")
        for entry in listing.entries where entry.sentEmpty { #expect(sent[entry.rawPath] == empty) }
    }

    /// `why` and `ls` are the fingerprint walk's own answers, field for field, with each builder's semantics: the
    /// same paths sent, the same types, the same files sent empty; where the walk refuses the ignore file, so do they.
    @Test(arguments: DockerIgnoreOracleTests.cases)
    func whyAndLsAreTheWalksOwnAnswersInBothModes(_ c: DockerIgnoreOracleTests.Case) throws {
        let root = NSTemporaryDirectory() + "imprint-explain-modes-\(getpid())-\(c.seed)"
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try DockerIgnoreOracleTests.materialize(c, at: root)
        try Data(c.ignore).write(to: URL(fileURLWithPath: root + "/.dockerignore"))
        var onDisk = c.entries.map { ($0.path, $0.kind == "d") }
        onDisk.append((Array(".dockerignore".utf8), false))
        for semantics in IgnoreSemantics.allCases {
            let mode = "\(semantics.rawValue), seed \(c.seed)"
            guard let ignore = try? DockerIgnore.parse(c.ignore, file: ".dockerignore", semantics: semantics).reincludingBuildFiles(dockerfile: "Dockerfile"),
                  let (tree, notes) = try? ContextWalker(ignore: ignore).walk(root) else {
                // The walk refuses this ignore file: ls and why must not answer either.
                #expect(throws: (any Error).self, "\(mode): the walk refuses, ls answers") { try ContextListing.list(context: root, semantics: semantics) }
                continue
            }
            var walked: [Bytes: EntryType] = [:]
            tree.walk { p, node in walked[p] = node.type }
            let sentEmpty = Set(notes.sentEmpty + (semantics == .buildkit ? notes.sockets : []))
            let listing = try ContextListing.list(context: root, semantics: semantics)
            var listed: [Bytes: EntryType] = [:]
            for e in listing.entries { listed[e.rawPath] = e.type }
            #expect(listed == walked, "\(mode): ls differs from the walk: \(Set(listed.keys).symmetricDifference(walked.keys).map(\.lossyString))")
            #expect(Set(listing.entries.filter(\.sentEmpty).map(\.rawPath)) == sentEmpty, "\(mode): ls's empty files differ from the walk's")
            for (path, isDir) in onDisk {
                let e = try ContextExplainer.explain(path, isDirectory: isDir, ignore: ignore, context: root)
                #expect(e.sent == (walked[path] != nil), "\(mode): \(path.lossyString): why says \(e.verdict.rawValue), the walk \(walked[path] == nil ? "does not send it" : "sends it")")
                if let t = walked[path] { #expect(e.type == t, "\(mode): \(path.lossyString): why says \(e.type?.rawValue ?? "-"), the walk \(t.rawValue)") }
                #expect((e.verdict == .sentEmpty) == sentEmpty.contains(path), "\(mode): \(path.lossyString): why says \(e.verdict.rawValue)")
            }
        }
    }

    @Test func lsCountsWhatEachRuleKeepsOut() throws {
        try ArchiveFixture.withTemp { dir in
            try Lib.write(dir + "/node_modules/a/big.js", String(repeating: "x", count: 5000))
            try Lib.write(dir + "/node_modules/b.js", "yy")
            try Lib.write(dir + "/src/app.py", "print(1)\n")
            try Lib.write(dir + "/debug.log", "log\n")
            try Lib.write(dir + "/.dockerignore", "node_modules\n*.log\n")
            let l = try ContextListing.list(context: dir)
            #expect(l.entries.map(\.path) == [".dockerignore", "src", "src/app.py"])
            #expect(l.excluded.count == 2 && l.excluded[0].rule?.line == 1 && l.excluded[0].files == 2 && l.excluded[0].bytes == 5002)
            #expect(l.excluded[1].rule?.pattern == "*.log" && l.excluded[1].paths == ["debug.log"])
            // The same as the fingerprint walk.
            let m = try Fingerprinter(context: dir).run()
            var walked: [String] = []
            m.tree.walk { p, _ in walked.append(p.lossyString) }
            #expect(Set(walked) == Set(l.entries.map(\.path)))
        }
    }
}
