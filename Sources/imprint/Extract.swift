import ArgumentParser
import Foundation
import ImprintCore

extension ImprintCommand {
    struct Extract: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the imprint manifest embedded in an image, tar stream or directory.",
            discussion: """
            Finds the manifest `imprint stamp` added (or `imprint fingerprint --emit` wrote into the build \
            context and a Dockerfile COPY put into the image) at /\(Imprint.defaultStampPath), or at --path, \
            checks it is a valid manifest and prints it byte for byte.

            Examples:
              imprint extract oci-dir -o manifest.json
              imprint extract image.tar:latest
              docker export CONTAINER | imprint extract -
              imprint extract myimage.tar --path app/.imprint/manifest.json

            Exit status: 0 ok; 2 no manifest, bad input or failure.
            """
        )

        @Argument(help: "An image (OCI layout, oci-archive, docker-archive, optionally :TAG; or registry://HOST/REPO:TAG), a filesystem tar, '-' for stdin, or a directory.", completion: .file())
        var source: String

        @Option(help: "Where the manifest is inside the source.")
        var path: String = Imprint.defaultStampPath

        @Option(help: "Choose this platform (os/arch[/variant]) from a multi-platform index.")
        var platform: String?

        @Option(name: .shortAndLong, help: "Write the manifest here (atomically) instead of stdout.", completion: .file())
        var output: String?

        @OptionGroup var registry: RegistryFlags

        func run() async throws {
            try runReportingErrors {
                registry.apply()
                // From a registry, fetch only manifest, config and the stamp layer.
                let loaded = try SourceLoader.loadEmbeddedManifestOnly(source, platform: platform, stampPath: path)
                if let problem = loaded.embeddedManifestProblem {
                    throw ImprintError.badInput("\(source): the file at /\(loaded.stampPath) is not a valid imprint manifest: \(problem)")
                }
                guard let bytes = loaded.embeddedManifestBytes else {
                    throw ImprintError(.notFound, "\(source) has no imprint manifest at /\(loaded.stampPath) (stamp it with `imprint stamp`, or pass --path)")
                }
                try writeOutput(bytes, to: output)
            }
        }
    }
}
