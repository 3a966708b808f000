import ArgumentParser
import Foundation
import ImprintCore

extension ImprintCommand {
    struct Extract: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "extract",
            abstract: "Print the imprint manifest embedded in an image, tar stream or directory.",
            discussion: """
            Finds the manifest `imprint stamp` added at /\(Imprint.defaultStampPath) (or --path), else one \
            `imprint fingerprint --emit` wrote into the build context that a Dockerfile COPY put into the image \
            (…/.imprint/manifest.json, found as `imprint verify` finds it), checks it is a valid manifest and \
            prints it byte for byte.

            Examples:
              imprint extract oci-dir -o manifest.json
              imprint extract image.tar:latest
              docker export CONTAINER | imprint extract -
              imprint extract myimage.tar --path app/.imprint/manifest.json

            Exit status: 0 ok; 2 no manifest, bad input or failure.
            """
        )

        @Argument(help: ArgumentHelp(SourceForms.any + "."), completion: .file()) var source: String
        @Option(help: "Where the manifest is inside the source.") var path: String = Imprint.defaultStampPath
        @OptionGroup var platformOption: PlatformOption
        @Option(name: .shortAndLong, help: "Write the manifest here (atomically) instead of stdout.", completion: .file()) var output: String?
        @OptionGroup var registry: RegistryFlags
        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            try runReportingErrors {
                try writeOutput(try EmbeddedManifest.extract(from: source, platform: platformOption.platform, stampPath: path, registry: registry.options), to: output)
            }
        }
    }
}
