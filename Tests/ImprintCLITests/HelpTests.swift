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
                checked += 1
            } else {
                queue += nested.map { cmd + [$0] }
            }
        }
        #expect(checked >= 20)
    }

    @Test func usageErrorsExitTwo() throws {
        let r = try imprint("fingerprint", "--no-such-option")
        #expect(r.status == 2)
        #expect(r.err.hasPrefix("imprint: error: unknown option"))
        #expect(try imprint("verify").status == 2)
        #expect(try imprint("--version").status == 0)
    }
}
