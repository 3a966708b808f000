import ArgumentParser
import Foundation
import ImprintCore

extension ImprintCommand {
    struct Stamp: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stamp",
            abstract: "Add an imprint manifest to a container image as one small deterministic layer.",
            discussion: """
            Appends a layer holding the manifest at /\(Imprint.defaultStampPath) (or --path), records it in the \
            config (rootfs.diff_ids, a history entry "imprint stamp", label \(Imprint.digestLabel)) and in the \
            manifest and index (annotation \(Imprint.digestLabel)). No daemon is needed. An OCI layout is \
            updated in place; an oci-archive or docker-archive is written to -o. Existing blobs are not changed, \
            and the same manifest stamped into the same input gives the same image digest (entries use \
            SOURCE_DATE_EPOCH, else 0, as their time). Prints the new manifest digest (for a docker-archive: the \
            new config digest, i.e. the image ID).

            With --check, the image's files are first compared with the manifest, bytecode checks included, exactly \
            as `imprint verify` does after deploy; an image that does not hold exactly the context — a cached COPY \
            layer, a stale build, stale bytecode — is not stamped and the command exits 1 with the differences.

            A signature made by `imprint sign` (manifest.sig beside the manifest) is carried into the image beside \
            the manifest, so `imprint verify --pubkey` finds it after deploy.

            Examples:
              imprint fingerprint . -o manifest.json && imprint stamp oci-dir --manifest manifest.json
              imprint stamp oci-dir --context . --check --at /app
              imprint stamp image.tar --context . -o stamped.tar
              skopeo copy oci-archive:stamped.tar docker://registry.example/app:1.0
              imprint stamp registry://registry.example/app:1.0 --manifest manifest.json --provenance ../out/provenance.dsse.json --key imprint.key

            Exit status: 0 ok; 1 --check found differences (nothing is written); 2 bad input or failure (nothing is written).
            """
        )

        @Argument(help: "The image: an OCI layout directory (stamped in place), an oci-archive or docker-archive tar (optionally :TAG), or registry://HOST/REPO:TAG (stamped and pushed).", completion: .file())
        var image: String
        @Option(help: "The imprint manifest to stamp.", completion: .file()) var manifest: String?
        @Option(help: "Fingerprint this build context and stamp the result.", completion: .directory) var context: String?
        @Option(name: [.customShort("f"), .customLong("file")], help: "With --context: the Dockerfile, to pick its <Dockerfile>.dockerignore.", completion: .file()) var dockerfile: String?
        @Option(help: "Where the manifest goes inside the image.") var path: String = Imprint.defaultStampPath
        @OptionGroup var platformOption: PlatformOption
        @Option(name: .shortAndLong, help: "The stamped archive to write (required for oci-archive and docker-archive).", completion: .file()) var output: String?
        @Option(help: "For registry://: push the stamped image under this tag (default: the image's tag).") var tag: String?
        @Option(name: .customLong("to"), help: "For registry://: push to this repository of the same registry (registry://HOST/REPO[:TAG]); base layers are mounted, not copied.")
        var destination: String?
        @OptionGroup var registry: RegistryFlags
        @Flag(help: "Compare the image's files with the manifest first; refuse to stamp an image that does not hold the context.") var check = false
        @Option(help: "With --check: where the context is in the image, e.g. /app (found by digest when omitted).") var at: String?
        @Option(help: "Sign the manifest's root digest with this Ed25519 key (PEM); the signature goes beside it (manifest.sig). Also signs --provenance.", completion: .file()) var key: String?
        @Option(name: .customLong("signature"), help: "The signature to carry beside the manifest (default: manifest.sig beside --manifest, when it exists).", completion: .file())
        var signatureFile: String?
        @Option(help: ArgumentHelp("Write signed SLSA provenance v1 (DSSE) of the stamped image here, signed with --key; a registry image also gets it attached as an OCI referrer.", valueName: "path"), completion: .file())
        var provenance: String?
        @Option(name: .customLong("steps"), help: ArgumentHelp("With --provenance: a directory of step attestations (imprint run/pipeline --attest) to list as resolved dependencies.", valueName: "dir"), completion: .directory)
        var stepAttestations: String?
        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            try runReportingErrors {
                var request = StampRequest(image: image)
                request.manifestPath = manifest
                request.context = context
                request.dockerfile = dockerfile
                request.stampPath = path
                request.platform = platformOption.platform
                request.output = output
                request.tag = tag
                request.destination = destination
                request.check = check
                request.at = at
                request.key = key
                request.signatureFile = signatureFile
                request.provenancePath = provenance
                request.stepAttestations = stepAttestations
                request.registry = registry.options
                let outcome = try request.run()
                switch outcome {
                case .refused(let report):
                    Console.err("imprint: not stamping: the image does not hold this context (a cached COPY layer or a stale build?)")
                    _ = Console.writeAll(2, Array(VerifyReportFormat.text(report, colour: false, limit: 20).utf8))
                case .stamped(let s):
                    Console.out(s.imageDigest.prefixed)
                    let blobs = s.uploadedBlobs + s.mountedBlobs > 0
                        ? " (\(s.uploadedBlobs) new blob\(s.uploadedBlobs == 1 ? "" : "s")\(s.mountedBlobs > 0 ? ", \(s.mountedBlobs) mounted" : ""))" : ""
                    if let p = s.provenance { Console.note("imprint: provenance → \(p)\(s.provenanceArtifact.map { " (attached as \($0))" } ?? "")") }
                    Console.note("imprint: stamped \(s.destination)\(blobs): \(s.isImageID ? "image ID (config digest)" : "image manifest digest") \(s.imageDigest.prefixed), holding the context \(s.contextDigest.prefixed)")
                }
                try conclude(outcome)
            }
        }
    }
}
