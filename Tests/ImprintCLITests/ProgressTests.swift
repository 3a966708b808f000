import Foundation
import Testing

/// The progress line: log lines outside a terminal, a live line on one, nothing with --quiet.
@Suite struct ProgressTests {
    /// A context with a large file (hashed in chunks, so the line can say how long is left) and many small ones.
    func bigContext(_ dir: String) throws {
        try sh("mkdir -p \(dir)/ctx && head -c 400M /dev/zero > \(dir)/ctx/big.bin && for i in $(seq 1 300); do echo $i > \(dir)/ctx/f$i; done")
    }

    @Test func logLinesOutsideATerminalAndNoneWhenQuiet() throws {
        try withTempDir { dir in
            try bigContext(dir)
            // Shorter than the defaults (5 s, then every 5 s) so the test stays fast; the mechanism is the same.
            let env = ["IMPRINT_PROGRESS_AFTER": "0", "IMPRINT_PROGRESS_EVERY": "0.05"]
            let r = try imprint("fingerprint", dir + "/ctx", "--digest-only", env: env)
            #expect(r.status == 0)
            let lines = r.err.split(separator: "\n").filter { $0.hasPrefix("imprint fingerprint: ") }
            #expect(!lines.isEmpty, "no progress line: \(r.err)")
            #expect(lines.allSatisfy { $0.contains(" files, ") && $0.hasSuffix(")") && !$0.contains("\u{1B}") }, "\(lines)")
            // Results stay on stdout, unchanged.
            #expect(r.out == (try imprint("fingerprint", dir + "/ctx", "--digest-only").out))
            let quiet = try imprint("fingerprint", dir + "/ctx", "--digest-only", "-q", env: env)
            #expect(!quiet.err.contains("imprint fingerprint: "), "\(quiet.err)")
            // The same for reading a tar stream.
            try sh("tar -C \(dir)/ctx -cf \(dir)/ctx.tar .")
            try imprint("fingerprint", dir + "/ctx", "-q", "-o", dir + "/m.json")
            let v = try imprint("verify", "-", "--manifest", dir + "/m.json", stdinFile: dir + "/ctx.tar", env: env)
            #expect(v.status == 0 && v.err.contains("imprint verify: "), "\(v.err)")
            // A command done before the quiet period prints no progress at all.
            let fast = try imprint("fingerprint", dir + "/ctx", "--digest-only")
            #expect(!fast.err.contains("imprint fingerprint: "))
        }
    }

    @Test func aLiveLineOnATerminalClearedBeforeOutput() throws {
        try requireTool("script")
        try withTempDir { dir in
            try bigContext(dir)
            let r = try run("script", ["-qec", "\(TestEnv.imprintPath) fingerprint \(dir)/ctx --digest-only", "/dev/null"],
                            env: ["IMPRINT_PROGRESS_AFTER": "0", "IMPRINT_PROGRESS_EVERY": "0.05"])
            #expect(r.status == 0)
            #expect(r.out.contains("\r\u{1B}[Kimprint fingerprint: "), "\(r.out.debugDescription)")
            // The digest line starts on a cleared line.
            #expect(r.out.contains("\r\u{1B}[Ksha256:") || r.out.contains("\r\u{1B}[Kimprint: "), "\(r.out.debugDescription)")
        }
    }
}
