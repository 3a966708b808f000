import Foundation
import ImprintCore
#if canImport(Glibc)
import Glibc
#endif

/// The readers imprint exposes to untrusted bytes, each as one function of those bytes: the libFuzzer targets in
/// `ci/fuzz` call them, and `FuzzRegressionTests` replays every input that once trapped, hung or ran out of memory.
///
/// A target may throw (bad input is expected); it must never trap, hang, or allocate by what the input claims.
public enum FuzzEntryPoints {
    /// Every target, by the name `ci/fuzz` and the regression fixtures use.
    public static let targets: [String: @Sendable ([UInt8]) -> Void] = [
        "tar": tar, "gzip": gzip, "pyc": pyc, "dockerignore": dockerignore, "manifest": manifest,
        "image-json": imageJSON, "image-archive": imageArchive, "history-object": historyObject,
        "history-export": historyExport, "registry": registry,
    ]

    public static var names: [String] { targets.keys.sorted() }

    /// Runs one target; false when there is no target of that name.
    @discardableResult
    public static func run(_ name: String, _ data: [UInt8]) -> Bool {
        guard let t = targets[name] else { return false }
        t(data)
        return true
    }

    // MARK: Targets

    /// A tar stream, flattened as a layer (whiteouts, hard links, PAX, GNU long names).
    static func tar(_ data: [UInt8]) {
        let reader = TarReader(MemorySource(data), name: "fuzz.tar", bufferSize: 4096)
        let flattener = LayerFlattener()
        _ = try? flattener.apply(reader, layer: 0)
        _ = flattener.finish()
    }

    /// A gzip stream (multi-member, trailers), read to its end within 16 MiB.
    static func gzip(_ data: [UInt8]) {
        guard let (plain, _) = try? Compression.decompressing(MemorySource(data), name: "fuzz.gz") else { return }
        _ = try? plain.readAll(limit: 16 << 20, what: "fuzz.gz")
    }

    /// A pyc header, and the bytecode checks of a tree holding the pyc beside a source.
    static func pyc(_ data: [UInt8]) {
        _ = try? PycHeader.parse(data)
        let tree = Tree()
        tree.insert(Array("pkg/mod.py".utf8), TreeNode(type: .file, mode: 0o644, size: 5, digest: SHA256.hash(Array("x = 1".utf8))))
        for name in ["pkg/__pycache__/mod.cpython-311.pyc", "pkg/other.pyc", "pkg/__pycache__/gone.cpython-38.opt-1.pyc"] {
            tree.insert(Array(name.utf8), TreeNode(type: .file, mode: 0o644, size: UInt64(data.count), digest: SHA256.hash(data)))
        }
        tree.computeDigests()
        _ = BytecodeChecker(content: { path in path.pathComponents.last?.starts(with: Array("mod.py".utf8)) == true && path.last == UInt8(ascii: "y") ? Array("x = 1".utf8) : data }).check(tree)
    }

    /// An ignore file, then (after a NUL) newline-separated paths matched against it in both semantics.
    static func dockerignore(_ data: [UInt8]) {
        let parts = data.split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false)
        let file = Array(parts[0])
        let paths = parts.count > 1 ? parts[1].split(separator: 0x0A).prefix(32).map { Array($0.prefix(4096)) } : [Array("a/b".utf8)]
        for semantics in IgnoreSemantics.allCases {
            guard let ig = try? DockerIgnore.parse(file, file: "fuzz", semantics: semantics) else { continue }
            for p in paths {
                let parent = try? ig.decide(Array(p.split(separator: 0x2F).dropLast().joined(separator: [0x2F])), parent: nil)
                _ = try? ig.decide(p, parent: parent?.info)
                _ = try? ig.decide(p, parent: nil)
                _ = try? ig.excludedOnOpen(p)
                _ = ig.mustDescend(intoExcluded: p)
            }
        }
    }

    /// A manifest, parsed (every digest re-derived) and written back.
    static func manifest(_ data: [UInt8]) {
        guard let m = try? Manifest.parse(data, source: "fuzz.json") else { return }
        _ = m.jsonBytes()
        _ = ManifestFormats.sha256sum(m.tree)
    }

    /// An OCI layout in memory: NUL-separated documents, the first `index.json`, the others blobs (by digest).
    static func imageJSON(_ data: [UInt8]) {
        let docs = data.split(separator: 0, omittingEmptySubsequences: false).map(Array.init)
        let store = MemoryBlobStore(docs.dropFirst())
        if let layout = try? OCILayout(store: store, location: "fuzz", indexBytes: docs[0]) {
            for platform in [nil, Platform(os: "linux", architecture: "arm64")] {
                _ = try? layout.resolve(reference: nil, platform: platform)
            }
        }
        for d in docs { _ = try? InspectSafeJSON.descriptors(d) }
    }

    /// A docker-archive, oci-archive or filesystem tar (detected as `imprint verify` detects them), flattened.
    static func imageArchive(_ data: [UInt8]) {
        let path = scratchFile("archive")
        guard (try? AtomicFile.write(data, to: path)) != nil else { return }
        _ = try? SourceLoader.load(path)
    }

    /// A stored history object (its id in the first 32 bytes), a directory object body, a record and a summary.
    static func historyObject(_ data: [UInt8]) {
        guard data.count > 34 else { return }
        let id = Digest(bytes: Array(data[0..<32]))!
        if let o = try? ObjectStore.decode(Array(data[32...]), id: id), o.kind == .directory { _ = try? DirectoryObject.decode(o) }
        let split = min(data.count, Int(data[32]) << 8 | Int(data[33]))
        let body = Array(data[34...])
        let o = HistoryObject(kind: .directory, id: id, body: body, identifiedLength: min(body.count, split))
        _ = try? DirectoryObject.decode(o)
        _ = try? BuildRecord.parse(body, what: "fuzz record")
        _ = try? HistoryEntry.parse(body, what: "fuzz summary")
    }

    /// A history export archive imported into a scratch store.
    static func historyExport(_ data: [UInt8]) {
        let path = scratchFile("export")
        guard (try? AtomicFile.write(data, to: path)) != nil else { return }
        let storePath = scratchFile("store")
        guard let store = try? HistoryStore(at: storePath, create: true) else { return }
        _ = try? store.importArchive(path)
        if (try? store.entries().count) ?? 0 > 64 { try? FileManager.default.removeItem(atPath: storePath) }
    }

    /// A registry answering with the input: NUL-separated raw HTTP responses, one per request, read through the
    /// same HTTP parser as a real connection. Exercises challenges, tokens, manifests, indexes, referrers.
    static func registry(_ data: [UInt8]) {
        let answers = data.split(separator: 0, maxSplits: 16, omittingEmptySubsequences: false).map { Array($0.prefix(60 << 10)) }
        var options = RegistryOptions(environment: [:])
        options.attempts = 2
        options.backoff = 0
        options.timeout = 1
        options.requestTimeout = 2
        let transport = ScriptedTransport(answers)
        guard let client = try? RegistryClient(host: "registry.fuzz", options: options, transport: transport, credentials: .some(nil)) else { return }
        client.sleep = { _ in }
        _ = AuthChallenge(header: String(decoding: data.prefix(4096), as: UTF8.self))
        _ = LinkHeader.next(String(decoding: data.prefix(4096), as: UTF8.self), base: URL(string: "https://registry.fuzz/v2/x/referrers/y")!)
        if let ref = try? RegistryReference(parsing: "registry://registry.fuzz/repo:tag"),
           let reader = try? RegistryImageReader(ref, client: client) {
            _ = try? reader.resolve(reference: nil, platform: nil)
        }
        _ = try? client.referrers("repo", SHA256.hash([]), artifactType: nil)
        _ = try? client.blob("repo", Descriptor(mediaType: "x", digest: SHA256.hash([]), size: 0))
    }

    // MARK: Support

    /// A path in a per-process scratch directory (in /dev/shm when there is one).
    static func scratchFile(_ name: String) -> String {
        let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NSTemporaryDirectory()
        let dir = "\(base)/imprint-fuzz-\(getpid())"
        mkdir(dir, 0o700)
        return "\(dir)/\(name)"
    }

    /// Blobs held in memory, addressed by their SHA-256.
    final class MemoryBlobStore: BlobStore {
        var blobs: [Digest: [UInt8]] = [:]
        var location: String { "memory" }
        init<S: Sequence>(_ docs: S) where S.Element == [UInt8] { for d in docs { blobs[SHA256.hash(d)] = d } }
        func rawSource(_ digest: Digest) throws -> ByteSource? { blobs[digest].map { MemorySource($0) } }
    }

    /// Answers each request with the next scripted raw HTTP response, parsed by the real response reader.
    final class ScriptedTransport: HTTPTransport {
        private var answers: [[UInt8]]
        private let client = HTTPClient()
        init(_ answers: [[UInt8]]) { self.answers = answers.reversed() }

        func send(_ request: HTTPRequest) throws -> HTTPResponse {
            guard let raw = answers.popLast() else { throw TransportError(.refused, "registry.fuzz: connection refused") }
            var fds: [Int32] = [0, 0]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
                throw TransportError(.other, "socketpair failed")
            }
            var size: Int32 = 256 << 10
            setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            _ = raw.withUnsafeBytes { Glibc.send(fds[1], $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            close(fds[1])
            var limits = client.limits()
            limits.idle = 0.5
            return try client.readResponse(request, on: Connection(fd: fds[0], peer: "registry.fuzz"), limits: limits, via: "")
        }
    }
}

/// Descriptor lists in any JSON document (an index's `manifests`, a manifest's `layers`), for fuzzing the
/// descriptor reader on its own.
enum InspectSafeJSON {
    static func descriptors(_ bytes: [UInt8]) throws -> [Descriptor] {
        if let index = try? OCIJSON.decode(ImageIndex.self, from: bytes, what: "fuzz") {
            _ = try OCIJSON.encode(index)
            return index.manifests
        }
        let manifest = try OCIJSON.decode(ImageManifest.self, from: bytes, what: "fuzz")
        _ = try OCIJSON.encode(manifest)
        return manifest.layers + [manifest.config]
    }
}
