import ArgumentParser
import Foundation
import ImprintCore

extension ImprintCommand {
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Verify that deployed files are byte-identical to what CI built, and catch stale bytecode.",
            discussion: """
            TARGET is a directory, a tar file or - (a tar stream on stdin), an image (OCI layout, oci-archive, \
            docker-archive, registry://HOST/REPO:TAG), a running container (pid:N, docker:NAME, podman:NAME: its \
            files through /proc, then its processes), compose:PROJECT[/SERVICE] (every container of a compose project, \
            each as docker: is, against its service's manifest: --manifest SERVICE=FILE, else the stamp of the image \
            its service names now), or http(s)://HOST/PATH where a Python process serves the \
            evidence of `imprint probe python` (which bytes it actually loaded). With --served, an http(s):// URL is \
            a site: every file of --manifest (under --served-root) is fetched at its URL as a browser gets it, and \
            past the caches when that is not the build's, so a stale cache, a stale origin, a missing asset, a page \
            referencing a bundle the build does not have and a service worker precaching old bundles are each named. The manifest is the one embedded in the target (/.imprint/manifest.json from \
            `imprint stamp`, or one written into the context with `imprint fingerprint --emit`), or --manifest.

            Examples:
              docker export web-1 | imprint verify - --expect sha256:3f1c…
              kubectl exec pod -- tar cf - /app | imprint verify - --manifest manifest.json --at /app
              imprint verify image.tar --expect "$(cat digest.txt)" --format junit -o verify.xml
              imprint verify /srv/app --manifest manifest.json --allow-extra 'logs/**'
              imprint verify rootfs.tar --manifest history:v1.4 --at /app
              imprint verify registry://registry.example/app:1.0 --expect sha256:3f1c… --require-attestation provenance --pubkey imprint.pub
              imprint verify docker:web-1 --expect sha256:3f1c… --attest ../out/vsa.dsse.json --key imprint.key --format sarif -o verify.sarif
              imprint verify compose:shop --manifest web=web.json --manifest worker=worker.json
              imprint verify https://www.example.com/ --served --manifest ../out/site.json --served-root dist

            Exit status: 0 VERIFIED; 1 MISMATCH (or unauthenticated with --require-trust); 2 bad input or failure.
            """
        )

        enum Format: String, CaseIterable, ExpressibleByArgument { case text, json, junit, github, sarif }

        @Argument(help: ArgumentHelp(SourceForms.verifyTarget), completion: .file()) var target: String
        @Option(name: .long, help: "Compare against this manifest file (or history:REF, a history record) instead of the embedded one; for compose:, SERVICE=FILE per service (repeatable).", completion: .file()) var manifest: [String] = []
        @Option(name: .long, help: "The root digest CI recorded; the embedded manifest must carry it.") var expect: String?
        @Option(name: .long, help: "Where the context root is in the target, e.g. /app (found by digest when omitted).") var at: String?
        @Option(name: .long, help: "Check only manifest entries matching this glob (.dockerignore syntax); repeatable.") var include: [String] = []
        @Option(name: .customLong("allow-extra"), help: "Allow entries not in the manifest that match this glob; repeatable.") var allowExtra: [String] = []
        @Option(help: "Report format: text, json, junit, github, sarif.") var format: Format = .text
        @Option(name: .customLong("sarif-root"), help: ArgumentHelp("For --format sarif: the repository root the result paths are relative to (default: the git work tree holding --sarif-context, else the current directory).", valueName: "dir"), completion: .directory)
        var sarifRoot: String?
        @Option(name: .customLong("sarif-context"), help: ArgumentHelp("For --format sarif: the build context's directory in the repository, which the report's paths are relative to (default: the current directory).", valueName: "dir"), completion: .directory)
        var sarifContext: String = "."
        @Option(name: .shortAndLong, help: "Write the report here (atomically) instead of stdout.", completion: .file()) var output: String?
        @Option(help: "Ed25519 public key (PEM): the manifest must carry a valid signature by it.", completion: .file()) var pubkey: String?
        @Option(help: "The signature file (default: beside the manifest, manifest.sig).", completion: .file()) var signature: String?
        @OptionGroup var platformOption: PlatformOption
        @OptionGroup var registry: RegistryFlags
        @Flag(name: .customLong("stamp-only"), help: "Only check that the target carries the expected (or validly signed) manifest; files are not compared. For registry:// this fetches just the manifest, config and stamp layer.")
        var stampOnly = false
        @Flag(name: .customLong("require-trust"), help: "Exit 1 when the result is not authenticated by --expect or --pubkey.") var requireTrust = false
        @Option(help: "Show at most this many findings per class in text output.") var limit: Int?
        @Option(help: "The Python that proves timestamp pycs by recompiling their sources (default: python3 on PATH; it must have the pycs' magic number).", completion: .file()) var python: String?
        @OptionGroup var quietFlag: QuietFlag
        @Option(name: .customLong("attest"), help: ArgumentHelp("Write a signed SLSA verification summary (VSA v1, DSSE) of the result here, PASSED or FAILED; needs --key.", valueName: "path"), completion: .file())
        var attestPath: String?
        @Option(help: "The Ed25519 private key (PEM) that signs the verification summary.", completion: .file()) var key: String?
        @Option(name: .customLong("require-attestation"), help: ArgumentHelp("For registry://: require an attestation of this predicate type (a URI, or provenance, vsa, context, link) attached to the image, signed by --pubkey, about this image; repeatable.", valueName: "type"))
        var requiredAttestations: [String] = []
        @Flag(help: "For an http(s):// URL: check what the site serves, file by file, against --manifest (through caches, then past them; pages' references and service workers' precache lists too).") var served = false
        @Option(name: .customLong("served-root"), help: ArgumentHelp("With --served: the manifest's directory published at the URL (default: its root).", valueName: "dir")) var servedRoot: String?
        @Option(help: ArgumentHelp("With --served: requests in flight at once.", valueName: "n")) var concurrency: Int = 8
        @Option(name: .customLong("history"), help: ArgumentHelp("With --served: the history store that names the build stale bytes come from (default: $IMPRINT_HISTORY or ~/.local/share/imprint/history).", valueName: "dir"), completion: .directory) var historyPath: String?
        @Flag(name: .customLong("no-processes"), help: "For a running container: check only its files, not its processes.") var noProcesses = false
        @Flag(help: "For a directory (e.g. / inside a container): also check the processes of this machine's PID namespace.") var processes = false

        func validate() throws {
            if FleetVerification.isFleet(target) {
                if ![.text, .json].contains(format) { throw ValidationError("compose: targets report as text or json") }
                if attestPath != nil || !requiredAttestations.isEmpty { throw ValidationError("--attest and --require-attestation take one image or container, not compose:") }
            } else if manifest.count > 1 {
                throw ValidationError("--manifest is given once, except for compose: targets (SERVICE=FILE)")
            }
            if let expect, Digest(hex: expect.lowercased()) == nil {
                throw ValidationError("--expect must be sha256:<64 hex digits>, got \(expect)")
            }
            if served && concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
            if !served && (servedRoot != nil || historyPath != nil) { throw ValidationError("--served-root and --history go with --served") }
            if attestPath != nil && key == nil { throw ValidationError("--attest needs --key KEY (an Ed25519 private key, PEM)") }
            if attestPath != nil && target == "-" { throw ValidationError("--attest names the verified resource by URI: verify a file, image or container, not standard input") }
            if !requiredAttestations.isEmpty && pubkey == nil { throw ValidationError("--require-attestation needs --pubkey KEY") }
        }

        func run() throws {
            try runReportingErrors {
                var request = VerifyRequest(target: target)
                request.expect = expect.flatMap { Digest(hex: $0.lowercased()) }
                request.manifest = FleetVerification.isFleet(target) ? nil : manifest.first
                request.pubkey = pubkey
                request.signature = signature
                request.at = at
                request.include = include
                request.allowExtra = allowExtra
                request.platform = platformOption.platform
                request.python = python
                request.stampOnly = stampOnly
                request.checkContainerProcesses = !noProcesses
                request.checkLocalProcesses = processes
                request.requiredAttestations = requiredAttestations.map(PredicateType.resolve)
                request.registry = registry.options
                request.served = served
                request.servedRoot = servedRoot
                request.concurrency = concurrency
                request.history = historyPath
                if FleetVerification.isFleet(target) {
                    var fleet = FleetVerification(base: request)
                    fleet.manifests = try FleetVerification.parseManifests(manifest)
                    let report = try fleet.run(target)
                    if !(quietFlag.quiet && format == .text && output == nil) {
                        try writeOutput(format == .json ? report.json() : Array(report.text().utf8), to: output)
                    }
                    try conclude(report)
                    return
                }
                let report = try request.run()
                if let attestPath, let key { try writeOutput(try request.verificationSummary(report, keyFile: key), to: attestPath) }
                try render(report)
                let (status, problem) = report.exitStatus(requireTrust: requireTrust)
                if let problem { Console.err("imprint: \(problem)") }
                try conclude(status)
            }
        }

        func render(_ report: VerifyReport) throws {
            // -q: the exit status is the verdict; a report written to a file or another format is still written.
            if quietFlag.quiet && format == .text && output == nil { return }
            let body: [UInt8]
            switch format {
            case .text: body = Array(VerifyReportFormat.text(report, colour: output == nil && Console.colour, limit: limit).utf8)
            case .json: body = VerifyReportFormat.json(report)
            case .junit: body = Array(VerifyReportFormat.junit(report).utf8)
            case .sarif: body = SARIF.verify(report, placement: SARIFPlacement(root: sarifRoot, context: sarifContext, about: manifest.first.map { [$0] } ?? []))
            case .github:
                body = Array(VerifyReportFormat.github(report).utf8)
                GitHubStepSummary.append(VerifyReportFormat.markdown(report))
            }
            try writeOutput(body, to: output)
            if format != .text && output == nil && Console.stderrIsTTY {
                Console.err(VerifyReportFormat.verdictLine(report))
            }
        }
    }
}
