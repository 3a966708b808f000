import Foundation

/// `imprint stamp IMAGE`: the manifest (a file or a fresh fingerprint), the optional check that the image holds
/// exactly the context, the signature that travels with it, then the stamp — local (OCI layout, oci-archive,
/// docker-archive) or in a registry — through the one `StampPlan`.
package struct StampRequest {
    package var image: String
    package var manifestPath: String?
    package var context: String?
    package var dockerfile: String?
    package var stampPath = Imprint.defaultStampPath
    package var platform: String?
    package var output: String?
    package var tag: String?
    package var destination: String?
    /// Compare the image's files with the manifest first (verify's gate, bytecode included).
    package var check = false
    package var at: String?
    /// Sign with this Ed25519 key (PEM file); else carry `signatureFile`, else manifest.sig beside the manifest.
    package var key: String?
    package var signatureFile: String?
    /// Write SLSA provenance v1 of the stamped image here, signed with `key` (for a registry image it is also
    /// attached to the image as an OCI referrer).
    package var provenancePath: String?
    /// Step attestations (`*.link.dsse.json` from `imprint run/pipeline --attest`) to list as resolved dependencies.
    package var stepAttestations: String?
    /// How a `registry://` image is reached.
    package var registry = RegistryOptions()

    package init(image: String) { self.image = image }

    package enum Outcome: ExitStatusReporting {
        /// `--check` found that the image does not hold the context: nothing was written.
        case refused(VerifyReport)
        case stamped(Stamped)

        package var exitStatus: Int32 {
            if case .refused = self { return 1 }
            return 0
        }
    }

    package struct Stamped {
        /// The image manifest digest (a docker-archive: the config digest, the image ID).
        package var imageDigest: Digest
        package var isImageID: Bool
        package var contextDigest: Digest
        /// Where the stamped image went (the output file, the layout, the registry reference).
        package var destination: String
        /// Registry stamps: blobs uploaded and blobs mounted from the source repository.
        package var uploadedBlobs = 0
        package var mountedBlobs = 0
        /// The image that was stamped.
        package var baseDigest: Digest?
        /// The provenance written, and the referrer it was attached as (registry images).
        package var provenance: String?
        package var provenanceArtifact: Digest?
    }

    package func run() throws -> Outcome {
        if provenancePath != nil && key == nil { throw ImprintError.badInput("--provenance needs --key KEY (an Ed25519 private key, PEM)") }
        let started = Clock.rfc3339Now()
        let outcome = try stamp()
        guard case .stamped(var s) = outcome else { return outcome }
        if let provenancePath, let key {
            var steps: [(uri: String, digest: Digest)] = []
            if let dir = stepAttestations {
                let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".link.dsse.json") }.sorted()
                for n in names {
                    steps.append((ResourceURI.fileURI(dir + "/" + n), SHA256.hash(try readFile(dir + "/" + n, what: "step attestation"))))
                }
            }
            let base = try s.baseDigest.map { (uri: try ResourceURI.of(image, digest: $0), digest: $0) }
            let statement = Attestations.provenance(image: s.destination, imageDigest: s.imageDigest, context: s.contextDigest,
                                                    contextURI: context.map(ResourceURI.fileURI), baseImage: base, steps: steps,
                                                    started: started, finished: Clock.rfc3339Now())
            let envelope = try statement.envelope(key: try Ed25519PrivateKey(pemFile: key)).jsonBytes()
            try writeOutput(envelope, to: provenancePath)
            s.provenance = provenancePath
            if RegistryReference.isRegistry(image) {
                let ref = try RegistryReference(parsing: s.destination.hasPrefix("registry://") ? s.destination : "registry://" + s.destination)
                let at = "registry://\(ref.host)/\(ref.repository)@\(s.imageDigest.prefixed)"
                s.provenanceArtifact = try RegistryArtifacts.attachAttestation(envelope, to: at, options: registry).artifactDigest
            }
        }
        return .stamped(s)
    }

    func stamp() throws -> Outcome {
        if (manifestPath == nil) == (context == nil) {
            throw ImprintError.badInput("give exactly one of --manifest FILE or --context DIR")
        }
        let bytes: [UInt8]
        if let manifestPath {
            bytes = try readFile(manifestPath, what: "manifest")
        } else if let context {
            var fp = Fingerprinter(context: context)
            fp.dockerfile = dockerfile
            bytes = try fp.run().jsonBytes()
        } else {
            bytes = []
        }
        let m = try Manifest.parse(bytes, source: manifestPath.map { "the manifest \($0)" } ?? "the fingerprint")
        if check, let report = try checkImage(m), report.verdict == .mismatch { return .refused(report) }
        let signature = try signatureBytes(for: m)
        if RegistryReference.isRegistry(image) {
            if output != nil { throw ImprintError.badInput("a registry image is stamped in the registry; -o is only for oci-archive and docker-archive") }
            var stamper = RegistryStamper()
            stamper.options = registry
            stamper.signatureBytes = signature
            stamper.stampPath = stampPath
            stamper.platform = try platform.map { try Platform(parsing: $0) }
            let r = try stamper.stamp(image, manifestBytes: bytes, tag: tag, destination: destination)
            return .stamped(Stamped(imageDigest: r.manifestDigest, isImageID: false, contextDigest: m.rootDigest,
                                    destination: "\(r.destination)", uploadedBlobs: r.uploadedBlobs.count, mountedBlobs: r.mountedBlobs.count,
                                    baseDigest: r.baseDigest))
        }
        var stamper = ImageStamper()
        stamper.signatureBytes = signature
        stamper.stampPath = stampPath
        stamper.platform = try platform.map { try Platform(parsing: $0) }
        let r = try stamper.stamp(image, manifestBytes: bytes, output: output)
        return .stamped(Stamped(imageDigest: r.imageDigest, isImageID: r.kind == .dockerArchive, contextDigest: r.manifestRootDigest,
                                destination: output ?? image, baseDigest: r.baseDigest))
    }

    /// The same gate as `imprint verify` after deploy, bytecode checks included.
    func checkImage(_ m: Manifest) throws -> VerifyReport? {
        let loaded = try VerifyTarget.from(try SourceLoader.load(image, platform: platform, stampPath: stampPath, registry: registry,
                                                                 spool: try BytecodeSpool()), spec: image)
        var verifier = Verifier()
        verifier.at = at
        verifier.targetExcluded = [stampPath, ManifestSignature.path(besideManifest: stampPath)]
        verifier.bytecode = loaded.bytecode
        let plan = try loaded.copyPlan(for: m, at: at, emittedAt: nil, directory: nil)
        return try verifier.verify(manifest: m, manifestSource: manifestPath ?? context ?? "manifest",
                                   target: loaded.tree, targetName: image, targetKind: loaded.kind,
                                   copies: plan, layerHistory: loaded.layerHistory)
    }

    /// The signature that goes beside the manifest: made with `key`, or `signatureFile`, or manifest.sig beside
    /// the manifest when it exists; it must be for this manifest.
    func signatureBytes(for m: Manifest) throws -> [UInt8]? {
        if let key {
            return try ManifestSignature.sign(rootDigest: m.rootDigest, key: try Ed25519PrivateKey(pemFile: key)).jsonBytes()
        }
        guard let manifestPath else {
            if let signatureFile { throw ImprintError.badInput("--signature \(signatureFile) needs --manifest (a fresh fingerprint is not signed yet)") }
            return nil
        }
        let sigPath = signatureFile ?? ManifestSignature.path(besideManifest: manifestPath)
        guard access(sigPath, F_OK) == 0 else {
            if signatureFile != nil { throw ImprintError(.notFound, "cannot read signature \(sigPath): no such file") }
            return nil
        }
        let sig = try ManifestSignature.parse(try readFile(sigPath, what: "signature"), source: sigPath)
        guard sig.digest == m.rootDigest else {
            throw ImprintError.badInput("\(sigPath) signs \(sig.digest), not this manifest (\(m.rootDigest)); sign it again with `imprint sign`")
        }
        return sig.jsonBytes()
    }
}
