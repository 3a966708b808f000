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
            files through /proc, then its processes), or http(s)://HOST/PATH where a Python process serves the \
            evidence of `imprint probe python` (which bytes it actually loaded). The manifest is the one embedded in the target (/.imprint/manifest.json from \
            `imprint stamp`, or one written into the context with `imprint fingerprint --emit`), or --manifest.

            Examples:
              docker export web-1 | imprint verify - --expect sha256:3f1c…
              kubectl exec pod -- tar cf - /app | imprint verify - --manifest manifest.json --at /app
              imprint verify image.tar --expect "$(cat digest.txt)" --format junit -o verify.xml
              imprint verify /srv/app --manifest manifest.json --allow-extra 'logs/**'
              imprint verify rootfs.tar --manifest history:v1.4 --at /app

            Exit status: 0 VERIFIED; 1 MISMATCH (or unauthenticated with --require-trust); 2 bad input or failure.
            """
        )

        enum Format: String, CaseIterable, ExpressibleByArgument { case text, json, junit, github }

        @Argument(help: ArgumentHelp(SourceForms.verifyTarget), completion: .file())
        var target: String

        @Option(name: .long, help: "Compare against this manifest file (or history:REF, a history record) instead of the embedded one.", completion: .file())
        var manifest: String?

        @Option(name: .long, help: "The root digest CI recorded; the embedded manifest must carry it.")
        var expect: String?

        @Option(name: .long, help: "Where the context root is in the target, e.g. /app (found by digest when omitted).")
        var at: String?

        @Option(name: .long, help: "Check only manifest entries matching this glob (.dockerignore syntax); repeatable.")
        var include: [String] = []

        @Option(name: .customLong("allow-extra"), help: "Allow entries not in the manifest that match this glob; repeatable.")
        var allowExtra: [String] = []

        @Option(help: "Report format: text, json, junit, github.")
        var format: Format = .text

        @Option(name: .shortAndLong, help: "Write the report here (atomically) instead of stdout.", completion: .file())
        var output: String?

        @Option(help: "Ed25519 public key (PEM): the manifest must carry a valid signature by it.", completion: .file())
        var pubkey: String?

        @Option(help: "The signature file (default: beside the manifest, manifest.sig).", completion: .file())
        var signature: String?

        @Option(help: "Platform to pick from a multi-platform image index: os/arch[/variant].")
        var platform: String?

        @OptionGroup var registry: RegistryFlags

        @Flag(name: .customLong("stamp-only"), help: "Only check that the target carries the expected (or validly signed) manifest; files are not compared. For registry:// this fetches just the manifest, config and stamp layer.")
        var stampOnly = false

        @Flag(name: .customLong("require-trust"), help: "Exit 1 when the result is not authenticated by --expect or --pubkey.")
        var requireTrust = false

        @Option(help: "Show at most this many findings per class in text output.")
        var limit: Int?

        @Option(help: "The Python that proves timestamp pycs by recompiling their sources (default: python3 on PATH; it must have the pycs' magic number).", completion: .file())
        var python: String?

        @OptionGroup var quietFlag: QuietFlag

        @Flag(name: .customLong("no-processes"), help: "For a running container: check only its files, not its processes.")
        var noProcesses = false

        @Flag(help: "For a directory (e.g. / inside a container): also check the processes of this machine's PID namespace.")
        var processes = false

        func run() throws {
            try runReportingErrors {
                var verifier = Verifier()
                verifier.at = at
                verifier.include = include
                verifier.allowExtra = allowExtra
                if let expect {
                    guard let d = Digest(hex: expect.lowercased()) else {
                        throw ValidationError("--expect must be sha256:<64 hex digits>, got \(expect)")
                    }
                    verifier.expectedDigest = d
                }
                registry.apply()
                try loadSignatureOptions(&verifier)
                let targetName = target == "-" ? "stdin" : target
                if stampOnly || (RegistryReference.isRegistry(target) && expect != nil && manifest == nil) {
                    // The stamp alone decides a wrong image without fetching any other layer.
                    if stampOnly && expect == nil && pubkey == nil { throw ValidationError("--stamp-only needs --expect or --pubkey") }
                    let src = try (pubkey == nil ? SourceLoader.loadEmbeddedManifestOnly(target, platform: platform)
                                                 : SourceLoader.load(target, platform: platform))
                    if let problem = src.embeddedManifestProblem { throw ImprintError.badInput(problem) }
                    guard let m = src.embeddedManifest else {
                        throw ImprintError(.notFound, "\(target) holds no imprint manifest (/\(Imprint.defaultStampPath)); stamp the image or pass --manifest")
                    }
                    if pubkey != nil, verifier.signature == nil, let sig = src.tree.node(at: Array(ManifestSignature.path(besideManifest: Imprint.defaultStampPath).utf8))?.capturedContent {
                        verifier.signature = try ManifestSignature.parse(sig, source: ManifestSignature.path(besideManifest: "/" + Imprint.defaultStampPath))
                    }
                    let stampReport = try verifier.verifyStamp(manifest: m, manifestSource: "/" + Imprint.defaultStampPath, targetName: targetName, targetKind: src.kind.rawValue)
                    if stampOnly || stampReport.verdict == .mismatch {
                        try render(stampReport)
                        if stampReport.verdict == .mismatch { throw ExitCode(1) }
                        if requireTrust && stampReport.trust == .none { throw ExitCode(1) }
                        return
                    }
                }
                if target.hasPrefix("http://") || target.hasPrefix("https://") {
                    // A running Python process, through the evidence its probe serves.
                    let (m, source) = try manifest.map { try loadManifest($0) }.map { ($0.0, Optional($0.1)) } ?? (nil, nil)
                    let client = HTTPClient(RegistryOptions.current.httpConfiguration)
                    let evidence = try RuntimeEvidence.fetch(target, client: client)
                    let report = evidence.report(target: target, manifest: m, manifestSource: source, expected: verifier.expectedDigest)
                    try render(report)
                    if report.verdict == .mismatch { throw ExitCode(1) }
                    if requireTrust && report.trust == .none { throw ExitCode(1) }
                    return
                }
                if LiveSource.isLive(target) {
                    let report = try verifyLive(verifier)
                    try render(report)
                    if report.verdict == .mismatch { throw ExitCode(1) }
                    if requireTrust && report.trust == .none { throw ExitCode(1) }
                    return
                }
                let loaded = try VerifyTarget.load(target, platform: platform, python: python)
                verifier.bytecode = loaded.bytecode
                let (manifestValue, manifestSource, emittedAt): (Manifest, String, String?)
                if let manifest {
                    (manifestValue, manifestSource) = try loadManifest(manifest)
                    emittedAt = nil
                } else if let embedded = loaded.embedded {
                    (manifestValue, manifestSource, emittedAt) = (embedded.manifest, embedded.source, embedded.contextRoot)
                } else {
                    throw ImprintError(.notFound, "\(target) holds no imprint manifest (/\(Imprint.defaultStampPath)); stamp the image or pass --manifest")
                }
                if pubkey != nil, manifest == nil, verifier.signature == nil {
                    verifier.signatureSource = ManifestSignature.path(besideManifest: manifestSource)
                    if let bytes = loaded.embedded?.signatureBytes {
                        verifier.signature = try ManifestSignature.parse(bytes, source: verifier.signatureSource!)
                    }
                }
                if manifest == nil, emittedAt == nil { verifier.targetExcluded = [Imprint.defaultStampPath] }
                var report = try verifier.verify(manifest: manifestValue, manifestSource: manifestSource, target: loaded.tree,
                                                 targetName: target == "-" ? "stdin" : target, targetKind: loaded.kind,
                                                 emittedAt: emittedAt)
                if processes {
                    // This machine's processes (inside a container: the container's), against the verified directory.
                    guard loaded.kind == "directory" else { throw ValidationError("--processes needs a directory target, such as /") }
                    let base = URL(fileURLWithPath: target).standardizedFileURL.resolvingSymlinksInPath().path
                    let absoluteAt = (base == "/" ? "" : base) + (report.at == "/" ? "" : report.at)
                    let subtree = loaded.tree.subtree(at: Array(report.at.utf8).pathComponents.joinedPath)
                    let local = LiveSource.local()
                    report = report.adding(ProcessChecks.check(local, processes: local.processes(), tree: subtree,
                                                               at: absoluteAt.isEmpty ? "/" : absoluteAt, manifest: manifestValue))
                }
                try render(report)
                if report.verdict == .mismatch { throw ExitCode(1) }
                if requireTrust && report.trust == .none {
                    Console.err("imprint: not authenticated: pass --expect DIGEST or --pubkey KEY (--require-trust)")
                    throw ExitCode(1)
                }
            }
        }

        /// A running container: its application directory read through /proc/PID/root, then its processes.
        func verifyLive(_ base: Verifier) throws -> VerifyReport {
            var verifier = base
            var live = LiveVerification(source: try LiveSource.open(target))
            live.at = at
            live.python = python
            if let manifest { (live.manifest, live.manifestSource) = try loadManifest(manifest) }
            let prepared = try live.prepare()
            verifier.at = prepared.at
            verifier.bytecode = prepared.target.bytecode
            if pubkey != nil, manifest == nil, verifier.signature == nil, let e = prepared.target.embedded {
                verifier.signatureSource = ManifestSignature.path(besideManifest: e.source)
                if let bytes = e.signatureBytes { verifier.signature = try ManifestSignature.parse(bytes, source: verifier.signatureSource!) }
            }
            if manifest == nil, !prepared.emitted { verifier.targetExcluded = [Imprint.defaultStampPath] }
            let report = try verifier.verify(manifest: prepared.manifest, manifestSource: prepared.manifestSource, target: prepared.target.tree,
                                             targetName: target, targetKind: "container", emittedAt: nil)
            guard !noProcesses else { return report }
            let atPath = Array(report.at.utf8).pathComponents.joinedPath
            let subtree = prepared.target.tree.subtree(at: atPath)
            return report.adding(ProcessChecks.check(live.source, processes: live.source.processes(), tree: subtree, at: report.at,
                                                     manifest: prepared.manifest, fileFindings: report.findings))
        }

        /// --pubkey and --signature (or the .sig beside --manifest).
        func loadSignatureOptions(_ verifier: inout Verifier) throws {
            guard let pubkey else { return }
            verifier.publicKey = try Ed25519PublicKey(pemFile: pubkey)
            if let signature {
                verifier.signature = try ManifestSignature.parse(try readFile(signature, what: "signature"), source: signature)
                verifier.signatureSource = signature
            } else if let manifest, !manifest.hasPrefix("history:") {
                let p = ManifestSignature.path(besideManifest: manifest)
                verifier.signatureSource = p
                if FileManager.default.fileExists(atPath: p) {
                    verifier.signature = try ManifestSignature.parse(try readFile(p, what: "signature"), source: p)
                }
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
            case .github:
                body = Array(VerifyReportFormat.github(report).utf8)
                if let summary = ProcessInfo.processInfo.environment["GITHUB_STEP_SUMMARY"], !summary.isEmpty,
                   let h = FileHandle(forWritingAtPath: summary) ?? (FileManager.default.createFile(atPath: summary, contents: nil) ? FileHandle(forWritingAtPath: summary) : nil) {
                    h.seekToEndOfFile()
                    h.write(Data(VerifyReportFormat.markdown(report).utf8))
                    try? h.close()
                }
            }
            try writeOutput(body, to: output)
            if format != .text && output == nil && Console.stderrIsTTY {
                Console.err(VerifyReportFormat.verdictLine(report))
            }
        }
    }
}
