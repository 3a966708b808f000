import ArgumentParser
import Foundation
import ImprintCore
#if canImport(Glibc)
import Glibc
#endif

extension ImprintCommand {
    struct Run: ParsableCommand, LiveOutput {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Run one CI step and record its chain of custody.",
            discussion: """
            Fingerprints the materials (a file: its SHA-256; a directory: its Merkle digest), runs the command with \
            its output streamed live and hashed, fingerprints the products and writes a step record \
            (schemas/step-record.schema.json) atomically to RECORD_DIR/NAME.json. SIGINT, SIGTERM and SIGHUP are \
            forwarded to the command; the step is then recorded as interrupted.

            --exclude patterns use .dockerignore syntax and apply inside each material and product directory.

            Examples:
              imprint run --name build --materials Sources Package.swift --products .build/release/imprint -- swift build -c release
              imprint run --name test --materials . --exclude .build --env CI -- swift test
              imprint run --name build --materials src --products dist --attest ../out/links --key imprint.key -- make

            Exit status: the command's own exit status (128 + N when it died of signal N); 1 when the command \
            succeeded but a declared product is missing; 2 when imprint could not run the step (a material is \
            missing, the command is not found, a record cannot be written).
            """
        )

        @Option(help: "The step name (letters, digits, - _ .); the record is RECORD_DIR/NAME.json.") var name: String
        @Option(parsing: .upToNextOption, help: "Files or directories the command reads, fingerprinted before it runs.", completion: .file()) var materials: [String] = []
        @Option(parsing: .upToNextOption, help: "Files or directories the command writes, fingerprinted after it ran.", completion: .file()) var products: [String] = []
        @Option(parsing: .upToNextOption, help: "Patterns (.dockerignore syntax) left out inside material and product directories.") var exclude: [String] = []
        @Option(name: .customLong("env"), help: "Record this environment variable's value (repeatable).") var env: [String] = []
        @Option(help: "Where step records are written.", completion: .directory) var recordDir: String = ".imprint/steps"
        @Option(help: "Terminate the command after this long (30s, 5m, 1h).", transform: parseTimeout) var timeout: Double?
        @OptionGroup var output: TextOrJSONFormat
        @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.") var command: [String] = []
        @OptionGroup var attest: StepAttestFlags
        @OptionGroup var quietFlag: QuietFlag

        func validate() throws {
            if command.isEmpty { throw ValidationError("no command given: put it after --, as in imprint run --name s -- make") }
            do {
                try StepSpec.validateName(name)
            } catch let e as ImprintError {
                throw ValidationError(e.message)
            }
        }

        func run() throws {
            var status: Int32 = 0
            try runReportingErrors {
                var spec = StepSpec(name: name, argv: command, materials: materials, products: products)
                (spec.exclude, spec.recordEnvironment) = (exclude, env)
                spec.timeout = timeout
                var request = StepRequest(spec: spec)
                request.recordDir = recordDir
                request.attestor = try attest.attestor()
                request.onOutput = { stream, buf in
                    try? AtomicFile.writeAll(stream == .stdout ? 1 : 2, buf, path: stream == .stdout ? "stdout" : "stderr")
                }
                let outcome = try request.run()
                keepUntilExit(outcome.runner)  // and with it the trees of the materials and products
                if output.json { Console.outRaw(outcome.record.jsonBytes()) }
                if outcome.record.status != .succeeded {
                    Console.err("imprint: step \(name) \(outcome.record.status.rawValue): \(outcome.record.reason ?? "")")
                }
                status = outcome.exitStatus
            }
            try conclude(status)
        }
    }
}

/// `--timeout`, parsed once, where the option is read: `30s`, `5m`, `1h30m` or seconds.
private func parseTimeout(_ text: String) throws -> Double {
    do { return try PipelineFile.parseDuration(text, what: "--timeout") } catch let e as ImprintError { throw ValidationError(e.message) }
}
