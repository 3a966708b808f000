import Foundation
import ImprintFuzz
import Testing
@testable import ImprintCore

/// Replays every input libFuzzer ever found trapping, hanging or running out of memory (`ci/fuzz` appends them to
/// `Fixtures/fuzz-regressions.txt` as `TARGET BASE64` lines): each must now return normally. CI replays, it does not
/// fuzz. A trap here takes the test process down, which fails the run loudly.
@Suite struct FuzzRegressionTests {
    static let lines: [Substring] = {
        guard let url = try? Fixture.url("fuzz-regressions.txt") else { return [] }
        return ((try? String(contentsOf: url, encoding: .utf8)) ?? "").split(separator: "\n")
    }()

    static let inputs: [(target: String, data: [UInt8])] = {
        lines.compactMap { line in
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let d = Data(base64Encoded: String(parts[1])) else { return nil }
            return (String(parts[0]), Array(d))
        }
    }()

    @Test func everyTargetIsKnown() {
        #expect(FuzzEntryPoints.names == ["dockerignore", "gzip", "history-export", "history-object", "image-archive",
                                          "image-json", "manifest", "pyc", "registry", "tar"])
        for i in Self.inputs { #expect(FuzzEntryPoints.targets[i.target] != nil, "unknown target \(i.target)") }
    }

    @Test func theRegressionFileIsWellFormed() {
        // Every line is `TARGET BASE64`: a line that does not parse would silently not be replayed.
        #expect(Self.inputs.count == Self.lines.count, "\(Self.lines.count - Self.inputs.count) malformed lines in fuzz-regressions.txt")
        // The corpus of past findings is never emptied (a replay of an empty file is not a test): it holds at least
        // the two findings so far, the deep manifest and the deep tar.
        #expect(Self.inputs.count >= 2 && Set(Self.inputs.map(\.target)).isSuperset(of: ["manifest", "tar"]),
                "fuzz-regressions.txt holds \(Self.inputs.count) inputs")
        #expect((try? Fixture.url("fuzz-regressions.txt")) != nil)
    }

    @Test func findingsReplayWithoutTrapping() {
        for (target, data) in Self.inputs {
            let start = Deadline.now()
            FuzzEntryPoints.run(target, data)
            #expect(start.remaining > -5, "\(target) input of \(data.count) bytes took more than 5 s")
        }
    }

    /// Every target on a few hand-made hostile inputs, so each stays exercised even before it has findings.
    @Test(arguments: FuzzEntryPoints.names)
    func survivesHostileBasics(_ target: String) {
        let inputs: [[UInt8]] = [[], [0], Array(repeating: 0xFF, count: 1024), Array("{\"size\":-1}".utf8),
                                 Array(repeating: UInt8(ascii: "*"), count: 600) + [0] + Array(repeating: UInt8(ascii: "a"), count: 2000)]
        for i in inputs { FuzzEntryPoints.run(target, i) }
    }
}
