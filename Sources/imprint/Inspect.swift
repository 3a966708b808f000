import ArgumentParser
import Foundation
import ImprintCore

extension ImprintCommand {
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "inspect",
            abstract: "Summarise an image, archive, tar stream or directory.",
            discussion: """
            Shows the detected format, platform, manifest and config digests, each layer's size and media type, \
            and the digest of the embedded imprint manifest if the source carries one. With --tree-digest the \
            layers are flattened (streamed, verified, never extracted) and the filesystem's root digest is shown. \
            With --files every entry is listed as the container runtime unpacks the layers (containerd's rules: \
            whiteouts, hard links, writes through symlinks), with its type, mode, size and digest or target.

            Examples:
              imprint inspect oci-layout-dir
              imprint inspect image.tar --format json
              imprint inspect image.tar:latest --platform linux/arm64 --tree-digest
              docker export CONTAINER | imprint inspect - --tree-digest
              imprint inspect oci:app-image --files --format json

            Exit status: 0 ok; 2 bad input or failure.
            """
        )

        @Argument(help: ArgumentHelp(SourceForms.any + "."), completion: .file()) var source: String
        @OptionGroup var platformOption: PlatformOption
        @Option(help: "Where the embedded manifest is looked for inside the source.") var path: String = Imprint.defaultStampPath
        @Flag(help: "Flatten the filesystem and report its root digest and entry counts.") var treeDigest = false
        @Flag(help: "List every entry of the flattened filesystem (implies --tree-digest).") var files = false
        @OptionGroup var output: TextOrJSONFormat
        @OptionGroup var registry: RegistryFlags
        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            try runReportingErrors {
                // The embedded manifest lives in a layer and may be hidden by a later one, so layers are always
                // flattened; --tree-digest only decides whether the tree is shown for images.
                let loaded = try SourceLoader.load(source, platform: platformOption.platform, stampPath: path, withTree: true, registry: registry.options)
                let report = InspectReport(loaded, includeTree: treeDigest || !loaded.kind.isImage, includeFiles: files)
                if output.json {
                    try writeOutput(report.json(), to: nil)
                } else {
                    try writeOutput(Array(report.text().utf8), to: nil)
                }
            }
        }
    }
}
