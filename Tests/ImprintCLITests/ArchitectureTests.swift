import Foundation
import Testing

/// ARCHITECTURE.md is the map: every library target and folder it names exists, and every one that exists is
/// named; `ci/layers.py` finds no cycle between folders and no edge to a higher layer.
@Suite struct ArchitectureTests {
    static let targets = ["ImprintBase", "ImprintFormats", "ImprintModel", "ImprintSources", "ImprintCompare", "ImprintCore"]

    @Test func theMapNamesExactlyTheTargetsAndFolders() throws {
        let root = TestEnv.packageRoot.path
        let text = try String(contentsOfFile: root + "/ARCHITECTURE.md", encoding: .utf8)
        var named: [String: Set<String>] = [:]
        var current: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("### ") { current = String(line.dropFirst(4)); named[current!] = []; continue }
            if line.hasPrefix("## ") { current = nil; continue }
            if let t = current, line.hasPrefix("- **"), let end = line.dropFirst(4).firstIndex(of: "*") {
                named[t]!.insert(String(line.dropFirst(4)[..<end]))
            }
        }
        #expect(Set(named.keys) == Set(Self.targets), "ARCHITECTURE.md sections: \(named.keys.sorted())")
        let fm = FileManager.default
        for t in Self.targets {
            var isDir: ObjCBool = false
            let folders = try fm.contentsOfDirectory(atPath: root + "/Sources/" + t)
                .filter { fm.fileExists(atPath: root + "/Sources/\(t)/\($0)", isDirectory: &isDir) && isDir.boolValue }
            #expect(Set(folders) == named[t] ?? [], "\(t): on disk \(folders.sorted()), in ARCHITECTURE.md \((named[t] ?? []).sorted())")
        }
        // Package.swift declares the same library targets, bottom to top, each depending on the one below.
        let manifest = try String(contentsOfFile: root + "/Package.swift", encoding: .utf8)
        var last = manifest.startIndex
        for (i, t) in Self.targets.enumerated() {
            guard let r = manifest.range(of: "name: \"\(t)\"", range: last..<manifest.endIndex) else {
                Issue.record("Package.swift does not declare \(t) after \(i == 0 ? "the start" : Self.targets[i - 1])"); return
            }
            if i > 0 {
                let deps = manifest[r.upperBound...].prefix { $0 != ")" }
                #expect(deps.contains("\"\(Self.targets[i - 1])\""), "\(t) does not depend on \(Self.targets[i - 1])")
                for higher in Self.targets[i...] { #expect(!deps.contains("\"\(higher)\""), "\(t) depends on \(higher)") }
            }
            last = r.upperBound
        }
    }

    /// The layers serve this package (the command line, the benchmark, the tests): their declarations are `package`.
    /// The one public surface is the fuzz entry points, for the separate libFuzzer package in ci/fuzzing.
    @Test func onlyTheFuzzEntryPointsArePublic() throws {
        let root = TestEnv.packageRoot.path
        let declaration = try Regex(#"^\s*(@[\w.]+(\([^)]*\))?\s+)*((final|nonisolated(\(unsafe\))?|static|indirect)\s+)*(public|open)\s"#)
        var found: [String] = []
        for t in Self.targets {
            let dir = root + "/Sources/" + t
            for case let file as String in FileManager.default.enumerator(atPath: dir)! where file.hasSuffix(".swift") {
                let lines = try String(contentsOfFile: dir + "/" + file, encoding: .utf8).split(separator: "\n")
                for (i, line) in lines.enumerated() where line.firstMatch(of: declaration) != nil {
                    found.append("\(t)/\(file):\(i + 1): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        #expect(found.isEmpty, "public declarations in the layers:\n\(found.prefix(20).joined(separator: "\n"))")
        let fuzz = try String(contentsOfFile: root + "/Sources/ImprintFuzz/FuzzEntryPoints.swift", encoding: .utf8)
        #expect(fuzz.contains("public enum FuzzEntryPoints"))
    }

    @Test func noFolderCycleAndNoUpwardEdge() throws {
        let r = try run("python3", [TestEnv.packageRoot.path + "/ci/layers.py"])
        #expect(r.status == 0 && r.out.contains("OK: no cycle"), "\(r.out.split(separator: "\n").suffix(10).joined(separator: "\n"))")
    }
}

/// `ci/test --fast` skips what needs more than this machine's build: every test that starts an engine or a builder,
/// a registry, a browser or the release build carries the tag that says so.
@Suite struct TestTagTests {
    @Test func testsThatNeedRealInfrastructureAreTagged() throws {
        let needs: [(tag: String, pattern: String)] = [("engine", "ContainerEngine("), ("engine", "buildWithBuildah("), ("engine", "BuiltImage.get("),
                                                       ("registry", "LocalRegistry("), ("browser", "chromium"), ("release", "Release.shared(")]
        let dir = TestEnv.packageRoot.path + "/Tests/ImprintCLITests"
        var untagged: [String] = []
        var tagged = 0
        for file in try FileManager.default.contentsOfDirectory(atPath: dir) where file.hasSuffix("Tests.swift") && file != "ArchitectureTests.swift" {
            let text = try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
            // Each test: its attribute and its body up to the next test.
            let parts = text.components(separatedBy: "@Test").dropFirst()
            for part in parts {
                guard let name = part.range(of: "func ").map({ part[$0.upperBound...].prefix { $0.isLetter || $0.isNumber } }) else { continue }
                let attribute = part.prefix { $0 != "\n" }
                for need in needs where part.contains(need.pattern) {
                    if attribute.contains(".\(need.tag)") { tagged += 1 } else { untagged.append("\(file): \(name) needs .\(need.tag)") }
                }
            }
        }
        #expect(tagged > 10)
        #expect(untagged.isEmpty, "\(untagged.joined(separator: "\n"))")
    }
}

@Suite struct WatchdogTests {
    /// A command that hangs fails its test in bounded time, and nothing it started outlives it.
    @Test func aHangingCommandIsKilledWithItsChildrenAndRecorded() throws {
        try withTempDir { dir in
            let start = Date()
            var reported: String?
            let result = try run("/bin/bash", ["-c", "sleep 300 & echo $! > '\(dir)/child'; wait"], timeout: 1) { reported = $0 }
            #expect(reported?.contains("did not finish within 1 s; killed") == true, "\(String(describing: reported))")
            #expect(Date().timeIntervalSince(start) < 20)
            #expect(result.status != 0)
            let child = try String(contentsOfFile: dir + "/child", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            usleep(200_000)
            // The grandchild is gone too (no /proc entry, or a zombie already reaped by init).
            let state = (try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8)) ?? ""
            #expect(state.isEmpty || state.contains(") Z "), "sleep \(child) still runs: \(state)")
        }
    }
}
