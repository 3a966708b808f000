import ArgumentParser
import Foundation
import ImprintCore

/// Flags shared by every command that can reach a registry.
struct RegistryFlags: ParsableArguments {
    @Flag(help: "Talk plain HTTP to the registry (localhost and 127.0.0.1 always use HTTP). Also IMPRINT_REGISTRY_INSECURE=1.") var insecure = false
    @Option(help: ArgumentHelp("Give up after this many seconds in all (default 3600; also IMPRINT_DEADLINE). Each request also has an idle timeout (IMPRINT_REGISTRY_TIMEOUT, 30) and a total limit (IMPRINT_REQUEST_TIMEOUT, 600).", valueName: "seconds"))
    var deadline: Double?

    func validate() throws {
        if let deadline, !(deadline > 0 && deadline.isFinite) { throw ValidationError("--deadline must be a positive number of seconds") }
    }

    /// The registry options these flags and the environment stand for; the deadline counts from the command's start.
    var options: RegistryOptions {
        var o = RegistryOptions()
        o.commandStart = ImprintCommand.started
        if insecure { o.insecure = true }
        if let deadline { o.deadline = deadline }
        return o
    }
}

extension ImprintCommand {
    struct Attach: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "attach",
            abstract: "Attach an imprint manifest to an image in a registry as an OCI 1.1 artifact.",
            discussion: """
            Pushes the manifest (gzip-compressed) as an artifact of type \(RegistryArtifacts.manifestArtifactType) \
            with the empty config and `subject` = the image's manifest, so the image itself is unchanged. \
            Registries with the referrers API index it themselves; for the others imprint also lists it in an \
            index tagged sha256-<hex> (the OCI distribution spec's referrers tag schema, which other OCI 1.1 clients \
            read and write too). Find it again with `imprint fetch-manifest`. \
            Prints the artifact's digest.
            Credentials: IMPRINT_REGISTRY_USER/IMPRINT_REGISTRY_PASSWORD, else the auths entry in \
            $DOCKER_CONFIG/config.json (default ~/.docker/config.json).
            Examples:
              imprint attach registry://registry.example/app@sha256:… --manifest manifest.json
              imprint attach registry://127.0.0.1:5000/app:1.0 --context .
              imprint attach registry://127.0.0.1:5000/app@sha256:… --attestation ../out/provenance.dsse.json
            Exit status: 0 ok; 2 bad input or failure.
            """
        )

        @Argument(help: "The image: registry://HOST[:PORT]/REPO:TAG or registry://HOST[:PORT]/REPO@sha256:….") var image: String
        @Option(help: "The imprint manifest to attach.", completion: .file()) var manifest: String?
        @Option(help: "Fingerprint this build context and attach the result.", completion: .directory) var context: String?
        @OptionGroup var registry: RegistryFlags
        @Option(help: "Attach this signed in-toto attestation (a DSSE envelope from --attest or --provenance) instead; its statement must be about the image.", completion: .file())
        var attestation: String?

        func validate() throws {
            if [manifest, context, attestation].compactMap({ $0 }).count != 1 {
                throw ValidationError("give exactly one of --manifest FILE, --context DIR or --attestation FILE")
            }
        }

        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            try runReportingErrors {
                let source: RegistryArtifacts.AttachSource = attestation.map { .attestation($0) }
                    ?? manifest.map { .manifestFile($0) } ?? .context(context ?? ".")
                let result = try RegistryArtifacts.attach(source, to: image, options: registry.options)
                if let tag = result.fallbackTag {
                    Console.note("imprint: the registry has no referrers API: listed under tag \(tag)")
                }
                Console.out(result.artifactDigest.prefixed)
            }
        }
    }

    struct FetchManifest: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fetch-manifest",
            abstract: "Print the imprint manifest attached to an image in a registry (see `imprint attach`).",
            discussion: """
            Looks the image's artifacts up through the referrers API (GET /v2/<name>/referrers/<digest>), or, \
            when the registry has none, through the index tagged sha256-<hex> (and sha256-<hex>.imprint, where \
            imprint 0.1 wrote it); \
            takes the newest imprint manifest, checks its digests and prints it byte for byte. For a manifest \
            stamped into the image itself use `imprint extract registry://…`.
            Examples:
              imprint fetch-manifest registry://127.0.0.1:5000/app:1.0 -o manifest.json
            Exit status: 0 ok; 2 nothing attached, bad input or failure.
            """
        )

        @Argument(help: "The image: registry://HOST[:PORT]/REPO:TAG or registry://HOST[:PORT]/REPO@sha256:….") var image: String
        @Option(name: .shortAndLong, help: "Write the manifest here (atomically) instead of stdout.", completion: .file()) var output: String?
        @OptionGroup var registry: RegistryFlags
        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            try runReportingErrors {
                let found = try RegistryArtifacts.findManifest(for: image, options: registry.options)
                try writeOutput(found.bytes, to: output)
            }
        }
    }
}
