import Foundation
import Testing

/// One command line: every subcommand, enumerated from the parser's own description, keeps the conventions.
@Suite struct ConventionsTests {
    struct Command {
        var path: [String]
        var options: Set<String>
        var formats: [String]
        var discussion: String
        var json: [String: Any]
    }

    static func commands() throws -> [Command] {
        let dump = try imprint("--experimental-dump-help")
        let root = (try jsonObject(dump.stdout))["command"] as? [String: Any] ?? [:]
        var out: [Command] = []
        func walk(_ c: [String: Any], _ path: [String]) {
            if (c["shouldDisplay"] as? Bool) == false { return }
            let subs = (c["subcommands"] as? [[String: Any]] ?? []).filter { ($0["commandName"] as? String) != "help" }
            if subs.isEmpty && path.count > 1 {
                var options = Set<String>(), formats: [String] = []
                for a in c["arguments"] as? [[String: Any]] ?? [] {
                    let names = (a["names"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
                    options.formUnion(names)
                    if names.contains("format") { formats = a["allValueStrings"] as? [String] ?? a["allValues"] as? [String] ?? [] }
                }
                out.append(Command(path: path, options: options, formats: formats, discussion: c["discussion"] as? String ?? "", json: c))
            }
            for s in subs { walk(s, path + [s["commandName"] as? String ?? "?"]) }
        }
        walk(root, ["imprint"])
        return out
    }

    /// Commands whose output is JSON (or can be).
    static let emitsJSON: Set<String> = ["fingerprint", "verify", "inspect", "diff", "run", "pipeline", "history list",
                                         "history show", "history diff", "history fsck"]

    @Test func everyCommandKeepsTheConventions() throws {
        let commands = try Self.commands()
        #expect(commands.count >= 24, "\(commands.map { $0.path.joined(separator: " ") })")
        for c in commands {
            let name = c.path.dropFirst().joined(separator: " ")
            #expect(c.options.contains("q") && c.options.contains("quiet"), "\(name): no -q/--quiet")
            #expect(c.discussion.contains("Exit status:"), "\(name): no documented exit status")
            #expect(c.discussion.contains("Example") && c.discussion.contains("imprint \(name) ") , "\(name): no example line")
            if Self.emitsJSON.contains(name) {
                #expect(c.formats.contains("json"), "\(name): JSON output without --format json (formats: \(c.formats))")
            }
            if c.options.contains("json") {
                #expect(c.formats.contains("json"), "\(name): --json without --format json")
            }
            // One error style for a usage error.
            let r = try imprint(Array(c.path.dropFirst()) + ["--no-such-option"])
            #expect(r.status == 2 && r.err.hasPrefix("imprint: error: "), "\(name): \(r.err)")
        }
    }

    /// The command line decides no exit status: each result carries its own (`ExitStatusReporting`), and one
    /// function ends a command with it; errors are exit 2 in one other place.
    @Test func oneFunctionEndsACommandWithItsStatus() throws {
        let dir = TestEnv.packageRoot.path + "/Sources/imprint"
        var sites: [String] = []
        for file in try FileManager.default.contentsOfDirectory(atPath: dir) where file.hasSuffix(".swift") {
            let lines = try String(contentsOfFile: dir + "/" + file, encoding: .utf8).split(separator: "\n")
            for line in lines where line.contains("ExitCode(") && !line.contains("ExitCode(2)") {
                sites.append("\(file): \(line.trimmingCharacters(in: .whitespaces))")
            }
        }
        #expect(sites == ["Support.swift: if status != 0 { throw ExitCode(status) }"], "\(sites.joined(separator: "\n"))")
    }

    @Test func aMistypedCommandGetsASuggestion() throws {
        let r = try imprint("fingerprnt", ".")
        #expect(r.status == 2 && r.err.hasPrefix("imprint: error: 'imprint' has no command 'fingerprnt'; did you mean 'fingerprint'?"), "\(r.err)")
        let h = try imprint("history", "lst")
        #expect(h.status == 2 && h.err.contains("did you mean 'list'?"), "\(h.err)")
        let none = try imprint("zzzzzzzz")
        #expect(none.status == 2 && none.err.hasPrefix("imprint: error: 'imprint' has no command 'zzzzzzzz'") && !none.err.contains("did you mean"))
    }

    @Test func sourceArgumentsListTheirForms() throws {
        for cmd in ["verify", "inspect", "extract", "diff"] {
            let help = try imprint(cmd, "--help").out.replacingOccurrences(of: "\n", with: " ")
                .replacingOccurrences(of: "  ", with: " ").replacingOccurrences(of: "  ", with: " ")
            for form in ["registry://", "docker:NAME", "pid:N", "oci-archive", "docker-archive", "stdin"] {
                #expect(help.contains(form), "\(cmd) --help does not mention \(form)")
            }
        }
    }

    @Test func printedDigestsAreLabelled() throws {
        try withTempDir { dir in
            try writeFile(dir + "/ctx/a.txt", "a\n")
            let r = try imprint("fingerprint", dir + "/ctx", "-o", dir + "/m.json", "--record", "--history", dir + "/h")
            #expect(r.err.contains("imprint: context digest sha256:") && r.err.contains("recorded as history record sha256:"), "\(r.err)")
            let q = try imprint("fingerprint", dir + "/ctx", "-o", dir + "/m.json", "--record", "--history", dir + "/h", "-q")
            #expect(q.err.isEmpty, "\(q.err)")
        }
    }
}
