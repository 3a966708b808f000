import ArgumentParser
import Foundation
import ImprintCore

extension ImprintCommand {
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify that deployed files are byte-identical to what CI built, and catch stale bytecode.",
            discussion: """
            TARGET is a directory, a tar file or - (a tar stream on stdin), or an image (OCI layout, oci-archive, \
            docker-archive). The manifest is the one embedded in the target (/.imprint/manifest.json from \
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

        @Argument(help: "Directory, tar file, - for a tar stream on stdin, or an image.", completion: .file())
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

        func run() async throws {
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
                let loaded = try VerifyTarget.load(target, platform: platform)
                verifier.bytecode = loaded.bytecode
                let (manifestValue, manifestSource, emittedAt): (Manifest, String, String?)
                if let manifest {
                    (manifestValue, manifestSource) = try loadManifest(manifest)
                    emittedAt = nil
                } else if let embedded = loaded.embedded {
                    (manifestValue, manifestSource, emittedAt) = embedded
                } else {
                    throw ImprintError(.notFound, "\(target) holds no imprint manifest (/\(Imprint.defaultStampPath)); stamp the image or pass --manifest")
                }
                if pubkey != nil, manifest == nil, verifier.signature == nil {
                    verifier.signatureSource = ManifestSignature.path(besideManifest: manifestSource)
                    if let bytes = loaded.signatureBytes {
                        verifier.signature = try ManifestSignature.parse(bytes, source: verifier.signatureSource!)
                    }
                }
                if manifest == nil, emittedAt == nil { verifier.targetExcluded = [Imprint.defaultStampPath] }
                let report = try verifier.verify(manifest: manifestValue, manifestSource: manifestSource, target: loaded.tree,
                                                 targetName: target == "-" ? "stdin" : target, targetKind: loaded.kind,
                                                 emittedAt: emittedAt)
                try render(report)
                if report.verdict == .mismatch { throw ExitCode(1) }
                if requireTrust && report.trust == .none {
                    Console.err("imprint: not authenticated: pass --expect DIGEST or --pubkey KEY (--require-trust)")
                    throw ExitCode(1)
                }
            }
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

/// Loads what `verify` compares: a tree plus the manifest embedded in it, if any.
enum VerifyTarget {
    struct Loaded {
        var tree: Tree
        var kind: String
        var embedded: (Manifest, String, String?)?
        /// The signature stored beside the embedded manifest, if any.
        var signatureBytes: [UInt8]?
        /// The bytecode checks for this kind of target.
        var bytecode: ((Tree, Bytes) -> [BytecodeFinding])?
    }

    static func load(_ spec: String, platform: String? = nil) throws -> Loaded {
        let src = try SourceLoader.load(spec, platform: platform)
        if src.kind == .manifestFile {
            throw ImprintError.badInput("\(spec) is a manifest, not a deployed tree; pass it with --manifest and verify a directory, tar or image")
        }
        let isDirectory = src.kind == .directory
        let root = src.path
        // Bytes of a file in the target: captured while streaming, or read from disk for a directory.
        let read: (Bytes) throws -> [UInt8] = { path in
            if let c = src.tree.node(at: path)?.capturedContent { return c }
            if isDirectory { return try readFile((root as NSString).appendingPathComponent(path.lossyString), what: "manifest") }
            if path.pathComponents.joinedPath == Array(Imprint.defaultStampPath.utf8), let b = src.embeddedManifestBytes { return b }
            throw ImprintError(.notFound, "\(spec): /\(path.lossyString) was not captured")
        }
        if let problem = src.embeddedManifestProblem { throw ImprintError.badInput(problem) }
        let embedded = try findEmbedded(in: src.tree, read: read)
        var signatureBytes: [UInt8]?
        if let e = embedded {
            let sig = Array(ManifestSignature.path(besideManifest: e.1).utf8).pathComponents.joinedPath
            if let n = src.tree.node(at: sig), n.type == .file { signatureBytes = try read(sig) }
        }
        let bytecode: (Tree, Bytes) -> [BytecodeFinding] = { subtree, at in
            if isDirectory {
                return BytecodeChecker.check(tree: subtree, content: BytecodeChecker.directoryReader(root: (root as NSString).appendingPathComponent(at.lossyString)))
            }
            var hashes: [Bytes: [UInt32: UInt64]] = [:]
            subtree.walk { path, node in if let h = node.pySourceHashes { hashes[path] = h } }
            return BytecodeChecker(content: nil, sourceHashes: hashes).check(subtree)
        }
        let kind = src.kind.rawValue
        return Loaded(tree: src.tree, kind: kind, embedded: embedded, signatureBytes: signatureBytes, bytecode: bytecode)
    }

    /// Finds an embedded manifest: the stamp path at the root, else an emitted one (`X/.imprint/manifest.json`
    /// whose manifest lists that path as excluded) up to four levels down.
    static func findEmbedded(in tree: Tree, read: (Bytes) throws -> [UInt8]) throws -> (Manifest, String, String?)? {
        let stamp = Array(Imprint.defaultStampPath.utf8)
        if let n = tree.node(at: stamp), n.type == .file {
            let m = try Manifest.parse(try read(stamp), source: "/" + Imprint.defaultStampPath)
            if m.metadata.excluded.contains(Imprint.defaultStampPath) { return (m, "/" + Imprint.defaultStampPath, "") }
            return (m, "/" + Imprint.defaultStampPath, nil)
        }
        var found: (Manifest, String, String?)?
        var candidates: [Bytes] = []
        tree.walk { path, node in
            guard node.type == .file, path.pathComponents.count <= 6, path.count > stamp.count,
                  path.isPath(under: []) , Array(path.suffix(stamp.count + 1)) == [0x2F] + stamp else { return }
            candidates.append(path)
        }
        for p in candidates {
            let m = try Manifest.parse(try read(p), source: "/" + p.lossyString)
            let root = Array(p.dropLast(stamp.count + 1))
            if m.metadata.excluded.contains(Imprint.defaultStampPath) { found = (m, "/" + p.lossyString, root.lossyString); break }
        }
        return found
    }
}
