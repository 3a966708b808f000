import ArgumentParser
import Foundation
import ImprintCore
#if canImport(Glibc)
import Glibc
#endif

@main
struct ImprintCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "imprint",
        abstract: "Prove the code running in a container is byte-for-byte the code that was built.",
        discussion: """
        Jobs:
          CI, before push:   imprint fingerprint . -o manifest.json && imprint stamp oci:image --manifest manifest.json
          after deploy:      docker export CONTAINER | imprint verify - --expect sha256:…
          forensics:         imprint diff old-image.tar new-image.tar

        Exit status: 0 ok, 1 a difference or finding was reported, 2 bad input or failure.
        """,
        version: versionLine,
        subcommands: [
            Fingerprint.self,
            Stamp.self,
            Verify.self,
            Extract.self,
            Inspect.self,
            Diff.self,
            Run.self,
            Pipeline.self,
            History.self,
            Wait.self,
            Keygen.self,
            Sign.self,
            VerifySignature.self,
            Attach.self,
            FetchManifest.self,
            Probe.self,
            Why.self,
            Ls.self,
        ]
    )

    static var versionLine: String { "imprint \(Imprint.version) (\(SHA256.libraryVersion))" }

    /// Runs the command like ArgumentParser's default `main`, except that usage errors (which ArgumentParser
    /// reports with EX_USAGE, 64) exit 2 like every other kind of bad input.
    /// When the command started: registry deadlines (--deadline, IMPRINT_DEADLINE) count from here.
    static let started = Deadline.now()

    static func main() {
        // `imprint --version` is what install checks and CI logs run most: answer it before ArgumentParser
        // builds the command tree (that walk costs a few milliseconds of protocol-conformance lookups).
        if CommandLine.arguments.count == 2, CommandLine.arguments[1] == "--version" {
            Console.out(versionLine)
            return
        }
        // A peer that goes away must be an error to handle (EPIPE), never a signal that kills the process
        // mid-write; stdout handles EPIPE itself (Console.outRaw).
        signal(SIGPIPE, SIG_IGN)
        Console.guardStandardDescriptors()
        _ = started
        do {
            // Synchronous all the way: an async main would end in dispatch_main(), whose pthread_exit needs
            // libgcc_s.so.1 at run time, which a glibc-only container does not have.
            var command = try parseAsRoot()
            startProgress(for: command)
            try command.run()
        } catch {
            // An ExitCode thrown on purpose (`imprint run` passing its child's status through) is kept as is.
            if !(error is ExitCode), exitCode(for: error) == .validationFailure {
                Console.err(usageMessage(for: error, arguments: Array(CommandLine.arguments.dropFirst())))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }

    /// The progress line, for every command but those with live output of their own (a child process's, a
    /// rollout's polls) and unless --quiet was given.
    static func startProgress(for command: ParsableCommand) {
        let args = CommandLine.arguments.dropFirst().prefix { $0 != "--" }
        if args.contains("-q") || args.contains("--quiet") { Console.quiet = true; return }
        if command is Run || command is Pipeline || command is Wait { return }
        let words = Array(CommandLine.arguments.dropFirst().prefix { !$0.hasPrefix("-") }.prefix(2))
        var label = "imprint " + (words.first ?? "")
        if words.count == 2, ["history", "probe"].contains(words[0]) { label += " " + words[1] }
        ProgressLine.shared.start(label: label)
    }

    /// A usage error in imprint's one error style (`imprint: error: …`), with the closest subcommand when a
    /// command name was mistyped.
    static func usageMessage(for error: Error, arguments: [String]) -> String {
        var lines = fullMessage(for: error).components(separatedBy: "\n")
        if let first = lines.first, first.hasPrefix("Error: ") {
            lines[0] = "imprint: error: " + first.dropFirst("Error: ".count).prefix(1).lowercased() + first.dropFirst("Error: ".count + 1)
        }
        // The deepest command the arguments name, and the word after it.
        var command: ParsableCommand.Type = ImprintCommand.self
        var path = ["imprint"]
        for word in arguments where !word.hasPrefix("-") {
            let subs = command.configuration.subcommands
            if let next = subs.first(where: { $0._commandName == word }) {
                command = next
                path.append(word)
                continue
            }
            let names = subs.map { $0._commandName }
            if !names.isEmpty {
                var line = "imprint: error: '\(path.joined(separator: " "))' has no command '\(word)'"
                if let best = Suggestion.closest(to: word, among: names) { line += "; did you mean '\(best)'?" }
                lines[0] = line
            }
            break
        }
        return lines.joined(separator: "\n")
    }
}
