import ArgumentParser
import Foundation
import ImprintCore

extension ImprintCommand {
    struct Layers: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "layers",
            abstract: "Show each layer of an image: what it added, changed and removed, and the bytes later layers waste.",
            discussion: """
            Streams the image's layers bottom to top (verified, never extracted) and reports, per layer, the \
            instruction that made it (the config's history), the files it adds, the files of lower layers it \
            overwrites, the paths its whiteouts remove (opaque directories included), and its wasted bytes: \
            content a later layer overwrites or removes, shipped in every pull and never seen in the container.

            Examples:
              imprint layers oci:./layout:1.4
              imprint layers app.tar --format json -o layers.json
              imprint layers registry://registry.example/app:1.4 --format html -o layers.html --limit 20

            Exit status: 0 ok; 2 bad input or failure.
            """
        )

        enum Format: String, CaseIterable, ExpressibleByArgument { case text, json, html }

        @Argument(help: "The image: an OCI layout (oci:DIR[:TAG]), oci-archive or docker-archive file, or registry://HOST/REPO:TAG.", completion: .file()) var image: String
        @Option(help: "Report format: text, json or html.") var format: Format = .text
        @Option(help: "Show at most this many files per class and layer in text output.") var limit: Int?
        @Option(name: .shortAndLong, help: "Write the report here (atomically) instead of stdout.", completion: .file()) var output: String?
        @OptionGroup var platformOption: PlatformOption
        @OptionGroup var registry: RegistryFlags
        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            try runReportingErrors {
                let view = try LayerView.read(image, platform: platformOption.platform, registry: registry.options)
                switch format {
                case .text: try writeOutput(Array(view.text(limit: limit).utf8), to: output)
                case .json: try writeOutput(view.json(), to: output)
                case .html: try writeOutput(Array(view.html().utf8), to: output)
                }
            }
        }
    }
}
