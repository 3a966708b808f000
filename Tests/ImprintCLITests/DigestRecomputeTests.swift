import Foundation
import Testing

/// The root digest is documented in schemas/DIGEST.md; recompute it with coreutils only.
@Suite struct DigestRecomputeTests {
    static func script() throws -> String {
        let doc = try String(contentsOfFile: TestEnv.packageRoot.appendingPathComponent("schemas/DIGEST.md").path, encoding: .utf8)
        // The shell function is the fenced block that defines treehash().
        let blocks = doc.components(separatedBy: "```sh\n")
        let block = blocks.first { $0.contains("treehash()") }!
        return block.components(separatedBy: "```")[0]
    }

    @Test func coreutilsRecomputesTheRootDigest() throws {
        try requireTool("sha256sum")
        let fn = try Self.script()
        try withTempDir { tmp in
            try FingerprintTests.makeContext(tmp)
            try FileManager.default.removeItem(atPath: tmp + "/debug.log")
            try FileManager.default.removeItem(atPath: tmp + "/.dockerignore")
            try sh("mkdir -p deep/a/b/c && printf 'z' > deep/a/b/c/z && chmod 4755 run.sh && ln -s 'odd target ' odd", cwd: tmp)
            let ours = try imprint("fingerprint", tmp, "--digest-only", "-q")
            #expect(ours.status == 0)
            let theirs = try sh(fn + "\ntreehash .", cwd: tmp, env: ["LC_ALL": "C"])
            #expect("sha256:" + theirs.out == ours.out)
        }
    }

    @Test func coreutilsRecomputesThisRepositorysDigest() throws {
        let fn = try Self.script()
        try withTempDir { tmp in
            try sh("cd '\(TestEnv.packageRoot.path)' && tar --exclude='./.build*' --exclude=./.git -cf - Sources schemas | tar -xf - -C \(tmp)")
            let ours = try imprint("fingerprint", tmp, "--digest-only", "-q")
            let theirs = try sh(fn + "\ntreehash .", cwd: tmp)
            #expect("sha256:" + theirs.out == ours.out)
        }
    }
}
