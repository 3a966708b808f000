import Foundation
import Testing

/// `imprint why` and `imprint ls` from the command line: verdicts, deciding lines, the legacy builder's
/// differences, JSON that validates, exit statuses.
@Suite struct WhyLsTests {
    func context(_ dir: String) throws {
        try writeFile(dir + "/ctx/src/app.py", "print(1)\n")
        try writeFile(dir + "/ctx/src/deep/keep.txt", "k\n")
        try writeFile(dir + "/ctx/node_modules/a/index.js", String(repeating: "x", count: 4096))
        try writeFile(dir + "/ctx/.env", "SECRET=1\n")
        try writeFile(dir + "/ctx/.dockerignore", "node_modules\n.env\nsrc\n!**/keep.txt\n")
    }

    @Test func whyNamesTheDecidingLineAndTheLegacyBuildersDifference() throws {
        try withTempDir { dir in
            try context(dir)
            let r = try imprint(["why", "node_modules/a/index.js", ".env", "src/deep/keep.txt", "src/app.py", "--context", dir + "/ctx"])
            #expect(r.status == 1, "some paths are not sent: \(r.out)")
            let lines = r.out.split(separator: "\n").map(String.init)
            // BuildKit enters node_modules (an exception elsewhere could re-include something in it), and the file
            // is excluded by the line that excluded its directory.
            #expect(lines.contains { $0.hasPrefix("node_modules/a/index.js: excluded by .dockerignore:1 `node_modules`") }, "\(r.out)")
            #expect(lines.contains { $0.hasPrefix(".env: excluded by .dockerignore:2 `.env`") }, "\(r.out)")
            #expect(lines.contains { $0.hasPrefix("src/deep/keep.txt: included: re-included by .dockerignore:4 `!**/keep.txt`") }, "\(r.out)")
            // The legacy builder enters an excluded directory only for exceptions under its own prefix.
            #expect(r.out.contains("the legacy builder decides otherwise: excluded: its directory src is excluded"), "\(r.out)")
            let json = try imprint(["why", "src/deep/keep.txt", "--context", dir + "/ctx", "--format", "json"])
            #expect(json.status == 0)
            try expectValidJSON(json.stdout, schema: "why.schema.json")
            let classic = try imprint(["why", "src/deep/keep.txt", "--context", dir + "/ctx", "--ignore-semantics", "classic"])
            #expect(classic.status == 1 && classic.out.contains("BuildKit decides otherwise: included"), "\(classic.out)")
            // The verdict is the fingerprint's: keep.txt is in the manifest, app.py is not.
            let m = try imprint("fingerprint", dir + "/ctx", "--format", "sha256sum")
            #expect(m.out.contains("src/deep/keep.txt") && !m.out.contains("src/app.py"))
        }
    }

    @Test func lsListsWhatIsSentAndWhatEachRuleKeepsOut() throws {
        try withTempDir { dir in
            try context(dir)
            let r = try imprint(["ls", dir + "/ctx", "--excluded"])
            #expect(r.status == 0)
            let sentPart = r.out.components(separatedBy: "\nsent: ")[0]
            #expect(sentPart.contains("src/deep/keep.txt") && !sentPart.contains("app.py"), "\(r.out)")
            #expect(r.out.contains("4.0 KiB     1 files  .dockerignore:1 `node_modules`  node_modules"), "\(r.out)")
            let json = try imprint(["ls", dir + "/ctx", "--format", "json"])
            try expectValidJSON(json.stdout, schema: "ls.schema.json")
            let o = try jsonObject(json.stdout)
            #expect((o["excluded"] as? [String: Any])?["bytes"] as? Int == 4096 + 9 + 9, "\(o["excluded"] ?? "")")
            let tree = try imprint(["ls", dir + "/ctx", "--tree"])
            #expect(tree.out.contains("\n      keep.txt\n") || tree.out.contains("    keep.txt"), "\(tree.out)")
            #expect(try imprint(["ls", dir + "/nope"]).status == 2)
        }
    }
}
