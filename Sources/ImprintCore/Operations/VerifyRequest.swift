import Foundation

/// `imprint verify TARGET`: everything verify decides, for any target — a directory, a tar stream, an image (local
/// or registry), a running container or process, or a Python process's probe evidence — with the manifest from
/// the target, a file or the history store, and the trust options. The command line only renders the report.
package struct VerifyRequest {
    package var target: String
    /// A manifest file or `history:REF` to compare with, instead of the one the target carries.
    package var manifest: String?
    /// The root digest CI recorded.
    package var expect: Digest?
    /// An Ed25519 public key (PEM file) the manifest must be signed by, and the signature file when not beside it.
    package var pubkey: String?
    package var signature: String?
    package var at: String?
    package var include: [String] = []
    package var allowExtra: [String] = []
    package var platform: String?
    /// The interpreter that proves timestamp pycs by recompiling their sources (nil: `python3`).
    package var python: String?
    /// Check only the embedded manifest, not the files.
    package var stampOnly = false
    /// For a running container: check its files only.
    package var checkContainerProcesses = true
    /// For a directory (`/` inside a container): also check this machine's processes.
    package var checkLocalProcesses = false
    /// For a registry image: predicate types of attestations that must be attached, signed by `pubkey`, about it.
    package var requiredAttestations: [String] = []
    /// How registries (and a Python probe's HTTP endpoint) are reached: plain HTTP, deadline, environment.
    package var registry = RegistryOptions()
    /// Digests of files seen before, for running containers (`imprint watch`).
    package var digestCache: DigestCache?
    /// Parsed manifests shared between verifications (`imprint watch`).
    package var manifestCache: ManifestCache?

    /// For an http(s):// target: compare what the site serves with the manifest's files (`--served`), instead of
    /// reading the evidence of a Python probe.
    package var served = false
    /// With `served`: the manifest's directory published at the URL ("" for its root).
    package var servedRoot: String?
    /// With `served`: requests in flight at once.
    package var concurrency = 8
    /// With `served`: the history store that names the build stale bytes come from (nil: the default store, when
    /// it exists).
    package var history: String?
    /// With `served`: (assets done, assets) as the check goes.
    package var progress: ((Int, Int) -> Void)?

    package init(target: String) { self.target = target }

    var targetName: String { target == "-" ? "stdin" : target }

    /// - Throws: `badInput` for bad options or input, `notFound` when there is nothing to compare with.
    package func run() throws -> VerifyReport {
        var report = try verifyTarget()
        if !requiredAttestations.isEmpty { report = report.adding(try attestationFindings()) }
        return report
    }

    /// `verify --attest PATH --key KEY`: the report as a signed SLSA verification summary about the target. A local
    /// image is named by the digest the report carries from its one load; a registry image by what its reference
    /// resolves to (the tag's manifest or index, as the referrers API files attestations), one HEAD request.
    package func verificationSummary(_ report: VerifyReport, keyFile: String) throws -> [UInt8] {
        let digest = try RegistryReference.isRegistry(target) ? imageDigest() : (report.imageDigest ?? imageDigest())
        let vsa = try Attestations.verificationSummary(report, resourceDigest: digest, time: Clock.rfc3339Now())
        return try vsa.envelope(key: try Ed25519PrivateKey(pemFile: keyFile)).jsonBytes()
    }

    /// The image's digest, what attestations about it name: the manifest digest for a registry image, an OCI layout
    /// or an oci-archive; the image ID (config digest) for a docker-archive, which has no manifest of its own.
    /// Nil for targets that are not images.
    package func imageDigest() throws -> Digest? {
        guard RegistryReference.isRegistry(target) else {
            guard !LiveSource.isLive(target), target != "-", let parsed = try? SourceLoader.parse(target), parsed.kind.isImage else { return nil }
            guard let image = try SourceLoader.load(target, platform: platform, withTree: false, registry: registry).image else { return nil }
            return image.digest
        }
        let ref = try RegistryReference(parsing: target)
        if let d = ref.digest { return d }
        return try RegistryClient(for: ref, options: registry).manifestDescriptor(ref.repository, reference: ref.manifestReference)?.digest
    }

    func attestationFindings() throws -> [VerifyFinding] {
        guard RegistryReference.isRegistry(target) else {
            throw ImprintError.badInput("--require-attestation needs a registry:// image (attestations are its OCI referrers)")
        }
        guard let pubkey else { throw ImprintError.badInput("--require-attestation needs --pubkey KEY") }
        let key = try Ed25519PublicKey(pemFile: pubkey)
        let (subject, checks) = try RegistryArtifacts.checkAttestations(for: target, predicateTypes: requiredAttestations, key: key, options: registry)
        return checks.map { c in
            if let by = c.satisfiedBy {
                return VerifyFinding(.attestation, .info, path: "", message: "\(c.predicateType): signed by the key, about \(subject) (artifact \(by))",
                                     detail: "attestation-verified")
            }
            return VerifyFinding(.attestation, .error, path: "", message: "\(c.predicateType): \(c.problems.joined(separator: "; "))",
                                 expected: [("predicateType", c.predicateType), ("subject", subject.prefixed), ("keyid", key.sslibKeyID)],
                                 detail: "attestation-missing")
        }
    }

    func verifyTarget() throws -> VerifyReport {
        var verifier = Verifier()
        verifier.at = at
        verifier.include = include
        verifier.allowExtra = allowExtra
        verifier.expectedDigest = expect
        try loadSignatureOptions(&verifier)
        if stampOnly && expect == nil && pubkey == nil { throw ImprintError.badInput("--stamp-only needs --expect or --pubkey") }
        if stampOnly || (RegistryReference.isRegistry(target) && expect != nil && manifest == nil) {
            // The stamp alone decides a wrong image without fetching any other layer.
            let report = try verifyStamp(verifier)
            if stampOnly || report.verdict == .mismatch { return report }
        }
        if served { return try verifyServed() }
        if target.hasPrefix("http://") || target.hasPrefix("https://") {
            // A running Python process, through the evidence its probe serves.
            let loaded = try manifest.map { try ManifestReference.load($0) }
            let evidence = try RuntimeEvidence.fetch(target, client: HTTPClient(registry.httpConfiguration))
            return evidence.report(target: target, manifest: loaded?.manifest, manifestSource: loaded?.name, expected: expect)
        }
        if LiveSource.isLive(target) { return try verifyLive(verifier) }
        if checkLocalProcesses && RegistryReference.isRegistry(target) {
            throw ImprintError.badInput("--processes needs a directory target, such as /")
        }
        return try verifyTree(verifier)
    }

    /// What a site serves, file by file, against the manifest (`ServedSiteCheck`).
    func verifyServed() throws -> VerifyReport {
        guard target.hasPrefix("http://") || target.hasPrefix("https://"), let base = URL(string: target), base.host != nil else {
            throw ImprintError.badInput("--served needs an http:// or https:// URL, got \(target)")
        }
        guard let manifest else { throw ImprintError.badInput("--served needs --manifest (the build's manifest file, or history:REF)") }
        let loaded = try ManifestReference.load(manifest, history: history)
        var check = ServedSiteCheck(base: base, manifest: loaded.manifest)
        check.servedRoot = servedRoot ?? ""
        check.include = include
        check.concurrency = concurrency
        let storePath = history ?? HistoryStore.defaultLocation()
        if FileManager.default.fileExists(atPath: storePath) {
            check.whichBuild = BuildFinder(store: storePath, servedRoot: check.servedRoot).describe
        }
        var (report, _) = try check.run(client: HTTPClient(registry.httpConfiguration), progress: progress)
        report.manifestSource = loaded.name
        if let expect {
            report.expectedDigest = expect
            if loaded.manifest.rootDigest == expect {
                report.trust = .expectedDigest
            } else {
                report.findings.insert(VerifyFinding(.digestMismatch, .error, path: "", message: "the manifest is \(loaded.manifest.rootDigest.prefixed), not the one CI recorded",
                                                     expected: [("digest", expect.prefixed)], actual: [("digest", loaded.manifest.rootDigest.prefixed)]), at: 0)
                report.verdict = .mismatch
            }
        }
        return report
    }

    /// The rollout gate for a site (`wait URL --served`): checks what it serves every `interval` seconds until
    /// every file, entry point and precache list is the build's, or `timeout` passes. A round that fails to fetch
    /// is a round not verified, not an error: the site may be restarting.
    package func waitServed(interval: Double, timeout: Double, onRound: (Int, Double, VerifyReport) -> Void)
        throws -> WaitResult<VerifyReport> {
        let start = Deadline.now()
        var round = 0
        while true {
            round += 1
            let report = try verifyServed()
            let elapsed = -start.remaining
            onRound(round, elapsed, report)
            if report.verdict == .verified { return WaitResult(report: report, complete: true, rounds: round, seconds: elapsed) }
            if elapsed + interval > timeout { return WaitResult(report: report, complete: false, rounds: round, seconds: elapsed) }
            Thread.sleep(forTimeInterval: interval)
        }
    }

    func noManifest() -> ImprintError {
        ImprintError(.notFound, "\(target) holds no imprint manifest (/\(Imprint.defaultStampPath)); stamp the image or pass --manifest")
    }

    func verifyStamp(_ base: Verifier) throws -> VerifyReport {
        var verifier = base
        let src = try (pubkey == nil ? SourceLoader.loadEmbeddedManifestOnly(target, platform: platform, registry: registry)
                                     : SourceLoader.load(target, platform: platform, registry: registry))
        if let problem = src.embeddedManifestProblem { throw ImprintError.badInput(problem) }
        guard let m = src.embeddedManifest else { throw noManifest() }
        let sigPath = ManifestSignature.path(besideManifest: Imprint.defaultStampPath)
        if pubkey != nil, verifier.signature == nil, let sig = src.tree.node(at: Array(sigPath.utf8))?.capturedContent {
            verifier.signature = try ManifestSignature.parse(sig, source: "/" + sigPath)
        }
        var report = try verifier.verifyStamp(manifest: m, manifestSource: "/" + Imprint.defaultStampPath, targetName: targetName,
                                              targetKind: src.kind.rawValue)
        report.imageDigest = src.image?.digest
        return report
    }

    func verifyTree(_ base: Verifier) throws -> VerifyReport {
        var verifier = base
        let loaded = try VerifyTarget.load(target, platform: platform, python: python, registry: registry)
        verifier.bytecode = loaded.bytecode
        let (manifestValue, manifestSource, emittedAt): (Manifest, String, String?)
        if let manifest {
            let m = try ManifestReference.load(manifest)
            (manifestValue, manifestSource, emittedAt) = (m.manifest, m.name, nil)
        } else if let embedded = loaded.embedded {
            (manifestValue, manifestSource, emittedAt) = (embedded.manifest, embedded.source, embedded.contextRoot)
        } else {
            throw noManifest()
        }
        if pubkey != nil, manifest == nil, verifier.signature == nil {
            verifier.signatureSource = ManifestSignature.path(besideManifest: manifestSource)
            if let bytes = loaded.embedded?.signatureBytes {
                verifier.signature = try ManifestSignature.parse(bytes, source: ManifestSignature.path(besideManifest: manifestSource))
            }
        }
        if manifest == nil, emittedAt == nil { verifier.targetExcluded = [Imprint.defaultStampPath] }
        let plan = try loaded.copyPlan(for: manifestValue, at: at, emittedAt: emittedAt, directory: target)
        var report = try verifier.verify(manifest: manifestValue, manifestSource: manifestSource, target: loaded.tree,
                                         targetName: targetName, targetKind: loaded.kind, emittedAt: emittedAt,
                                         copies: plan, layerHistory: loaded.layerHistory)
        report.imageDigest = loaded.imageDigest
        guard checkLocalProcesses else { return report }
        // This machine's processes (inside a container: the container's), against the verified directory.
        guard loaded.kind == "directory" else { throw ImprintError.badInput("--processes needs a directory target, such as /") }
        let base = URL(fileURLWithPath: target).standardizedFileURL.resolvingSymlinksInPath().path
        let absoluteAt = (base == "/" ? "" : base) + (report.at == "/" ? "" : report.at)
        let subtree = loaded.tree.subtree(at: TreePath(report.at))
        let local = LiveSource.local()
        return report.adding(ProcessChecks.check(local, processes: local.processes(), tree: subtree,
                                                 at: absoluteAt.isEmpty ? "/" : absoluteAt, manifest: manifestValue))
    }

    /// A running container: its application directory read through /proc/PID/root, then its processes.
    func verifyLive(_ base: Verifier) throws -> VerifyReport {
        var verifier = base
        var source = try LiveSource.open(target)
        source.digestCache = digestCache
        var live = LiveVerification(source: source)
        live.at = at
        live.python = python
        live.manifestCache = manifestCache
        if let manifest { (live.manifest, live.manifestSource) = try ManifestReference.load(manifest, cache: manifestCache) }
        let prepared = try live.prepare()
        verifier.at = prepared.at
        verifier.bytecode = prepared.target.bytecode
        if pubkey != nil, manifest == nil, verifier.signature == nil, let e = prepared.target.embedded {
            let source = ManifestSignature.path(besideManifest: e.source)
            verifier.signatureSource = source
            if let bytes = e.signatureBytes { verifier.signature = try ManifestSignature.parse(bytes, source: source) }
        }
        if manifest == nil, !prepared.emitted { verifier.targetExcluded = [Imprint.defaultStampPath] }
        let report = try verifier.verify(manifest: prepared.manifest, manifestSource: prepared.manifestSource, target: prepared.target.tree,
                                         targetName: target, targetKind: "container", emittedAt: nil)
        guard checkContainerProcesses else { return report }
        let subtree = prepared.target.tree.subtree(at: TreePath(report.at))
        return report.adding(ProcessChecks.check(live.source, processes: live.source.processes(), tree: subtree, at: report.at,
                                                 manifest: prepared.manifest, fileFindings: report.findings))
    }

    /// The public key, and the signature: --signature, else the .sig beside --manifest.
    func loadSignatureOptions(_ verifier: inout Verifier) throws {
        guard let pubkey else { return }
        verifier.publicKey = try Ed25519PublicKey(pemFile: pubkey)
        if let signature {
            verifier.signature = try ManifestSignature.parse(try readFile(signature, what: "signature"), source: signature)
            verifier.signatureSource = signature
        } else if let manifest, !ManifestReference.isHistory(manifest) {
            let p = ManifestSignature.path(besideManifest: manifest)
            verifier.signatureSource = p
            if access(p, F_OK) == 0 {
                verifier.signature = try ManifestSignature.parse(try readFile(p, what: "signature"), source: p)
            }
        }
    }
}

/// Names the recorded build a file's bytes come from: every record of a history store, newest first, indexed once
/// on first use by (path under the served root, SHA-256).
final class BuildFinder: @unchecked Sendable {  // why: `index` is built and read under `lock`
    private let store: String
    private let servedRoot: String
    private let lock = NSLock()
    private var index: [String: String]?

    init(store: String, servedRoot: String) {
        self.store = store
        self.servedRoot = servedRoot.split(separator: "/").joined(separator: "/")
    }

    func describe(_ path: String, _ sha256: String) -> String? {
        lock.lock(); defer { lock.unlock() }
        if index == nil { index = (try? build()) ?? [:] }
        return index?[path + "\u{0}" + sha256]
    }

    private func build() throws -> [String: String] {
        let history = try HistoryStore(at: store, create: false)
        var out: [String: String] = [:]
        for entry in try history.entries().sorted(by: { $0.recordedNanos > $1.recordedNanos }) {
            let tags = entry.tags.isEmpty ? "" : ", " + entry.tags.joined(separator: ", ")
            let name = "build \(entry.record.hex.prefix(12)) (recorded \(entry.created)\(tags))"
            let tree = try history.tree(root: entry.root)
            tree.walk { path, node in
                guard node.type == .file else { return }
                let full = path.lossyString
                let rel: String
                if servedRoot.isEmpty { rel = full } else if full.hasPrefix(servedRoot + "/") { rel = String(full.dropFirst(servedRoot.count + 1)) } else { return }
                let key = rel + "\u{0}" + node.digest.hex
                if out[key] == nil { out[key] = name }
            }
        }
        return out
    }
}
