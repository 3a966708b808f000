import Foundation
import Testing
@testable import ImprintCore

/// The decisions the command line delegates, called directly: verify, stamp, diff, manifest references, history
/// rendering, pipelines, tree comparison, manifest parsing.
enum Lib {
    static func write(_ path: String, _ text: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// A context with a few files, its manifest written to `dir/m.json`.
    static func context(_ dir: String) throws -> Manifest {
        try write(dir + "/ctx/app.py", "print('v1')\n")
        try write(dir + "/ctx/pkg/mod.py", "X = 1\n")
        try write(dir + "/ctx/.dockerignore", "*.log\n")
        let m = try Fingerprinter(context: dir + "/ctx").run()
        try Data(m.jsonBytes()).write(to: URL(fileURLWithPath: dir + "/m.json"))
        return m
    }

    /// A docker-archive holding `files` under /app, built in memory (one layer).
    static func dockerArchive(_ path: String, files: [String: String]) throws {
        let layer = try ArchiveFixture.tar { w in
            try w.writeHeader(TarEntry(path: Array("app".utf8), kind: .directory, mode: 0o755))
            for (name, text) in files.sorted(by: { $0.key < $1.key }) {
                let parts = name.split(separator: "/").dropLast()
                var prefix = "app"
                for p in parts {
                    prefix += "/\(p)"
                    try w.writeHeader(TarEntry(path: Array(prefix.utf8), kind: .directory, mode: 0o755))
                }
                var e = TarEntry(path: Array("app/\(name)".utf8), kind: .file, mode: 0o644)
                e.size = UInt64(text.utf8.count)
                try w.writeFile(e, content: Array(text.utf8))
            }
        }
        let diffID = SHA256.hash(layer)
        let config = Array(#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["\#(diffID.prefixed)"]},"history":[{"created_by":"COPY . /app"}]}"#.utf8)
        let configName = SHA256.hash(config).hex + ".json"
        let manifest = Array(#"[{"Config":"\#(configName)","RepoTags":["app:1"],"Layers":["\#(diffID.hex).tar"]}]"#.utf8)
        let archive = try ArchiveFixture.tar { w in
            for (name, bytes) in [(configName, config), (diffID.hex + ".tar", layer), ("manifest.json", manifest)] {
                var e = TarEntry(path: Array(name.utf8), kind: .file, mode: 0o644)
                e.size = UInt64(bytes.count)
                try w.writeFile(e, content: bytes)
            }
        }
        try Data(archive).write(to: URL(fileURLWithPath: path))
    }
}

@Suite struct LibraryDecisionTests {
    @Test func verifyRequestComparesADirectoryWithAManifestFile() throws {
        try ArchiveFixture.withTemp { dir in
            _ = try Lib.context(dir)
            var request = VerifyRequest(target: dir + "/ctx")
            request.manifest = dir + "/m.json"
            #expect(try request.run().verdict == .verified)
            try Lib.write(dir + "/ctx/pkg/mod.py", "X = 2\n")
            let report = try request.run()
            #expect(report.verdict == .mismatch)
            #expect(report.failures.map(\.path) == ["pkg/mod.py"])
            // Options that cannot work are refused, not ignored.
            var stampOnly = VerifyRequest(target: dir + "/ctx")
            stampOnly.stampOnly = true
            #expect(throws: ImprintError.self) { try stampOnly.run() }
            // Nothing to compare with.
            #expect(throws: ImprintError.self) { try VerifyRequest(target: dir + "/ctx").run() }
        }
    }

    @Test func manifestReferencesReadFilesAndHistoryRecords() throws {
        try ArchiveFixture.withTemp { dir in
            let m = try Lib.context(dir)
            let store = try HistoryStore(at: dir + "/history")
            _ = try store.add(m, tags: ["v1"])
            let (fromHistory, name) = try ManifestReference.load("history:v1", history: dir + "/history")
            #expect(fromHistory.rootDigest == m.rootDigest && name.contains("history record"))
            #expect(try ManifestReference.load(dir + "/m.json").manifest.rootDigest == m.rootDigest)
            #expect(throws: ImprintError.self) { try ManifestReference.load("history:nope", history: dir + "/history") }
        }
    }

    @Test func stampRequestChecksThenStampsAndWritesNothingWhenRefused() throws {
        try ArchiveFixture.withTemp { dir in
            let m = try Lib.context(dir)
            try Lib.dockerArchive(dir + "/good.tar", files: ["app.py": "print('v1')\n", "pkg/mod.py": "X = 1\n", ".dockerignore": "*.log\n"])
            var request = StampRequest(image: dir + "/good.tar")
            request.manifestPath = dir + "/m.json"
            request.output = dir + "/stamped.tar"
            request.check = true
            request.at = "/app"
            guard case .stamped(let s) = try request.run() else { Issue.record("not stamped"); return }
            #expect(s.contextDigest == m.rootDigest && s.isImageID)
            // The stamped image verifies against the digest alone.
            var verify = VerifyRequest(target: dir + "/stamped.tar")
            verify.expect = m.rootDigest
            verify.at = "/app"
            #expect(try verify.run().verdict == .verified)
            // A stale image (an old mod.py): refused, nothing written.
            try Lib.dockerArchive(dir + "/stale.tar", files: ["app.py": "print('v1')\n", "pkg/mod.py": "X = 0\n", ".dockerignore": "*.log\n"])
            var stale = request
            stale.image = dir + "/stale.tar"
            stale.output = dir + "/never.tar"
            guard case .refused(let report) = try stale.run() else { Issue.record("stamped a stale image"); return }
            #expect(report.failures.map(\.path) == ["pkg/mod.py"])
            #expect(!FileManager.default.fileExists(atPath: dir + "/never.tar"))
            // A signature for another manifest is refused.
            try Lib.write(dir + "/m.sig", String(decoding: ManifestSignature(digest: SHA256.hash([1]), keyId: String(repeating: "a", count: 64),
                                                                                signature: [UInt8](repeating: 7, count: 64)).jsonBytes(), as: UTF8.self))
            #expect(throws: ImprintError.self) { try request.run() }
        }
    }

    @Test func sourceLoaderReadsImagesTreesAndManifests() throws {
        try ArchiveFixture.withTemp { dir in
            let m = try Lib.context(dir)
            try Lib.dockerArchive(dir + "/img.tar", files: ["app.py": "print('v1')\n", "pkg/mod.py": "X = 1\n"])
            let image = try SourceLoader.load(dir + "/img.tar")
            #expect(image.kind == .dockerArchive && image.image?.platform.description == "linux/amd64")
            #expect(image.image?.repoTags == ["app:1"] && image.image?.config.layerHistory == ["COPY . /app"])
            #expect(image.tree.node(at: TreePath("/app/pkg/mod.py"))?.type == .file && image.embeddedManifest == nil)
            // Metadata only: no layer is read.
            #expect(try SourceLoader.load(dir + "/img.tar", withTree: false).tree.node(at: TreePath("app")) == nil)
            // Stamped, the manifest is found where the stamp put it and the tree without it is the image's own.
            var stamp = StampRequest(image: dir + "/img.tar")
            (stamp.manifestPath, stamp.output) = (dir + "/m.json", dir + "/stamped.tar")
            _ = try stamp.run()
            let stamped = try SourceLoader.load(dir + "/stamped.tar")
            #expect(stamped.embeddedManifest?.rootDigest == m.rootDigest)
            #expect(stamped.removingStamp().root.digest == image.tree.root.digest)
            // A directory and a manifest file are sources too.
            #expect(try SourceLoader.load(dir + "/ctx").kind == .directory)
            let manifestFile = try SourceLoader.load(dir + "/m.json")
            #expect(manifestFile.kind == .manifestFile && manifestFile.tree.root.digest == m.rootDigest)
            #expect(throws: ImprintError.self) { try SourceLoader.load(dir + "/missing.tar") }
        }
    }

    @Test func diffRequestAlignsAManifestWithTheContextInsideATarget() throws {
        try ArchiveFixture.withTemp { dir in
            _ = try Lib.context(dir)
            try Lib.dockerArchive(dir + "/img.tar", files: ["app.py": "print('v1')\n", "pkg/mod.py": "X = 1\n", ".dockerignore": "*.log\n"])
            let same = try DiffRequest(a: dir + "/m.json", b: dir + "/img.tar").run().report
            #expect(same.identical, "\(same.changes.map { $0.path.lossyString })")
            try Lib.dockerArchive(dir + "/img2.tar", files: ["app.py": "print('v2')\n", "pkg/mod.py": "X = 1\n", ".dockerignore": "*.log\n"])
            let changed = try DiffRequest(a: dir + "/m.json", b: dir + "/img2.tar").run().report
            #expect(!changed.identical && changed.changes.map { $0.path.lossyString } == ["app.py"])
            #expect(throws: ImprintError.self) { try DiffRequest(a: "-", b: "-").run() }
        }
    }

    @Test func treeComparisonNamesEachKindOfChange() throws {
        func tree(_ files: [String: String]) -> Tree {
            let t = Tree()
            for (p, text) in files {
                let n = TreeNode(type: .file, mode: 0o644, size: UInt64(text.utf8.count), digest: SHA256.hash(Array(text.utf8)))
                _ = t.insert(Array(p.utf8), n)
            }
            t.computeDigests()
            return t
        }
        var cmp = TreeComparison()
        let changes = cmp.compare(tree(["a": "1", "b/c": "2", "d": "4"]), tree(["a": "1", "b/c": "3", "e": "5"]))
        let byPath = Dictionary(uniqueKeysWithValues: changes.map { ($0.path.lossyString, $0.kind.rawValue) })
        #expect(byPath["b/c"] == "content" && byPath["d"] == "removed" && byPath["e"] == "added" && byPath["a"] == nil, "\(byPath)")
    }

    @Test func manifestParseRoundTripsAndRejectsOtherVersions() throws {
        try ArchiveFixture.withTemp { dir in
            let m = try Lib.context(dir)
            let again = try Manifest.parse(m.jsonBytes(), source: "m")
            #expect(again.rootDigest == m.rootDigest && again.jsonBytes() == m.jsonBytes())
            let other = String(decoding: m.jsonBytes(), as: UTF8.self)
                .replacingOccurrences(of: "application/vnd.imprint.manifest.v1+json", with: "application/vnd.imprint.manifest.v9+json")
            #expect(other != String(decoding: m.jsonBytes(), as: UTF8.self))
            #expect(throws: ImprintError.self) { try Manifest.parse(Array(other.utf8), source: "m") }
        }
    }

    @Test func historyListRendersBuildsAndStepsApart() throws {
        try ArchiveFixture.withTemp { dir in
            let store = try HistoryStore(at: dir + "/h")
            _ = try store.add(try Lib.context(dir), tags: ["release"])
            let empty = StreamDigest(digest: SHA256.hash([]), bytes: 0)
            try HistoryStepSink(store: store).add(StepRecord(name: "build", command: ["true"], workingDirectory: dir, status: .succeeded,
                                                             exitCode: 0, signal: nil, reason: nil, startTime: Clock.rfc3339Now(),
                                                             endTime: Clock.rfc3339Now(), durationMs: 1, materials: [], products: [],
                                                             stdout: empty, stderr: empty, environment: [:], exclude: []))
            let text = HistoryFormat.list(try store.entries())
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines[0].hasPrefix("RECORD") && lines[1].hasSuffix("release"), "\(text)")
            #expect(lines[3] == "step records (imprint run, imprint pipeline):" && lines[5].hasSuffix("build"), "\(text)")
            #expect(HistoryFormat.list([]) == "")
        }
    }

    @Test func pipelineRunnerRunsStepsInOrderAndCachesThem() throws {
        try ArchiveFixture.withTemp { dir in
            try Lib.write(dir + "/src/in.txt", "x\n")
            try Lib.write(dir + "/pipeline.yml", """
            steps:
              first:
                run: mkdir -p out && cp src/in.txt out/a.txt
                inputs: [src]
                outputs: [out/a.txt]
                cache: true
              second:
                run: cat out/a.txt out/a.txt > out/b.txt
                inputs: [out/a.txt]
                outputs: [out/b.txt]
                needs: [first]

            """)
            let file = try PipelineFile.load(dir + "/pipeline.yml")
            var options = PipelineRunner.Options()
            options.recordDir = dir + "/records"
            let cwd = FileManager.default.currentDirectoryPath
            FileManager.default.changeCurrentDirectoryPath(dir)
            defer { FileManager.default.changeCurrentDirectoryPath(cwd) }
            let run1 = try PipelineRunner(file: file, options: options, sinks: [FileStepRecordSink(directory: dir + "/records")], observer: nil).run()
            #expect(run1.status == .succeeded, "\(run1.steps.map { ($0.name, $0.status, $0.detail ?? "") })")
            #expect(try String(contentsOfFile: dir + "/out/b.txt", encoding: .utf8) == "x\nx\n")
            let run2 = try PipelineRunner(file: file, options: options, sinks: [FileStepRecordSink(directory: dir + "/records")], observer: nil).run()
            #expect(run2.steps.first { $0.name == "first" }?.why == "cache hit", "\(run2.steps.map(\.why))")
        }
    }

    @Test func historyQueryFiltersByTagCommitAndTimeAndLimits() throws {
        try ArchiveFixture.withTemp { dir in
            let store = try HistoryStore(at: dir + "/h")
            let m = try Lib.context(dir)
            var tagged = m
            tagged.metadata.gitCommit = "abc123"
            var old = BuildRecord(manifest: tagged, recordedNanos: 1_700_000_000_000_000_000)
            old.tags = ["release"]
            try store.add(old, tree: m.tree)
            var new = BuildRecord(manifest: m, recordedNanos: 1_800_000_000_000_000_000)
            new.tags = ["nightly"]
            try store.add(new, tree: m.tree)
            let all = try store.entries()
            #expect(all.count == 2)
            #expect(try HistoryQuery(tags: ["release"], commit: nil, since: nil, until: nil, limit: nil).apply(all).map(\.tags) == [["release"]])
            #expect(try HistoryQuery(tags: [], commit: "abc", since: nil, until: nil, limit: nil).apply(all).count == 1)
            #expect(try HistoryQuery(tags: [], commit: "abd", since: nil, until: nil, limit: nil).apply(all).isEmpty)
            #expect(try HistoryQuery(tags: [], commit: nil, since: "@1750000000", until: nil, limit: nil).apply(all).map(\.tags) == [["nightly"]])
            #expect(try HistoryQuery(tags: [], commit: nil, since: nil, until: "2025-01-01", limit: nil).apply(all).map(\.tags) == [["release"]])
            #expect(try HistoryQuery(tags: [], commit: nil, since: nil, until: nil, limit: 1).apply(all).map(\.tags) == [["nightly"]])
            #expect(try HistoryQuery(tags: [], commit: nil, since: nil, until: nil, limit: -3).apply(all).isEmpty)
            #expect(throws: ImprintError.self) { try HistoryQuery(tags: [], commit: nil, since: "yesterday", until: nil, limit: nil) }
        }
    }

    @Test func historyAddReadsEveryFileBeforePublishingAny() throws {
        try ArchiveFixture.withTemp { dir in
            let store = try HistoryStore(at: dir + "/h")
            _ = try Lib.context(dir)
            try Lib.write(dir + "/bad.json", "{\"not\": \"a manifest\"}")
            #expect(throws: ImprintError.self) {
                try store.add(manifestFiles: [dir + "/m.json", dir + "/bad.json"], tags: [], imageDigest: nil, stepFiles: [])
            }
            #expect(try store.entries().isEmpty)
            #expect(throws: ImprintError.self) {
                try store.add(manifestFiles: [dir + "/m.json"], tags: [], imageDigest: nil, stepFiles: [dir + "/missing.json"])
            }
            var heard: [HistoryEntry] = []
            let added = try store.add(manifestFiles: [dir + "/m.json"], tags: ["v1"], imageDigest: "sha256:" + String(repeating: "a", count: 64),
                                      stepFiles: []) { heard.append($0) }
            #expect(added == heard && added.count == 1 && added[0].tags == ["v1"])
        }
    }

    @Test func staleCopyCheckComparesWithTheRightRecord() throws {
        try ArchiveFixture.withTemp { dir in
            try Lib.write(dir + "/ctx/app.py", "print('v1')\n")
            func fingerprint() throws -> Manifest {
                var fp = Fingerprinter(context: dir + "/ctx")
                fp.recordFileTimes = true
                return try fp.run()
            }
            // No store yet: nothing to compare with, and no store is created.
            let none = StaleCopyCheck(against: nil, storeLocation: dir + "/h")
            #expect(none.baseline == .newestOfContext && !none.needsFileTimes(recording: false) && none.needsFileTimes(recording: true))
            #expect(try none.run(try fingerprint(), context: dir + "/ctx", predictCache: false).findings.isEmpty)
            #expect(!FileManager.default.fileExists(atPath: dir + "/h"))
            // Record v1, then change the bytes but keep size, mode and mtime.
            let m1 = try fingerprint()
            let store = try HistoryStore(at: dir + "/h")
            let e = try store.add(m1)
            try store.saveFileTimes(FileTimes(tree: m1.tree, context: dir + "/ctx"), record: e.record)
            var st = stat()
            #expect(stat(dir + "/ctx/app.py", &st) == 0)
            try Lib.write(dir + "/ctx/app.py", "print('v2')\n")
            var times = [st.st_atim, st.st_mtim]
            #expect(utimensat(AT_FDCWD, dir + "/ctx/app.py", &times, 0) == 0)
            let m2 = try fingerprint()
            let implicit = try StaleCopyCheck(against: nil, storeLocation: dir + "/h").run(m2, context: dir + "/ctx", predictCache: false)
            #expect(implicit.findings.map(\.path) == ["app.py"] && implicit.findings[0].kind == .cacheStaleRisk)
            let explicit = try StaleCopyCheck(against: "@", storeLocation: dir + "/h").run(m2, context: dir + "/ctx", predictCache: false)
            #expect(explicit.findings.map(\.path) == ["app.py"])
            #expect(try StaleCopyCheck(against: "none", storeLocation: dir + "/h").run(m2, context: dir + "/ctx", predictCache: false).findings.isEmpty)
            #expect(throws: ImprintError.self) { try StaleCopyCheck(against: "no-such-tag", storeLocation: dir + "/h").run(m2, context: dir + "/ctx", predictCache: false) }
            // A record without file times is named, not silently skipped.
            let bare = try store.add(m2, tags: ["bare"])
            let skipped = try StaleCopyCheck(against: "bare", storeLocation: dir + "/h").run(m2, context: dir + "/ctx", predictCache: false)
            #expect(skipped.findings.isEmpty && skipped.notes.count == 1 && skipped.notes[0].contains(bare.record.short))
            // An unreadable store does not fail the implicit check, but says so.
            try FileManager.default.removeItem(atPath: dir + "/h")
            try Lib.write(dir + "/h", "not a store")
            let broken = try StaleCopyCheck(against: nil, storeLocation: dir + "/h").run(m2, context: dir + "/ctx", predictCache: false)
            #expect(broken.findings.isEmpty && broken.notes.count == 1, "\(broken.notes)")
        }
    }

    @Test func fingerprintRequestEmitsRendersAndRecords() throws {
        try ArchiveFixture.withTemp { dir in
            try Lib.write(dir + "/ctx/app.py", "print('v1')\n")
            try Lib.write(dir + "/ctx/.dockerignore", "*.log\n")
            try Lib.write(dir + "/ctx/debug.log", "x\n")
            var request = FingerprintRequest(context: dir + "/ctx", historyLocation: dir + "/h")
            request.emit = ".imprint/manifest.json"
            request.record = true
            request.recordTags = ["v1"]
            request.quiet = true
            let first = try request.run()
            // Findings fail the command only with --strict: the result carries the status.
            #expect(first.findings.isEmpty && first.exitStatus == 0)
            try Lib.write(dir + "/ctx2/.env", "TOKEN=x\n")
            var strict = FingerprintRequest(context: dir + "/ctx2", historyLocation: dir + "/h2")
            #expect(try strict.run().exitStatus == 0)
            strict.strict = true
            let flagged = try strict.run()
            #expect(!flagged.findings.isEmpty && flagged.exitStatus == 1)
            // The emitted copy is written and left out of the digest it carries; ignored files are not listed.
            #expect(FileManager.default.fileExists(atPath: dir + "/ctx/.imprint/manifest.json"))
            #expect(try request.run().manifest.rootDigest == first.manifest.rootDigest)
            let sums = String(decoding: request.render(first, format: .sha256sum).joined(), as: UTF8.self)
            #expect(sums.contains("  app.py\n") && !sums.contains("debug.log") && !sums.contains(".imprint"))
            #expect(try Manifest.parse(Array(request.render(first, format: .json).joined()), source: "m").rootDigest == first.manifest.rootDigest)
            // Recorded with file times, so the next run compares with it: nothing changed, nothing to say.
            let entry = try request.recordInHistory(first)
            #expect(try HistoryStore(at: dir + "/h").resolve("v1").record == entry.record)
            let second = try request.run()
            #expect(second.staleFindings.isEmpty && second.notes.isEmpty)
            // A context that cannot be read is an error, not an empty manifest.
            #expect(throws: ImprintError.self) { try FingerprintRequest(context: dir + "/missing", historyLocation: dir + "/h").run() }
        }
    }

    @Test func fileBytesReadsRegularFilesAndPipes() throws {
        try ArchiveFixture.withTemp { dir in
            try Lib.write(dir + "/f", "hello")
            #expect(try FileBytes.read(dir + "/f") == Array("hello".utf8))
            #expect(try FileBytes.read(dir + "/missing") == nil)
            #expect(try FileBytes.read(dir) == nil)
            #expect(try FileBytes.prefix(dir + "/f", count: 3) == Array("hel".utf8))
            #expect(try FileBytes.prefix(dir + "/f", count: 99) == Array("hello".utf8))
            #expect(mkfifo(dir + "/fifo", 0o600) == 0)
            #expect(try FileBytes.read(dir + "/fifo") == nil) // not a regular file: not opened for a read that would block
            #expect(throws: ImprintError.self) { try readFile(dir + "/missing", what: "manifest") }
            try AtomicFile.append(Array("a".utf8), to: dir + "/log")
            try AtomicFile.append(Array("b".utf8), to: dir + "/log")
            #expect(try readFile(dir + "/log") == Array("ab".utf8))
            #expect(throws: ImprintError.self) { try AtomicFile.append([1], to: "/dev/full") }
        }
    }

    @Test func suggestionsNameTheClosestCommandOnlyForTypos() {
        let commands = ["fingerprint", "verify", "stamp", "diff", "history", "why", "ls"]
        #expect(Suggestion.closest(to: "fingerprnt", among: commands) == "fingerprint")
        #expect(Suggestion.closest(to: "verfy", among: commands) == "verify")
        #expect(Suggestion.closest(to: "deploy", among: commands) == nil)
        #expect(Suggestion.editDistance("", "abc") == 3 && Suggestion.editDistance("abc", "") == 3 && Suggestion.editDistance("kitten", "sitting") == 3)
    }

    @Test func usageErrorsNameTheMistypedCommand() {
        let tree: [String: [String]] = ["imprint": ["verify", "history"], "imprint history": ["list", "add"]]
        func subs(_ path: [String]) -> [String] { tree[path.joined(separator: " ")] ?? [] }
        #expect(Suggestion.unknownCommand(in: ["verfy", "x"], subcommands: subs) == "imprint: error: 'imprint' has no command 'verfy'; did you mean 'verify'?")
        #expect(Suggestion.unknownCommand(in: ["history", "--history", "-x", "lst"], subcommands: subs) == "imprint: error: 'imprint history' has no command 'lst'; did you mean 'list'?")
        #expect(Suggestion.unknownCommand(in: ["deploy"], subcommands: subs) == "imprint: error: 'imprint' has no command 'deploy'")
        // Every word a command, or a leaf's positional argument: no such line.
        #expect(Suggestion.unknownCommand(in: ["history", "list"], subcommands: subs) == nil)
        #expect(Suggestion.unknownCommand(in: ["verify", "image.tar"], subcommands: subs) == nil)
        #expect(Suggestion.errorLine("Error: Missing expected argument '<target>'") == "imprint: error: missing expected argument '<target>'")
        #expect(ProgressLine.label(arguments: ["history", "add", "m.json"]) == "imprint history add")
        #expect(ProgressLine.label(arguments: ["verify", "-", "--expect", "x"]) == "imprint verify")
        #expect(ProgressLine.label(arguments: ["verify", "-q", "x"]) == nil)
        #expect(ProgressLine.label(arguments: ["run", "--name", "s", "--", "cmd", "-q"]) == "imprint run")
    }

    @Test func keyPairFilesRefuseToReplaceUnlessAsked() throws {
        try ArchiveFixture.withTemp { dir in
            let files = KeyPairFiles(prefix: dir + "/ci.key")
            #expect(files.privateKeyPath == dir + "/ci.key" && files.publicKeyPath == dir + "/ci.pub")
            let key = try files.generate()
            #expect(try Ed25519PrivateKey(pemFile: files.privateKeyPath).keyId == key.keyId)
            #expect(try Ed25519PublicKey(pemFile: files.publicKeyPath).keyId == key.keyId)
            var st = stat()
            #expect(stat(files.privateKeyPath, &st) == 0 && st.st_mode & 0o777 == 0o600)
            #expect(throws: ImprintError.self) { try files.generate() }
            #expect(try Ed25519PrivateKey(pemFile: files.privateKeyPath).keyId == key.keyId)   // untouched
            #expect(try files.generate(replacing: true).keyId != key.keyId)
        }
    }

    @Test func historySelectionIsOrderedAndUnique() throws {
        try ArchiveFixture.withTemp { dir in
            let m = try Lib.context(dir)
            let store = try HistoryStore(at: dir + "/h")
            let a = try store.add(m, tags: ["a"])
            try Lib.write(dir + "/ctx/app.py", "print('v2')\n")
            let b = try store.add(try Fingerprinter(context: dir + "/ctx").run(), tags: ["b"])
            #expect(try store.select([]).map(\.record) == store.entries().map(\.record))
            #expect(try store.select(["b", "a", "@", "b"]).map(\.record) == [b.record, a.record])
            #expect(throws: ImprintError.self) { try store.select(["nope"]) }
        }
    }

    @Test func rolloutWaitLinesAndTable() throws {
        let want = SHA256.hash(Array("v2".utf8))
        let gate = try RolloutWait(url: "http://127.0.0.1:8080/healthz", expect: want.prefixed)
        let seen = RolloutWait.Observation(status: 200, field: "imprint.digest", value: want.prefixed, problem: nil, matches: true,
                                           digestMatches: true, instance: "web-1/42", started: nil)
        #expect(RolloutWaitFormat.pollLine(3, at: 1.25, url: gate.url, seen, gate: gate) == "poll 3 at 1.2 s [web-1/42]: HTTP 200, imprint.digest \(want.prefixed) (expected)")
        let table = [RolloutWait.InstanceState(instance: "web-1/42", url: gate.url, current: true, digest: want.prefixed, started: "2026-01-01T00:00:00Z", lastSeen: 1.25, answers: 3)]
        let done = RolloutWaitFormat.outcome(.complete(polls: 3, seconds: 1.25, last: seen), table: table, gate: gate)
        // A plain digest answer is the application's claim, and the outcome says that it was trusted.
        #expect(done.hasPrefix("rollout complete: http://127.0.0.1:8080/healthz serves \(want.prefixed), after 3 polls, 1.2 s\n  trusted: the application's own claim"))
        #expect(done.contains("  web-1/42") && done.contains("expected") && done.contains(String(want.hex.prefix(12))) && done.hasSuffix("  3\n"))
        let late = RolloutWaitFormat.outcome(.timedOut(polls: 1, seconds: 300, last: seen), table: [], gate: gate)
        #expect(late == "timed out after 300.0 s: last seen HTTP 200, imprint.digest \(want.prefixed) from http://127.0.0.1:8080/healthz, expected \(want.prefixed) (1 poll)\n")
    }

    @Test func stepRequestRecordsAndPassesTheStatusThrough() throws {
        try ArchiveFixture.withTemp { dir in
            try Lib.write(dir + "/src/in.txt", "x\n")
            var spec = StepSpec(name: "copy", argv: ["/bin/sh", "-c", "cp \(dir)/src/in.txt \(dir)/out.txt && echo done"],
                                materials: [dir + "/src"], products: [dir + "/out.txt"])
            spec.exclude = ["*.tmp"]
            var request = StepRequest(spec: spec)
            request.recordDir = dir + "/records"
            request.historyLocation = dir + "/no-history"
            var printed: [UInt8] = []
            request.onOutput = { _, buf in printed += buf }
            let ok = try request.run()
            #expect(ok.exitStatus == 0 && ok.record.status == .succeeded && String(decoding: printed, as: UTF8.self) == "done\n")
            let written = try StepRecord(json: try FileBytes.read(dir + "/records/copy.json") ?? [], what: "record")
            #expect(written.products.map(\.digest) == [SHA256.hash(Array("x\n".utf8))])
            #expect(!FileManager.default.fileExists(atPath: dir + "/no-history"))
            // The command succeeds but does not make its declared product: exit 1; a failing command: its status.
            request.spec.products = [dir + "/never.txt"]
            #expect(try request.run().exitStatus == 1)
            request.spec.argv = ["/bin/sh", "-c", "exit 7"]
            #expect(try request.run().exitStatus == 7)
            // A bad exclude pattern is refused before anything runs.
            request.spec.exclude = ["!"]
            #expect(throws: ImprintError.self) { try request.run() }
        }
    }

    @Test func pipelineRunSummaryIsSavedOrWarnedAbout() throws {
        try ArchiveFixture.withTemp { dir in
            let run = PipelineRun(file: "p.yml", startTime: "2026-01-01T00:00:00Z", endTime: "2026-01-01T00:00:01Z", durationMs: 1000,
                                  steps: [], signal: nil)
            #expect(run.save(recordDir: dir + "/records") == nil)
            #expect(try FileBytes.read(dir + "/records/pipeline-run.json") == run.jsonBytes())
            try Lib.write(dir + "/file", "x")
            #expect(run.save(recordDir: dir + "/file")?.hasPrefix("cannot write the run summary to \(dir)/file") == true)
        }
    }

    @Test func whyReportComparesBothBuilders() throws {
        try ArchiveFixture.withTemp { dir in
            try Lib.write(dir + "/ctx/app.py", "x")
            try Lib.write(dir + "/ctx/logs/a.log", "x")
            try Lib.write(dir + "/ctx/.dockerignore", "logs\n")
            let report = try WhyReport(paths: ["app.py", "logs/a.log"], context: dir + "/ctx")
            #expect(!report.allSent && report.other == .classic)
            #expect(report.text().hasPrefix("app.py: ") && report.text().contains("logs/a.log: "))
            let json = try JSONValue.parse(report.json(), what: "why")
            #expect(json["semantics"]?.string == "buildkit" && json["paths"]?.array?.count == 2)
        }
    }

    @Test func whyMapsCommandLinePathsIntoTheContextOnce() throws {
        try ArchiveFixture.withTemp { dir in
            try Lib.write(dir + "/ctx/src/app.py", "x\n")
            try Lib.write(dir + "/outside/f", "y\n")
            #expect(symlink(dir + "/ctx/src", dir + "/via") == 0)
            var r = ContextPathResolver(context: dir + "/ctx")
            #expect(r.relative(dir + "/ctx/src/app.py") == "src/app.py")
            #expect(r.relative(dir + "/ctx/./src/../src/app.py") == "src/app.py")
            #expect(r.relative(dir + "/via/app.py") == "src/app.py")  // the directory's link is followed
            #expect(r.relative(dir + "/outside/f") == dir + "/outside/f")  // not inside: taken as it is
            #expect(r.relative("src/app.py") == "src/app.py")  // context-relative already
            #expect(r.relative(dir + "/ctx/src/missing.py") == dir + "/ctx/src/missing.py")
            let targets = ContextExplainer.targets([dir + "/ctx/src", "src/app.py"], context: dir + "/ctx")
            #expect(targets.map(\.path) == ["src", "src/app.py"] && targets.map(\.isDirectory) == [true, false])
        }
    }
}
