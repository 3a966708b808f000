import ArgumentParser
import Foundation
import ImprintCore

@main
struct ImprintCommand: AsyncParsableCommand {
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
        version: "imprint \(Imprint.version) (\(SHA256.libraryVersion))",
        subcommands: [
            Fingerprint.self,
            Stamp.self,
            Verify.self,
            Extract.self,
            Inspect.self,
            Diff.self,
            Run.self,
            Pipeline.self,
            History.self,
            Wait.self,
            Keygen.self,
            Sign.self,
            VerifySignature.self,
            Attach.self,
            FetchManifest.self,
            HistorySync.self,
        ]
    )
}
