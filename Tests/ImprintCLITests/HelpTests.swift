import Foundation
import Testing

/// Every command documents itself with at least one runnable example.
@Suite struct HelpTests {
    static func subcommands(_ args: [String]) throws -> [String] {
        let help = try imprint(args + ["--help"]).out
        guard let range = help.range(of: "SUBCOMMANDS:") else { return [] }
        return help[range.upperBound...].split(separator: "\n").compactMap { line in
            let t = line.trimmingCharacters(in: .whitespaces)
            guard line.hasPrefix("  "), !line.hasPrefix("    "), let word = t.split(separator: " ").first,
                  !t.hasPrefix("See ") else { return nil }
            return String(word)
        }
    }

    @Test func everyCommandHasHelpWithAnExample() throws {
        var checked = 0
        var queue: [[String]] = try Self.subcommands([]).map { [$0] }
        #expect(queue.count >= 15)
        while let cmd = queue.popLast() {
            let r = try imprint(cmd + ["--help"])
            #expect(r.status == 0, "\(cmd)")
            let nested = try Self.subcommands(cmd)
            if nested.isEmpty {
                // The example must be in the discussion, above the USAGE line (which always names the command).
                let discussion = r.out.components(separatedBy: "USAGE:").first ?? ""
                #expect(discussion.contains("imprint \(cmd.joined(separator: " ")) ") || discussion.contains("imprint \(cmd.joined(separator: " "))\n"),
                        "imprint \(cmd.joined(separator: " ")) --help shows no example above its USAGE line")
                #expect(r.out.contains("OPTIONS:") || r.out.contains("ARGUMENTS:"))
                // A line continuation written as `\\` in the source shows as a backslash at the end of a line.
                let stray = r.out.split(separator: "\n").filter { $0.hasSuffix("\\") }
                #expect(stray.isEmpty, "imprint \(cmd.joined(separator: " ")) --help prints a literal backslash: \(stray)")
                checked += 1
            } else {
                queue += nested.map { cmd + [$0] }
            }
        }
        #expect(checked >= 20)
    }

    /// `imprint help NAME` for a name that is no command says so, with the nearest, and exits 2 (not the root help
    /// and 0, which a script cannot tell from success).
    @Test func helpForAnUnknownCommandIsAnError() throws {
        let r = try imprint("help", "verfy")
        #expect(r.status == 2 && r.err.contains("no command 'verfy'") && r.err.contains("did you mean 'verify'?") && r.out.isEmpty, "\(r.status) \(r.err)")
        let nested = try imprint("help", "history", "lst")
        #expect(nested.status == 2 && nested.err.contains("'imprint history' has no command 'lst'; did you mean 'list'?"), "\(nested.err)")
        let ok = try imprint("help", "watch")
        #expect(ok.status == 0 && ok.out.contains("imprint watch"))
    }

    /// A subcommand is parsed from itself down (ArgumentParser's root parse reflects the whole tree first); help in
    /// every spelling and the root's flags still answer as from the root, naming the command's whole path.
    @Test func helpInEverySpellingNamesTheWholePath() throws {
        // `-help` is also `-h -e -l -p`, a usage error for a command with one of those short options (`history list`
        // has `-l`), so it is asked only of commands without them.
        for (path, extra) in [(["fingerprint"], ["-help"]), (["history"], ["-help"]), (["history", "list"], [])] {
            for flag in ["-h", "--help", "--help-hidden"] + extra {
                let r = try imprint(path + [flag])
                #expect(r.status == 0 && r.out.contains("USAGE: imprint \(path.joined(separator: " "))"),
                        "imprint \(path.joined(separator: " ")) \(flag): \(r.status) \(r.out.prefix(200))")
            }
        }
        let version = try imprint("fingerprint", "--version")
        #expect(version.status == 0 && version.out.hasPrefix("imprint "), "\(version.out)")
        let wrong = try imprint("history", "list", "--no-such-option")
        #expect(wrong.status == 2 && wrong.err.contains("Usage: imprint history list"), "\(wrong.err)")
    }

    @Test func usageErrorsExitTwo() throws {
        let r = try imprint("fingerprint", "--no-such-option")
        #expect(r.status == 2)
        #expect(r.err.hasPrefix("imprint: error: unknown option"))
        #expect(try imprint("verify").status == 2)
        #expect(try imprint("--version").status == 0)
    }
}
