import Foundation
import Testing

/// Pieces working together: runner → history, stamp → verify, fingerprint → history → verify.
@Suite struct IntegrationTests {
    @Test func stepRecordsGoIntoHistoryWhenItExists() throws {
        try withTempDir { tmp in
            let history = tmp + "/history"
            try sh("mkdir -p in && printf x > in/a", cwd: tmp)
            // Create the store, then run a step: its record lands in the store too.
            #expect(try imprint("fingerprint", tmp + "/in", "--record", "-q", "--digest-only", env: ["IMPRINT_HISTORY": history]).status == 0)
            let r = try imprint(["run", "--name", "build", "--materials", "in", "--products", "out", "--", "sh", "-c", "mkdir -p out && cp in/a out/b"],
                                cwd: tmp, env: ["IMPRINT_HISTORY": history])
            #expect(r.status == 0, "\(r.err)")
            let list = try imprint("history", "list", "--tag", "step:build", "--json", env: ["IMPRINT_HISTORY": history])
            #expect(list.status == 0)
            let entries = try JSONSerialization.jsonObject(with: list.stdout)
            let count = (entries as? [Any])?.count ?? ((entries as? [String: Any])?["records"] as? [Any])?.count ?? 0
            #expect(count == 1, "\(list.out)")
            // In text, the build record and the step record are listed apart, each table with its header.
            let text = try imprint("history", "list", env: ["IMPRINT_HISTORY": history]).out
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            #expect(lines.first?.hasPrefix("RECORD  ") == true && lines.first?.contains("CONTEXT") == true, "\(text)")
            #expect(lines.count == 7 && lines[3] == "step records (imprint run, imprint pipeline):" && lines[4].hasSuffix("STEP")
                    && lines[5].hasSuffix("build"), "\(text)")
        }
    }
}
