import Foundation
import ImprintCore
import Testing

/// The unified diffs `imprint diff` shows, with GNU patch as the judge: applied to A, each must give B exactly, and
/// its size must be GNU diff's minimal one (`diff --minimal`).
@Suite struct UnifiedDiffTests {
    static func shell(_ script: String, cwd: String) throws -> (status: Int32, out: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", script]
        p.currentDirectoryURL = URL(fileURLWithPath: cwd)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func patchAppliesEveryDiffAndItIsMinimal() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imprint-udiff-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SystemRandomNumberGenerator()
        let seed = UInt64.random(in: 0..<UInt64.max, using: &rng)
        var state = seed
        func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        for round in 0..<150 {
            // Few distinct lines, so matches are ambiguous and hunks meet.
            let count = next(60)
            let a = (0..<count).map { _ in "line \(next(8))" }
            var b = a
            for _ in 0..<next(12) {
                let op = next(3), at = b.isEmpty ? 0 : next(b.count)
                if op == 0 || b.isEmpty { b.insert("new \(next(5))", at: at) } else if op == 1 { b.remove(at: at) } else { b[at] = "changed \(next(5))" }
            }
            let ta = a.map { $0 + "\n" }.joined(), tb = b.map { $0 + "\n" }.joined()
            guard let d = UnifiedDiff.make(ta, tb, pathA: "a/f", pathB: "b/f") else {
                Issue.record("no diff (seed \(seed), round \(round))"); continue
            }
            if ta == tb {
                #expect(d.added + d.removed == 0 && !d.text.contains("@@"), "seed \(seed) round \(round)")
                continue
            }
            try ta.write(toFile: dir + "/f", atomically: true, encoding: .utf8)
            try tb.write(toFile: dir + "/g", atomically: true, encoding: .utf8)
            try d.text.write(toFile: dir + "/p.diff", atomically: true, encoding: .utf8)
            let applied = try Self.shell("patch -s -p1 --dry-run -o out f < p.diff >/dev/null 2>&1; patch -s -o out f < p.diff >/dev/null 2>&1 && cmp -s out g && echo same", cwd: dir)
            #expect(applied.out.contains("same"), "seed \(seed) round \(round): patch did not give B\n\(d.text)")
            let gnu = try Self.shell("diff --minimal f g | grep -c '^[<>]' || true", cwd: dir)
            #expect(Int(gnu.out.trimmingCharacters(in: .whitespacesAndNewlines)) == d.added + d.removed,
                    "seed \(seed) round \(round): \(d.added + d.removed) lines changed, GNU diff --minimal \(gnu.out)")
        }
    }

    @Test func textBinaryAndTruncation() {
        let same = UnifiedDiff.make("a\nb\n", "a\nb\n", pathA: "a", pathB: "b")
        #expect(same?.added == 0 && same?.removed == 0)
        let noNewline = UnifiedDiff.make("a\nb", "a\nc", pathA: "a/x", pathB: "b/x")
        #expect(noNewline?.text == "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n\\ No newline at end of file (a)\n\\ No newline at end of file (b)\n")
        // CRLF text: lines split at LF as diff does (in Swift "\r\n" is a single Character).
        let crlf = UnifiedDiff.make("a\r\nb\r\nc\r\n", "a\r\nB\r\nc\r\n", pathA: "a/w", pathB: "b/w")
        #expect(crlf?.text == "--- a/w\n+++ b/w\n@@ -1,3 +1,3 @@\n a\r\n-b\r\n+B\r\n c\r\n", "\(String(describing: crlf?.text))")
        let bin = UnifiedDiff.compare(path: "/x", a: .init(bytes: [1, 2, 0, 4], complete: true), b: .init(bytes: [1, 2, 0, 5], complete: true))
        #expect(bin.kind == .binary && bin.firstDifference == 3)
        let partial = UnifiedDiff.compare(path: "/t", a: .init(bytes: Array("x\n".utf8), complete: false), b: .init(bytes: Array("y\n".utf8), complete: true))
        #expect(partial.kind == .text && partial.note?.contains("--max-diff-bytes") == true)
        #expect(UnifiedDiff.compare(path: "/u", a: nil, b: .init(bytes: [], complete: true)).kind == .unavailable)
    }
}

/// Package databases read as their package managers write them.
@Suite struct PackageInventoryTests {
    @Test func recordHashesAreCheckedAgainstTheTree() {
        let tree = Tree()
        let good = Array("VERSION = '2.0'\n".utf8), edited = Array("patched\n".utf8)
        let original = Array("def helper():\n    return 'helper 2.0'\n".utf8)
        _ = tree.insert(Array("sp/demo_pkg/__init__.py".utf8), TreeNode(type: .file, mode: 0o644, size: UInt64(good.count), digest: SHA256.hash(good)))
        _ = tree.insert(Array("sp/demo_pkg/util.py".utf8), TreeNode(type: .file, mode: 0o644, size: UInt64(edited.count), digest: SHA256.hash(edited)))
        func b64(_ bytes: [UInt8]) -> String {
            Data(SHA256.hash(bytes).bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        // As pip writes it: Python's csv module ends lines in CRLF.
        let record = "demo_pkg/__init__.py,sha256=\(b64(good)),\(good.count)\r\ndemo_pkg/util.py,sha256=\(b64(original)),\(original.count)\r\n"
            + "demo_pkg/gone.py,sha256=\(b64(original)),1\r\ndemo_pkg-2.0.dist-info/RECORD,,\r\n"
        let files: [Bytes: SourceContent.File] = [Array("sp/demo_pkg-2.0.dist-info/RECORD".utf8): .init(bytes: Array(record.utf8), complete: true)]
        let m = PackageInventory.recordMismatches(tree, files: files, side: "b")
        #expect(m.map(\.path) == ["/sp/demo_pkg/gone.py", "/sp/demo_pkg/util.py"], "\(m)")
        #expect(m.last?.actual == SHA256.hash(edited).hex && m.first?.actual == nil && m.last?.package == "demo_pkg-2.0")
    }

    @Test func dpkgApkPythonAndNpmRecords() {
        let status = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\nDescription: x\n continuation: y\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a\n"
        let files: [Bytes: SourceContent.File] = [
            Array("var/lib/dpkg/status".utf8): .init(bytes: Array(status.utf8), complete: true),
            Array("lib/apk/db/installed".utf8): .init(bytes: Array("C:Q1x\nP:musl\nV:1.2.4-r2\n\nP:busybox\nV:1.36.1-r5\n".utf8), complete: true),
            Array("usr/lib/python3/site-packages/Demo_Pkg-2.0.dist-info/METADATA".utf8): .init(bytes: Array("Metadata-Version: 2.1\nName: Demo_Pkg\nVersion: 2.0\n\nName: not this\n".utf8), complete: true),
            Array("app/node_modules/@scope/left-pad/package.json".utf8): .init(bytes: Array(#"{"name": "@scope/left-pad", "version": "1.3.0"}"#.utf8), complete: true),
        ]
        let p = PackageInventory.packages(files).map { "\($0.ecosystem.rawValue) \($0.name) \($0.version)" }
        #expect(p == ["apk busybox 1.36.1-r5", "apk musl 1.2.4-r2", "deb libc6:amd64 2.36-9", "deb tzdata 2024a", "npm @scope/left-pad 1.3.0", "python demo-pkg 2.0"], "\(p)")
    }
}
