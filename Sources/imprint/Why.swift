import ArgumentParser
import Foundation
import ImprintCore

extension ImprintCommand {
    struct Why: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "why",
            abstract: "Explain why paths are in or out of the build context.",
            discussion: """
            For each path: whether the builder receives it, the ignore-file line that decided (file, line number, \
            pattern), the exceptions (!pattern) that re-include it or something below it, and for a directory \
            whether the walk enters it. The answer is the fingerprint walk's own decision (BuildKit's rules; \
            --ignore-semantics classic for the legacy builder); where the two builders differ, both are given.

            Examples:
              imprint why app/__pycache__ .env node_modules/left-pad
              imprint why --context ../app src/config.py --format json

            Exit status: 0 every path is sent; 1 at least one is not; 2 bad input.
            """
        )

        @Argument(help: "Paths relative to the context (or to the working directory, when they lie inside the context).") var paths: [String]
        @Option(help: "The build context (default: the working directory).", completion: .directory) var context: String = "."
        @OptionGroup var ignore: IgnoreOptions
        @OptionGroup var output: TextOrJSONFormat
        @OptionGroup var quietFlag: QuietFlag

        func validate() throws {
            if paths.isEmpty { throw ValidationError("name at least one path") }
        }

        func run() throws {
            let report = try runReportingErrors {
                let report = try WhyReport(paths: paths, context: context, dockerfile: ignore.dockerfile, ignoreFile: ignore.ignoreFile, semantics: ignore.semantics)
                Console.outRaw(output.json ? report.json() : Array(report.text().utf8))
                return report
            }
            try conclude(report)
        }
    }
}
