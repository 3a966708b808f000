import Testing
@testable import ImprintCore

/// Pipeline file parsing, durations and the combined artifact digest.
@Suite("PipelineFileTests")
struct PipelineFileTests {
    @Test(arguments: [("30s", 30.0), ("5m", 300), ("1h30m", 5400), ("90", 90), ("1.5s", 1.5), ("2h", 7200)])
    func durations(text: String, seconds: Double) throws {
        #expect(try PipelineFile.parseDuration(text, what: "t") == seconds)
    }

    @Test(arguments: ["", "soon", "5x", "m", "-3", "0", "5m3"])
    func badDurations(text: String) {
        #expect(throws: ImprintError.self) { try PipelineFile.parseDuration(text, what: "t") }
    }

    @Test func parsesStepsInFileOrderWithGlobals() throws {
        let f = try PipelineFile.parse("""
        exclude: [.git]
        env: {A: "1"}
        steps:
          z:
            run: echo z
            env: [HOME]
            cache: true
            timeout: 2m
          a:
            run: echo a
            inputs: ./src/
            outputs: [out//x]
            needs: [z]
            exclude: ["*.o"]
        """, path: "p.yml")
        #expect(f.steps.map(\.name) == ["z", "a"])
        #expect(f.steps[0].env == ["A": "1"] && f.steps[0].passEnv == ["HOME"] && f.steps[0].cache && f.steps[0].timeout == 120)
        #expect(f.steps[1].inputs == ["src"] && f.steps[1].outputs == ["out/x"])
        #expect(f.steps[1].exclude == [".git", "*.o"])
        #expect(f.steps[1].argv == ["/bin/sh", "-c", "echo a"])
        #expect(try f.selection("a") == ["a", "z"])
        #expect(try f.selection("z") == ["z"])
    }

    @Test func cycleIsNamed() {
        #expect {
            try PipelineFile.parse("steps:\n  a: {run: x, needs: [b]}\n  b: {run: x, needs: [c]}\n  c: {run: x, needs: [a]}\n", path: "p.yml")
        } throws: { ($0 as? ImprintError)?.message.contains("a -> b -> c -> a") == true }
    }

    @Test func combinedDigestIsOrderIndependent() {
        let a = Artifact(path: "b", kind: .file, digest: SHA256.hash([1]))
        let b = Artifact(path: "a", kind: .missing, digest: nil)
        #expect(Artifact.combinedDigest([a, b]) == Artifact.combinedDigest([b, a]))
        #expect(Artifact.combinedDigest([a]) != Artifact.combinedDigest([a, b]))
        #expect(Artifact.combinedDigest([]) == SHA256.hash([]))
    }

    @Test func timestampsAreRFC3339Milliseconds() {
        #expect(Clock.rfc3339(seconds: 0, millis: 5) == "1970-01-01T00:00:00.005Z")
        #expect(Clock.rfc3339(seconds: 1_700_000_000, millis: 123) == "2023-11-14T22:13:20.123Z")
    }
}
