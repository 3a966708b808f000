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
            Layers.self,
            Run.self,
            Pipeline.self,
            History.self,
            Wait.self,
            Watch.self,
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
        // `imprint help NAME…` for a command that does not exist: say so (ArgumentParser would print the root help
        // and exit 0, which a script cannot tell from success).
        let args = Array(CommandLine.arguments.dropFirst())
        if args.first == "help", let unknown = Suggestion.unknownCommand(in: Array(args.dropFirst()), subcommands: subcommandNames) {
            Console.err(unknown)
            Foundation.exit(2)
        }
        do {
            // Synchronous all the way: an async main would end in dispatch_main(), whose pthread_exit needs
            // libgcc_s.so.1 at run time, which a glibc-only container does not have.
            var command = try parseDirectly(args) ?? parseAsRoot()
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

    /// The command the arguments name, parsed from the subcommand down: ArgumentParser's root parse first walks every
    /// subcommand's arguments by reflection (its completion-script and passthrough checks), a few milliseconds of
    /// protocol-conformance lookups on every run. Only a parse that succeeds is taken; anything else (help, a usage
    /// error, a mistyped name, the root's own flags) returns nil and goes through the root parse, so messages, help
    /// and completion scripts are the root's as before.
    static func parseDirectly(_ args: [String]) -> ParsableCommand? {
        guard let name = args.first,
              let subcommand = configuration.subcommands.first(where: { $0._commandName == name }) else { return nil }
        // A help request (`-h`, `help`, `-help`, `--help-hidden`…) comes back as ArgumentParser's own help command,
        // which would name the subcommand as if it were the root: only the commands themselves are taken. Whatever
        // else the root answers itself (`--version`, completion scripts, help dumps) fails here and goes there.
        guard let command = try? subcommand.parseAsRoot(Array(args.dropFirst())),
              isCommand(type(of: command), in: subcommand) else { return nil }
        return command
    }

    /// Whether `type` is `root` or one of the commands below it.
    static func isCommand(_ type: ParsableCommand.Type, in root: ParsableCommand.Type) -> Bool {
        type == root || root.configuration.subcommands.contains { isCommand(type, in: $0) }
    }

    /// The progress line, for every command but those with live output of their own (`LiveOutput`) and unless
    /// --quiet was given.
    static func startProgress(for command: ParsableCommand) {
        guard let label = ProgressLine.label(arguments: Array(CommandLine.arguments.dropFirst())) else { Console.quiet = true; return }
        if !(command is LiveOutput) { ProgressLine.shared.start(label: label) }
    }

    /// A usage error in imprint's one error style (`imprint: error: …`), with the closest subcommand when a
    /// command name was mistyped.
    static func usageMessage(for error: Error, arguments: [String]) -> String {
        var lines = fullMessage(for: error).components(separatedBy: "\n")
        lines[0] = Suggestion.errorLine(lines[0])
        if let unknown = Suggestion.unknownCommand(in: arguments, subcommands: subcommandNames) { lines[0] = unknown }
        return lines.joined(separator: "\n")
    }

    /// The subcommand names below the command at `path` (`["imprint", "history"]`).
    static func subcommandNames(_ path: [String]) -> [String] {
        var command: ParsableCommand.Type = ImprintCommand.self
        for name in path.dropFirst() {
            guard let next = command.configuration.subcommands.first(where: { $0._commandName == name }) else { return [] }
            command = next
        }
        return command.configuration.subcommands.map { $0._commandName }
    }
}
