import ArgumentParser
import Foundation
import ImprintCore

extension ImprintCommand {
    struct Ls: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls",
            abstract: "List the build context as the builder receives it, with sizes and totals.",
            discussion: """
            Every file and directory the builder is sent, decided exactly as fingerprint decides it, from names \
            and sizes alone (nothing is hashed). --excluded adds what the ignore file keeps out, grouped by the \
            rule that does it, with file and byte counts: the answer to "why is my context 2 GB".

            Examples:
              imprint ls --excluded
              imprint ls ../app --tree
              imprint ls --format json > context.json

            Exit status: 0 ok; 2 bad input.
            """
        )

        @Argument(help: "The build context directory.", completion: .directory) var context: String = "."
        @OptionGroup var ignore: IgnoreOptions
        @Flag(help: "Indent by depth instead of printing full paths.") var tree = false
        @Flag(help: "Also list what is excluded, grouped by the rule that excludes it.") var excluded = false
        @OptionGroup var output: TextOrJSONFormat
        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            try runReportingErrors {
                let listing = try ContextListing.list(context: context, dockerfile: ignore.dockerfile, ignoreFile: ignore.ignoreFile, semantics: ignore.semantics)
                if output.json {
                    Console.outRaw(listing.json())
                } else {
                    Console.outRaw(Array(listing.text(tree: tree, excluded: excluded).utf8))
                }
            }
        }
    }
}
