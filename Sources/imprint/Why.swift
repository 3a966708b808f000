import ArgumentParser
import Foundation
import ImprintCore

extension ImprintCommand {
    struct Why: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "why",
            abstract: "Explain why paths are in or out of the build context.",
            discussion: """
            For each path: whether the builder receives it, the ignore-file line that decided (file, line number, \\
            pattern), the exceptions (!pattern) that re-include it or something below it, and for a directory \\
            whether the walk enters it. The answer is the fingerprint walk's own decision (BuildKit's rules; \\
            --ignore-semantics classic for the legacy builder); where the two builders differ, both are given.

            Examples:
              imprint why app/__pycache__ .env node_modules/left-pad
              imprint why --context ../app src/config.py --format json

            Exit status: 0 every path is sent; 1 at least one is not; 2 bad input.
            """
        )

        @Argument(help: "Paths relative to the context (or to the working directory, when they lie inside the context).")
        var paths: [String]

        @Option(help: "The build context (default: the working directory).", completion: .directory)
        var context: String = "."

        @OptionGroup var ignore: IgnoreOptions

        @OptionGroup var output: TextOrJSONFormat

        @OptionGroup var quietFlag: QuietFlag

        func validate() throws {
            if paths.isEmpty { throw ValidationError("name at least one path") }
        }

        func run() throws {
            var allSent = true
            try runReportingErrors {
                let targets = ContextExplainer.targets(paths, context: context)
                let mine = try ContextExplainer.explain(targets, context: context, dockerfile: ignore.dockerfile, ignoreFile: ignore.ignoreFile, semantics: ignore.semantics)
                let other: IgnoreSemantics = ignore.semantics == .buildkit ? .classic : .buildkit
                let theirs = try ContextExplainer.explain(targets, context: context, dockerfile: ignore.dockerfile, ignoreFile: ignore.ignoreFile, semantics: other)
                allSent = mine.allSatisfy { $0.verdict != .excluded && $0.verdict != .excludedByParent }
                if output.json {
                    Console.outRaw(ContextExplainer.json(mine, semantics: ignore.semantics, other: zip(mine, theirs).map { $0.verdict == $1.verdict ? nil : ($1, other) }))
                } else {
                    for (a, b) in zip(mine, theirs) {
                        Console.out("\(a.path)\(a.isDirectory ? "/" : ""): \(a.summary)")
                        if a.verdict != b.verdict { Console.out("  the \(other == .classic ? "legacy builder" : "BuildKit") decides otherwise: \(b.summary)") }
                    }
                }
            }
            if !allSent { throw ExitCode(1) }
        }
    }
}
