import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Imprint manifests and history archives stored in a registry as OCI 1.1 artifacts (image-spec `manifest.md`
/// "Guidelines for Artifact Usage"): empty config, the payload as the one layer, `artifactType` naming it.
package enum RegistryArtifacts {
    /// `artifactType` of an imprint manifest attached to an image.
    package static let manifestArtifactType = Manifest.mediaType
    /// Media type of the payload layer: the manifest JSON, gzip-compressed.
    package static let manifestLayerType = Manifest.mediaType + "+gzip"
    /// `artifactType` of a history archive.
    package static let historyArtifactType = "application/vnd.imprint.history.v1"
    /// Media type of the history payload: the archive as `history export` writes it (one compressed file).
    package static let historyLayerType = "application/vnd.imprint.history.v1.tar+gzip"
    /// The empty config of artifacts (image-spec "Guidance for an Empty Descriptor").
    package static let emptyConfigType = MediaType.ociEmpty
    package static let emptyConfigBytes: [UInt8] = Array("{}".utf8)
    package static var emptyConfig: Descriptor {
        Descriptor(mediaType: emptyConfigType, digest: SHA256.hash(emptyConfigBytes), size: 2)
    }
    /// The tag of the referrers index for `subject` on a registry without the referrers API: `<alg>-<hex>`, as the
    /// OCI distribution spec v1.1 ("Referrers Tag Schema") says, so every OCI 1.1 client (oras, regctl, cosign)
    /// finds imprint's artifacts and imprint finds theirs.
    package static func fallbackTag(_ subject: Digest) -> String { "sha256-\(subject.hex)" }

    /// The tag imprint 0.1 wrote its index under (`sha256-<hex>.imprint`): still read, never written.
    package static func legacyFallbackTag(_ subject: Digest) -> String { "sha256-\(subject.hex).imprint" }

    // MARK: Manifests attached to images

    /// What `attach` did.
    package struct AttachResult {
        package var subject: Descriptor
        package var artifactDigest: Digest
        /// True when the registry indexes referrers itself (answered `OCI-Subject`).
        package var referrersAPI: Bool
        /// The tag of the index written when it does not.
        package var fallbackTag: String?
    }

    /// What `imprint attach` sends: a manifest file as it is, a build context fingerprinted as BuildKit sends it
    /// (its own `.dockerignore`), or a signed attestation.
    package enum AttachSource {
        case manifestFile(String)
        case context(String)
        case attestation(String)
    }

    /// Attaches `source` to the image `spec` points at: a manifest (a file's, or the context's fingerprint) as an
    /// imprint artifact, an attestation as itself.
    package static func attach(_ source: AttachSource, to spec: String, options: RegistryOptions = RegistryOptions()) throws -> AttachResult {
        switch source {
        case .attestation(let path):
            return try attachAttestation(try readFile(path, what: "attestation"), to: spec, options: options)
        case .manifestFile(let path):
            return try attach(try readFile(path, what: "manifest"), to: spec, options: options)
        case .context(let dir):
            return try attach(try Fingerprinter(context: dir).run().jsonBytes(), to: spec, options: options)
        }
    }

    /// Pushes `manifestBytes` as an artifact whose `subject` is the image `spec` points at (by tag or digest).
    /// When the registry does not answer `OCI-Subject`, the artifact is also listed in the spec's referrers index
    /// under the tag `sha256-<hex>` (existing entries kept, other tools' included).
    package static func attach(_ manifestBytes: [UInt8], to spec: String, client: RegistryClient? = nil,
                              options: RegistryOptions = RegistryOptions()) throws -> AttachResult {
        let manifest = try Manifest.parse(manifestBytes, source: "manifest")
        let ref = try RegistryReference(parsing: spec)
        let client = try client ?? RegistryClient(for: ref, options: options)
        let repo = ref.repository
        let (subject, _) = try client.manifest(repo, reference: ref.manifestReference)
        let payload = try GzipEncoder.compress(manifestBytes, level: 9)
        let root = manifest.rootDigest.prefixed
        let layer = Descriptor(mediaType: manifestLayerType, digest: SHA256.hash(payload), size: UInt64(payload.count),
                               annotations: [Imprint.digestLabel: root, "org.opencontainers.image.title": "manifest.json"])
        return try pushReferrer(client, repo: repo, subject: subject, artifactType: manifestArtifactType, payload: payload, layer: layer,
                                annotations: [Imprint.digestLabel: root, "org.opencontainers.image.created": manifest.metadata.created])
    }

    /// Pushes an OCI 1.1 artifact (the empty config, one layer holding `payload`) whose `subject` is `subject`; when
    /// the registry does not answer `OCI-Subject`, also lists it in the spec's `sha256-<hex>` index.
    private static func pushReferrer(_ client: RegistryClient, repo: String, subject: Descriptor, artifactType: String,
                                     payload: [UInt8], layer: Descriptor, annotations: [String: String]) throws -> AttachResult {
        let artifact = ImageManifest(artifactType: artifactType, config: emptyConfig, layers: [layer],
                                     subject: Descriptor(mediaType: subject.mediaType, digest: subject.digest, size: subject.size),
                                     annotations: annotations)
        let bytes = try OCIJSON.encode(artifact)
        try client.pushBlob(repo, emptyConfigBytes)
        try client.pushBlob(repo, payload)
        let put = try client.pushManifest(repo, reference: SHA256.hash(bytes).prefixed, bytes, mediaType: MediaType.ociManifest)
        var result = AttachResult(subject: subject, artifactDigest: put.digest, referrersAPI: put.subject != nil)
        if put.subject == nil {
            let d = Descriptor(mediaType: MediaType.ociManifest, digest: put.digest, size: UInt64(bytes.count),
                               annotations: annotations, artifactType: artifactType)
            let tag = fallbackTag(subject.digest)
            try updateFallbackIndex(client, repo: repo, tag: tag, adding: d)
            result.fallbackTag = tag
        }
        return result
    }

    /// Adds `entry` to the OCI index under `tag` (creating it), unless an entry with its digest is there.
    static func updateFallbackIndex(_ client: RegistryClient, repo: String, tag: String, adding entry: Descriptor) throws {
        var index = ImageIndex(manifests: [])
        if try client.manifestDescriptor(repo, reference: tag) != nil {
            let (_, existing) = try client.manifest(repo, reference: tag)
            index = try OCIJSON.decode(ImageIndex.self, from: existing, what: "referrers index \(repo):\(tag)")
        }
        if index.manifests.contains(where: { $0.digest == entry.digest }) { return }
        index.manifests.append(entry)
        try client.pushManifest(repo, reference: tag, try OCIJSON.encode(index), mediaType: MediaType.ociIndex)
    }

    /// The artifacts of `artifactType` attached to `subject`: through the referrers API when the registry has it,
    /// else through the spec's `sha256-<hex>` index (and the `sha256-<hex>.imprint` one imprint 0.1 wrote).
    /// Empty when there are none.
    package static func referrers(_ client: RegistryClient, repo: String, subject: Digest, artifactType: String) throws -> (descriptors: [Descriptor], viaReferrersAPI: Bool) {
        if let list = try client.referrers(repo, subject, artifactType: artifactType) {
            return (list, true)
        }
        var found: [Descriptor] = []
        for tag in [fallbackTag(subject), legacyFallbackTag(subject)] {
            guard try client.manifestDescriptor(repo, reference: tag) != nil else { continue }
            let (_, bytes) = try client.manifest(repo, reference: tag)
            let index = try OCIJSON.decode(ImageIndex.self, from: bytes, what: "referrers index \(repo):\(tag)")
            for d in index.manifests where d.artifactType == artifactType && !found.contains(where: { $0.digest == d.digest }) {
                found.append(d)
            }
        }
        return (found, false)
    }

    /// What `findManifest` found.
    package struct Found {
        package var manifest: Manifest
        package var bytes: [UInt8]
        package var artifactDigest: Digest
        package var subject: Digest
        package var viaReferrersAPI: Bool
    }

    /// Finds the imprint manifest attached to the image `spec` points at (the newest by
    /// `org.opencontainers.image.created`, then the last listed), fetches and checks it.
    /// - Throws: `notFound` when nothing is attached; `badInput` when the artifact is inconsistent.
    package static func findManifest(for spec: String, client: RegistryClient? = nil,
                                    options: RegistryOptions = RegistryOptions()) throws -> Found {
        let ref = try RegistryReference(parsing: spec)
        let client = try client ?? RegistryClient(for: ref, options: options)
        let repo = ref.repository
        let subject: Digest
        if let d = ref.digest {
            subject = d
        } else if let d = try client.manifestDescriptor(repo, reference: ref.manifestReference) {
            subject = d.digest
        } else {
            throw ImprintError(.notFound, "registry \(ref.host) has no manifest \(ref) (404)")
        }
        let (list, viaAPI) = try referrers(client, repo: repo, subject: subject, artifactType: manifestArtifactType)
        guard !list.isEmpty else {
            throw ImprintError(.notFound, "no imprint manifest is attached to \(ref.host)/\(repo)@\(subject.prefixed) (attach one with `imprint attach`)")
        }
        let chosen = list.enumerated().max { a, b in
            let ca = a.element.annotation("org.opencontainers.image.created") ?? ""
            let cb = b.element.annotation("org.opencontainers.image.created") ?? ""
            return ca == cb ? a.offset < b.offset : ca < cb
        }!.element
        let (_, artifactBytes) = try client.manifest(repo, reference: chosen.digest.prefixed)
        let artifact = try OCIJSON.decode(ImageManifest.self, from: artifactBytes, what: "artifact \(chosen.digest)")
        guard let subjectDesc = artifact.subject else {
            throw ImprintError.badInput("artifact \(chosen.digest) names no subject")
        }
        guard subjectDesc.digest == subject else {
            throw ImprintError.badInput("artifact \(chosen.digest) names subject \(subjectDesc.digest), not \(subject)")
        }
        guard let layer = artifact.layers.first else {
            throw ImprintError.badInput("artifact \(chosen.digest) has no payload layer")
        }
        let payload = try client.blob(repo, layer)
        let bytes = try decompress(payload, name: "artifact \(chosen.digest) payload")
        let m = try Manifest.parse(bytes, source: "attached manifest \(chosen.digest)")
        if let claimed = layer.annotation(Imprint.digestLabel) ?? artifact.annotations?[Imprint.digestLabel],
           claimed != m.rootDigest.prefixed {
            throw ImprintError.badInput("artifact \(chosen.digest) claims \(claimed) but its manifest has root digest \(m.rootDigest)")
        }
        return Found(manifest: m, bytes: bytes, artifactDigest: chosen.digest, subject: subject, viaReferrersAPI: viaAPI)
    }

    /// Inflates gzip or zlib payloads; passes plain JSON through.
    static func decompress(_ bytes: [UInt8], name: String) throws -> [UInt8] {
        if let first = bytes.first, first == UInt8(ascii: "{") { return bytes }
        let decoder = GzipDecoder(MemorySource(bytes), name: name)
        return try decoder.readAll(limit: 512 << 20, what: name)
    }

    // MARK: History transport

    /// The tag a history named `name` is kept under: `imprint-history-<name>`.
    package static func historyTag(_ name: String) throws -> String {
        let tag = "imprint-history-\(name)"
        guard !name.isEmpty, RegistryReference.isValidTag(tag) else {
            throw ImprintError.badInput("invalid history name \"\(name)\" (letters, digits, . _ -; at most 112 characters)")
        }
        return tag
    }

    /// Pushes one history archive (the compressed file `history export` writes) to the repository `spec`
    /// (`registry://HOST/REPO`) as an artifact tagged `imprint-history-<name>`, replacing the previous one.
    /// - Returns: the artifact manifest digest.
    @discardableResult
    package static func pushHistory(archive: [UInt8], to spec: String, name: String = "default",
                                   options: RegistryOptions = RegistryOptions(), client: RegistryClient? = nil) throws -> Digest {
        let ref = try RegistryReference(parsing: spec, requireReference: false)
        let tag = try historyTag(name)
        let client = try client ?? RegistryClient(for: ref, options: options)
        let layer = Descriptor(mediaType: historyLayerType, digest: SHA256.hash(archive), size: UInt64(archive.count),
                               annotations: ["org.opencontainers.image.title": "history-\(name).tar.gz"])
        let artifact = ImageManifest(artifactType: historyArtifactType, config: emptyConfig, layers: [layer],
                                     annotations: ["org.imprint.history.name": name])
        let bytes = try OCIJSON.encode(artifact)
        try client.pushBlob(ref.repository, emptyConfigBytes)
        try client.pushBlob(ref.repository, archive, digest: layer.digest)
        return try client.pushManifest(ref.repository, reference: tag, bytes, mediaType: MediaType.ociManifest).digest
    }

    /// What `shareHistory` did.
    package struct HistoryShareResult: Sendable {
        /// What importing the shared history added (nil when the repository had none yet).
        package var merged: HistoryImportResult?
        package var pushed: Digest
        package var records: Int
    }

    /// Merges the history shared in the repository `spec` into `store`, then pushes the union back, failing
    /// closed: when the shared history exists but cannot be read completely (a corrupt or missing blob, a lying
    /// registry, an interrupted transfer), nothing is pushed and the error is thrown — the tag never moves to a
    /// history that lacks records it held. Only a tag the registry reports absent (404) counts as no history.
    /// If another runner moves the tag while this one merges, the merge starts over (a few times).
    package static func shareHistory(_ store: HistoryStore, to spec: String, name: String = "default",
                                    options: RegistryOptions = RegistryOptions(), client: RegistryClient? = nil) throws -> HistoryShareResult {
        let ref = try RegistryReference(parsing: spec, requireReference: false)
        let tag = try historyTag(name)
        let client = try client ?? RegistryClient(for: ref, options: options)
        let scratch = NSTemporaryDirectory() + "imprint-history-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        guard mkdir(scratch, 0o700) == 0 else { throw ImprintError.posix("create", scratch) }
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        for _ in 0..<5 {
            let remote = try client.manifestDescriptor(ref.repository, reference: tag)
            var merged: HistoryImportResult?
            if let remote {
                let pulled = scratch + "/pulled.gz"
                _ = try pullHistory(from: spec, name: name, to: pulled, options: options, client: client, pinned: remote.digest)
                merged = try store.importArchive(pulled)
            }
            let archive = scratch + "/push.gz"
            let all = try store.entries()
            try store.export(all, to: archive)
            // The tag must still be where it was when it was merged; otherwise someone pushed meanwhile.
            let now = try client.manifestDescriptor(ref.repository, reference: tag)
            guard now?.digest == remote?.digest else { continue }
            let digest = try pushHistory(archive: try readFile(archive, what: "history export"), to: spec, name: name, options: options, client: client)
            return HistoryShareResult(merged: merged, pushed: digest, records: all.count)
        }
        throw ImprintError(.failure, "the shared history \(ref.host)/\(ref.repository):\(tag) kept changing while it was merged; nothing was pushed, try again")
    }

    /// Pulls the history archive tagged `imprint-history-<name>` from `spec` and writes it to `path`
    /// atomically (streamed and verified; nothing is left at `path` on failure).
    /// - Returns: the archive's digest.
    @discardableResult
    package static func pullHistory(from spec: String, name: String = "default", to path: String,
                                   options: RegistryOptions = RegistryOptions(), client: RegistryClient? = nil,
                                   pinned: Digest? = nil) throws -> Digest {
        let ref = try RegistryReference(parsing: spec, requireReference: false)
        let tag = try historyTag(name)
        let client = try client ?? RegistryClient(for: ref, options: options)
        let (desc, bytes) = try client.manifest(ref.repository, reference: pinned?.prefixed ?? tag)
        let artifact = try OCIJSON.decode(ImageManifest.self, from: bytes, what: "history artifact \(ref.repository):\(tag)")
        guard artifact.artifactType == historyArtifactType, artifact.layers.count == 1, let layer = artifact.layers.first else {
            throw ImprintError.badInput("\(ref.host)/\(ref.repository):\(tag) (\(desc.digest)) is not an imprint history artifact")
        }
        let source = try client.openBlob(ref.repository, layer)
        try AtomicFile.write(to: path) { fd in
            try source.forEachChunk { try AtomicFile.writeAll(fd, $0, path: path) }
            try source.verify()
        }
        return layer.digest
    }

    /// A deterministic `.tar.gz` of a directory's regular files and directories (sorted, owner 0:0, mtime 0,
    /// permission bits kept): how `history push --archive DIR` packs a history directory.
    /// - Throws: `unsupported` for symlinks and special files.
    package static func archiveDirectory(_ dir: String) throws -> [UInt8] {
        var out: [UInt8] = []
        let gz = GzipEncoder(level: 6) { out.append(contentsOf: $0) }
        let writer = TarWriter { try gz.write($0) }
        func walk(_ rel: String) throws {
            let abs = rel.isEmpty ? dir : dir + "/" + rel
            let names = try FileManager.default.contentsOfDirectory(atPath: abs).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            for name in names {
                let r = rel.isEmpty ? name : rel + "/" + name
                let p = dir + "/" + r
                var st = stat()
                guard lstat(p, &st) == 0 else { throw ImprintError.posix("stat", p) }
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    try writer.writeHeader(TarEntry(path: Array(r.utf8), kind: .directory, mode: UInt32(st.st_mode & 0o7777)))
                    try walk(r)
                case S_IFREG:
                    try writer.writeFile(TarEntry(path: Array(r.utf8), kind: .file, mode: UInt32(st.st_mode & 0o7777)), content: readFile(p, what: "history file"))
                default:
                    throw ImprintError(.unsupported, "\(p): only regular files and directories can be pushed")
                }
            }
        }
        try walk("")
        try writer.finish()
        try gz.finish()
        return out
    }

    /// Unpacks an archive made by `archiveDirectory` into `dir`, which must not exist (or be empty): written
    /// into a temporary sibling first and renamed, so `dir` appears complete or not at all.
    package static func extractArchive(_ archive: String, into dir: String) throws {
        var st = stat()
        if stat(dir, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR, (try? FileManager.default.contentsOfDirectory(atPath: dir))?.isEmpty == true else {
                throw ImprintError.badInput("\(dir) exists and is not an empty directory")
            }
        }
        let tmp = dir + ".tmp-\(getpid())"
        guard mkdir(tmp, 0o755) == 0 else { throw ImprintError.posix("create", tmp) }
        var ok = false
        defer { if !ok { try? FileManager.default.removeItem(atPath: tmp) } }
        let (plain, _) = try Compression.decompressing(try FileDescriptorSource(path: archive), name: archive)
        let reader = TarReader(plain, name: archive)
        while let e = try reader.next() {
            let rel = try TreePath(tarEntry: e.path, source: archive).bytes
            if rel.isEmpty { continue }
            let p = tmp + "/" + rel.lossyString
            switch e.kind {
            case .directory:
                if mkdir(p, mode_t(e.mode & 0o7777) | 0o700) != 0 && errno != EEXIST { throw ImprintError.posix("create", p) }
            case .file:
                let content = try reader.readContent(limit: 1 << 30)
                try AtomicFile.write(content, to: p, mode: mode_t(e.mode & 0o7777))
            default:
                throw ImprintError(.unsupported, "\(archive): entry \(e.path.lossyString) is not a regular file or directory")
            }
        }
        if stat(dir, &st) == 0 { rmdir(dir) }
        guard rename(tmp, dir) == 0 else { throw ImprintError.posix("create", dir) }
        ok = true
    }
}

extension RegistryArtifacts {
    /// Pushes an export archive, or the directory it was unpacked into, as the shared history NAME.
    /// - Throws: `notFound` when `path` does not exist; registry errors.
    package static func pushHistoryArchive(at path: String, to repository: String, name: String, options: RegistryOptions = RegistryOptions()) throws -> Digest {
        var st = stat()
        guard stat(path, &st) == 0 else { throw ImprintError(.notFound, "cannot read \(path): no such file or directory") }
        let archive = (st.st_mode & S_IFMT) == S_IFDIR ? try archiveDirectory(path) : try readFile(path, what: "history archive")
        return try pushHistory(archive: archive, to: repository, name: name, options: options)
    }

    /// Pulls the shared history NAME's export archive into `output`, or unpacks it into the new `directory`.
    package static func pullHistoryArchive(from repository: String, name: String, output: String?, directory: String?,
                                          options: RegistryOptions = RegistryOptions()) throws {
        if let output {
            try pullHistory(from: repository, name: name, to: output, options: options)
        } else if let directory {
            let tmp = NSTemporaryDirectory() + "/imprint-history-\(getpid()).tar.gz"
            defer { unlink(tmp) }
            try pullHistory(from: repository, name: name, to: tmp, options: options)
            try extractArchive(tmp, into: directory)
        }
    }

    /// Pulls the shared history NAME and imports it into `store` (every object verified before it is added).
    package static func pullHistoryAndImport(from repository: String, name: String, into store: HistoryStore,
                                            options: RegistryOptions = RegistryOptions()) throws -> HistoryImportResult {
        let tmp = NSTemporaryDirectory() + "/imprint-history-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).gz"
        defer { unlink(tmp) }
        try pullHistory(from: repository, name: name, to: tmp, options: options)
        return try store.importArchive(tmp)
    }

    // MARK: Attestations

    /// The annotation naming an attestation's predicate type on its artifact and index entries (as BuildKit's
    /// attestation manifests do).
    package static let predicateTypeAnnotation = "in-toto.io/predicate-type"

    /// Pushes a DSSE envelope holding an in-toto statement as an OCI 1.1 artifact whose `subject` is the image
    /// `spec` points at: `artifactType` and layer media type `application/vnd.dsse.envelope.v1+json`, the
    /// predicate type as an annotation; listed in the `sha256-<hex>` index (the spec's referrers tag schema) when the registry has no
    /// referrers API.
    package static func attachAttestation(_ envelopeBytes: [UInt8], to spec: String, client: RegistryClient? = nil,
                                         options: RegistryOptions = RegistryOptions()) throws -> AttachResult {
        let envelope = try DSSEEnvelope.parse(envelopeBytes, what: "attestation")
        let statement = try InTotoStatement.parse(envelope, what: "attestation")
        let ref = try RegistryReference(parsing: spec)
        let client = try client ?? RegistryClient(for: ref, options: options)
        let repo = ref.repository
        let (subject, _) = try client.manifest(repo, reference: ref.manifestReference)
        guard statement.subjects.contains(where: { $0.1 == subject.digest.hex }) else {
            throw ImprintError.badInput("the attestation is about \(statement.subjects.map { "\($0.0)@sha256:\($0.1)" }.joined(separator: ", ")), not \(ref.host)/\(repo)@\(subject.digest)")
        }
        let annotations = [predicateTypeAnnotation: statement.predicateType, "org.opencontainers.image.created": Clock.rfc3339Now()]
        let layer = Descriptor(mediaType: DSSEEnvelope.mediaType, digest: SHA256.hash(envelopeBytes), size: UInt64(envelopeBytes.count),
                               annotations: [predicateTypeAnnotation: statement.predicateType])
        return try pushReferrer(client, repo: repo, subject: subject, artifactType: DSSEEnvelope.mediaType, payload: envelopeBytes,
                                layer: layer, annotations: annotations)
    }

    /// What checking the attestations of a registry image found.
    package struct AttestationCheck {
        package var predicateType: String
        /// The artifact whose signed statement satisfied the requirement, if one did.
        package var satisfiedBy: Digest?
        /// Why each candidate was refused (or that there was none).
        package var problems: [String]
    }

    /// Checks that the image `spec` points at carries, for each predicate type, an attestation signed by `key`
    /// whose statement names that image (by its manifest digest). Fails closed: a candidate that cannot be
    /// fetched, parsed or verified does not count.
    package static func checkAttestations(for spec: String, predicateTypes: [String], key: Ed25519PublicKey,
                                         client: RegistryClient? = nil, options: RegistryOptions = RegistryOptions()) throws -> (subject: Digest, checks: [AttestationCheck]) {
        let ref = try RegistryReference(parsing: spec)
        let client = try client ?? RegistryClient(for: ref, options: options)
        let repo = ref.repository
        guard let subject = try ref.digest ?? client.manifestDescriptor(repo, reference: ref.manifestReference)?.digest else {
            throw ImprintError(.notFound, "registry \(ref.host) has no manifest \(ref) (404)")
        }
        let (list, _) = try referrers(client, repo: repo, subject: subject, artifactType: DSSEEnvelope.mediaType)
        var checks: [AttestationCheck] = []
        for type in predicateTypes {
            var check = AttestationCheck(predicateType: type, satisfiedBy: nil, problems: [])
            let candidates = list.filter { ($0.annotation(predicateTypeAnnotation) ?? type) == type }
            if candidates.isEmpty { check.problems.append("no attestation of type \(type) is attached to \(ref.host)/\(repo)@\(subject)") }
            for c in candidates where check.satisfiedBy == nil {
                do {
                    let (_, artifactBytes) = try client.manifest(repo, reference: c.digest.prefixed)
                    let artifact = try OCIJSON.decode(ImageManifest.self, from: artifactBytes, what: "attestation \(c.digest)")
                    guard let declared = artifact.subject else { check.problems.append("\(c.digest.short): names no subject"); continue }
                    guard declared.digest == subject else { check.problems.append("\(c.digest.short): attached to \(declared.digest), not this image"); continue }
                    guard let layer = artifact.layers.first else {
                        check.problems.append("\(c.digest.short): no envelope layer"); continue
                    }
                    let envelope = try DSSEEnvelope.parse(try client.blob(repo, layer), what: "attestation \(c.digest)")
                    guard try envelope.verified(by: key) else {
                        check.problems.append("\(c.digest.short): not signed by key \(key.sslibKeyID.prefix(16))… (signed by \(envelope.signatures.map { String($0.keyid.prefix(16)) + "…" }.joined(separator: ", ")))"); continue
                    }
                    let statement = try InTotoStatement.parse(envelope, what: "attestation \(c.digest)")
                    guard statement.predicateType == type else {
                        check.problems.append("\(c.digest.short): predicate type \(statement.predicateType), not \(type)"); continue
                    }
                    guard statement.subjects.contains(where: { $0.1 == subject.hex }) else {
                        check.problems.append("\(c.digest.short): the statement is about \(statement.subjects.map { "sha256:" + $0.1 }.joined(separator: ", ")), not \(subject)"); continue
                    }
                    check.satisfiedBy = c.digest
                } catch {
                    check.problems.append("\(c.digest.short): \(error)")
                }
            }
            checks.append(check)
        }
        return (subject, checks)
    }
}
