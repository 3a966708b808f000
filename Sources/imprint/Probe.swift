import ArgumentParser
import Foundation
import ImprintCore

extension ImprintCommand {
    struct Probe: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "probe",
            abstract: "Write the runtime probe an application imports first, to prove what its process loaded.",
            discussion: """
            The Python probe is one standard-library module. Imported first, it records for every module loaded from \
            the application's directory which bytes the code came from — the source, the pyc CPython used instead \
            (and whether that bytecode is the source compiled), or a sourceless pyc — plus the manifest digest read \
            at process start. The application serves imprint_probe.evidence() as JSON; `imprint verify URL` and \
            `imprint wait URL` compare it with the manifest.

            Example:
              imprint probe python -o app/imprint_probe.py      # then: import imprint_probe (first line of main.py)

            Exit status: 0 ok; 2 bad input or failure.
            """
        )

        enum Language: String, CaseIterable, ExpressibleByArgument { case python }

        @Argument(help: "The language of the probe: python.") var language: Language
        @Option(name: .shortAndLong, help: "Write the probe here (atomically) instead of stdout.", completion: .file()) var output: String?
        @OptionGroup var quiet: QuietFlag

        func run() throws {
            try runReportingErrors {
                try writeOutput(Array(PythonProbe.source.utf8), to: output)
            }
        }
    }
}
