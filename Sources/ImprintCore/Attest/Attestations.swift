import Foundation

/// in-toto Statement v1 (`https://in-toto.io/Statement/v1`): subjects (name and digest set), a predicate type and
/// the predicate, serialised as canonical JSON so the same statement is the same bytes everywhere.
package struct InTotoStatement: Sendable {
    package static let type = "https://in-toto.io/Statement/v1"

    /// A subject: its name and its digest set (`sha256`, or `imprint-tree-v1` for a tree's Merkle root).
    package struct Subject: Sendable {
        package var name: String
        package var digest: JSONValue
        package init(_ name: String, sha256 digest: Digest) { self.name = name; self.digest = .digestSet(digest) }
        package init(_ name: String, tree digest: Digest) { self.name = name; self.digest = .treeDigestSet(digest) }
    }

    package var subjects: [Subject]
    package var predicateType: String
    package var predicate: JSONValue

    package init(subjects: [Subject], predicateType: String, predicate: JSONValue) {
        self.subjects = subjects; self.predicateType = predicateType; self.predicate = predicate
    }

    package var json: JSONValue {
        .object([
            "_type": .str(Self.type),
            "subject": .array(subjects.map { .object(["name": .str($0.name), "digest": $0.digest]) }),
            "predicateType": .str(predicateType),
            "predicate": predicate,
        ])
    }

    package func bytes() throws -> [UInt8] { try SignedJSON.canonical(json) }

    /// Signed into a DSSE envelope.
    package func envelope(key: Ed25519PrivateKey) throws -> DSSEEnvelope {
        try DSSEEnvelope.sign(try bytes(), key: key)
    }

    /// Reads the statement of an in-toto DSSE envelope.
    package static func parse(_ envelope: DSSEEnvelope, what: String) throws -> (json: JSONValue, predicateType: String, subjects: [(String, String)]) {
        guard envelope.payloadType == DSSEEnvelope.inTotoPayloadType else {
            throw ImprintError.badInput("\(what): payload type \(envelope.payloadType), not \(DSSEEnvelope.inTotoPayloadType)")
        }
        let v = try JSONValue.parse(envelope.payload, what: what)
        guard v["_type"]?.string == type, let pt = v["predicateType"]?.string, let subjects = v["subject"]?.array else {
            throw ImprintError.badInput("\(what): not an in-toto Statement v1")
        }
        let pairs = subjects.map { ($0["name"]?.string ?? "", $0["digest"]?["sha256"]?.string ?? "") }
        return (v, pt, pairs)
    }
}

/// The predicate types imprint writes, and what they mean (schemas/attestation-*.schema.json describe them).
package enum PredicateType {
    /// A build context's fingerprint: subject = the context (its root digest), predicate = the imprint manifest.
    package static let context = "https://github.com/imprint/imprint/attestations/context/v1"
    /// in-toto's link predicate: a step's command, materials and byproducts; subjects = its products.
    package static let link = "https://in-toto.io/attestation/link/v0.3"
    /// SLSA provenance v1 for a stamped image.
    package static let provenance = "https://slsa.dev/provenance/v1"
    /// SLSA verification summary v1 for a verified image or container.
    package static let verificationSummary = "https://slsa.dev/verification_summary/v1"

    /// `--require-attestation` accepts these short names too.
    package static func resolve(_ name: String) -> String {
        switch name {
        case "context": return context
        case "link": return link
        case "provenance", "slsa-provenance": return provenance
        case "vsa", "verification-summary": return verificationSummary
        default: return name
        }
    }
}

/// Builds imprint's attestations.
package enum Attestations {
    package static let builderID = "https://github.com/imprint/imprint/stamp@v\(Imprint.version)"
    package static let buildType = "https://github.com/imprint/imprint/build-types/stamp/v1"
    package static let verifierID = "https://github.com/imprint/imprint/verify@v\(Imprint.version)"

    /// `fingerprint --attest`: the context as subject (named `name`, digest = the root digest), the manifest as
    /// predicate.
    package static func context(_ manifest: Manifest, name: String) throws -> InTotoStatement {
        let manifestBytes = manifest.jsonBytes()
        let predicate: JSONValue = .object([
            "digestAlgorithm": .str(Manifest.digestAlgorithm),
            "rootDigest": .str(manifest.rootDigest.prefixed),
            "manifestDigest": .str(SHA256.hash(manifestBytes).prefixed),
            "manifest": try JSONValue.parse(manifestBytes, what: "manifest"),
        ])
        return InTotoStatement(subjects: [.init(name, tree: manifest.rootDigest)], predicateType: PredicateType.context, predicate: predicate)
    }

    /// A step's files as in-toto lists them: every regular file below each artifact, and every symlink that leads to
    /// one, with the SHA-256 of the content.
    package static func files(_ artifacts: [Artifact], trees: [String: Tree]) -> [(path: String, digest: Digest)] {
        var out: [(String, Digest)] = []
        for a in artifacts {
            switch a.kind {
            case .file: if let d = a.digest { out.append((a.path, d)) }
            case .directory:
                guard let tree = trees[a.path] else { continue }
                tree.walk { rel, node in
                    let name = (a.path == "." ? "" : a.path + "/") + rel.lossyString
                    if node.type == .file { out.append((name, node.digest)) }
                    // A symlink, as in-toto-run records it: with the content of the file it leads to.
                    if node.type == .symlink, let d = tree.symlinkTargets[rel] { out.append((name, d)) }
                }
            case .missing: break
            }
        }
        return out.sorted { $0.0 < $1.0 }
    }

    /// The in-toto link predicate v0.3 of a step record, with its per-file materials; subjects = its products. A
    /// Statement needs a subject: a step that produced nothing (a test step) is about its materials, and a step with
    /// neither about its standard output.
    package static func link(_ record: StepRecord, materials: [(path: String, digest: Digest)], products: [(path: String, digest: Digest)]) -> InTotoStatement {
        let predicate: JSONValue = .object([
            "name": .str(record.name),
            "command": .array(record.command.map { .str($0) }),
            "materials": .array(materials.map { .object(["name": .str($0.path), "digest": .digestSet($0.digest)]) }),
            "byproducts": .object(byproducts(record)),
            "environment": .object(record.environment.compactMapValues { $0.map { .str($0) } }),
        ])
        var subjects = (products.isEmpty ? materials : products).map { InTotoStatement.Subject($0.path, sha256: $0.digest) }
        if subjects.isEmpty { subjects = [.init("\(record.name) stdout", sha256: record.stdout.digest)] }
        return InTotoStatement(subjects: subjects, predicateType: PredicateType.link, predicate: predicate)
    }

    static func byproducts(_ record: StepRecord) -> [String: JSONValue] {
        var b: [String: JSONValue] = ["stdout-sha256": .str(record.stdout.digest.hex), "stderr-sha256": .str(record.stderr.digest.hex),
                                      "status": .str(record.status.rawValue)]
        if let code = record.exitCode { b["return-value"] = .int(code) }
        return b
    }

    /// A classic in-toto link file (`NAME.KEYID8.link`, in-toto 1.x–3.x metadata): `signed` and its signature
    /// over the canonical JSON, which `in-toto-verify` checks against a layout naming the key.
    package static func classicLink(_ record: StepRecord, materials: [(path: String, digest: Digest)],
                                   products: [(path: String, digest: Digest)], key: Ed25519PrivateKey) throws -> (name: String, bytes: [UInt8]) {
        func map(_ files: [(path: String, digest: Digest)]) -> JSONValue {
            .object(Dictionary(files.map { ($0.path, JSONValue.digestSet($0.digest)) }, uniquingKeysWith: { a, _ in a }))
        }
        var by: [String: JSONValue] = ["stdout": .str(""), "stderr": .str("")]
        by["return-value"] = .int(record.exitCode ?? -1)
        let signed: JSONValue = .object([
            "_type": .str("link"),
            "name": .str(record.name),
            "command": .array(record.command.map { .str($0) }),
            "materials": map(materials),
            "products": map(products),
            "byproducts": .object(by),
            "environment": .object([:]),
        ])
        let sig = try key.sign(try SignedJSON.canonical(signed))
        let keyid = key.publicKey.sslibKeyID
        let doc: JSONValue = .object(["signed": signed, "signatures": .array([.object(["keyid": .str(keyid), "sig": .str(Hex.encode(sig))])])])
        return ("\(record.name).\(keyid.prefix(8)).link", try SignedJSON.canonical(doc) + [0x0A])
    }

    /// SLSA provenance v1 for a stamped image: subject the image (its manifest digest, or a docker-archive's image
    /// ID); resolved dependencies the build context (its Merkle root, `imprint-tree-v1`), the base image (pinned by
    /// digest: `ResourceURI`) and the step attestations given (`file:` URIs).
    package static func provenance(image: String, imageDigest: Digest, context: Digest, contextURI: String?, baseImage: (uri: String?, digest: Digest)?,
                                  steps: [(uri: String, digest: Digest)], started: String, finished: String) -> InTotoStatement {
        var context: [String: JSONValue] = ["name": .str("build context"), "digest": .treeDigestSet(context)]
        if let contextURI { context["uri"] = .str(contextURI) }
        var deps: [JSONValue] = [.object(context)]
        if let base = baseImage {
            var d: [String: JSONValue] = ["name": .str("base image"), "digest": .digestSet(base.digest)]
            if let uri = base.uri { d["uri"] = .str(uri) }
            deps.append(.object(d))
        }
        for s in steps { deps.append(.object(["uri": .str(s.uri), "digest": .digestSet(s.digest), "mediaType": .str(DSSEEnvelope.mediaType)])) }
        let predicate: JSONValue = .object([
            "buildDefinition": .object([
                "buildType": .str(buildType),
                "externalParameters": .object(["image": .str(image)]),
                "resolvedDependencies": .array(deps),
            ]),
            "runDetails": .object([
                "builder": .object(["id": .str(builderID)]),
                "metadata": .object(["startedOn": .str(started), "finishedOn": .str(finished)]),
            ]),
        ])
        return InTotoStatement(subjects: [.init(image, sha256: imageDigest)], predicateType: PredicateType.provenance, predicate: predicate)
    }

    /// A SLSA verification summary v1 of a verify report: the resource (`resourceUri` from `ResourceURI`; the subject
    /// its image digest, or the Merkle root of the tree that was checked), the policy (a document imprint ships,
    /// `schemas/policies/`, named by URI and pinned by its SHA-256), PASSED or FAILED.
    package static func verificationSummary(_ report: VerifyReport, resourceDigest: Digest?, time: String) throws -> InTotoStatement {
        guard let uri = try ResourceURI.of(report.target, digest: resourceDigest) else {
            throw ImprintError.badInput("a verification summary names its resource by URI: verify a file, image or container, not standard input")
        }
        let passed = report.verdict == .verified
        let (policyURI, document) = report.filesCompared ? (VerificationPolicy.exactContextURI, VerificationPolicy.exactContext)
                                                         : (VerificationPolicy.stampURI, VerificationPolicy.stamp)
        let predicate: JSONValue = .object([
            "verifier": .object(["id": .str(verifierID)]),
            "timeVerified": .str(time),
            "resourceUri": .str(uri),
            "policy": .object(["uri": .str(policyURI), "digest": .digestSet(SHA256.hash(Array(document.utf8)))]),
            "verificationResult": .str(passed ? "PASSED" : "FAILED"),
            "verifiedLevels": .array([.str(passed ? "SLSA_BUILD_LEVEL_0" : "FAILED")]),
            "slsaVersion": .str("1.0"),
        ])
        let subject: InTotoStatement.Subject
        if let resourceDigest { subject = .init(report.target, sha256: resourceDigest) }
        else { subject = .init(report.target, tree: report.actualDigest ?? report.manifestDigest) }
        return InTotoStatement(subjects: [subject], predicateType: PredicateType.verificationSummary, predicate: predicate)
    }
}

/// Writes a step's attestations after it ran (`imprint run --attest DIR`, `imprint pipeline --attest DIR`):
/// `NAME.link.dsse.json`, the in-toto link predicate v0.3 in a DSSE envelope, and `NAME.KEYID8.link`, the classic
/// in-toto link that `in-toto-verify` checks against a layout.
package struct StepAttestor: StepAttesting {
    package let directory: String
    package let key: Ed25519PrivateKey

    package init(directory: String, key: Ed25519PrivateKey) {
        self.directory = directory
        self.key = key
    }

    /// - Returns: the paths written.
    @discardableResult
    package func attest(_ record: StepRecord, runner: StepRunner) throws -> [String] {
        let materials = Attestations.files(record.materials, trees: runner.prefingerprinted?.trees ?? [:])
        let products = Attestations.files(record.products, trees: runner.productTrees)
        try createParentDirectory(of: directory + "/x")
        let envelope = try Attestations.link(record, materials: materials, products: products).envelope(key: key)
        let dsse = directory + "/\(record.name).link.dsse.json"
        try AtomicFile.write(envelope.jsonBytes(), to: dsse)
        let (name, bytes) = try Attestations.classicLink(record, materials: materials, products: products, key: key)
        let link = directory + "/" + name
        try AtomicFile.write(bytes, to: link)
        return [dsse, link]
    }
}
