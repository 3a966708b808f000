import Foundation
import ImprintCore
import Testing

/// An in-memory OCI registry behind `HTTPTransport`: manifests, blobs, uploads and (optionally) the referrers
/// API; optionally Bearer auth with a token service, and a number of 503s to answer first.
final class FakeRegistry: HTTPTransport {
    var manifests: [String: (bytes: [UInt8], mediaType: String)] = [:]   // "repo@ref"
    var blobs: [String: [UInt8]] = [:]                                      // "repo@sha256:…"
    var referrersAPI = false
    var bearer: (user: String, password: String)?
    var failuresLeft = 0
    var log: [String] = []
    private var uploads = 0

    func send(_ request: HTTPRequest) throws -> HTTPResponse {
        let path = request.url.path
        log.append("\(request.method) \(path)")
        if failuresLeft > 0 {
            failuresLeft -= 1
            return respond(request, 503)
        }
        if path == "/token" {
            let expected = "Basic " + Data("\(bearer!.user):\(bearer!.password)".utf8).base64EncodedString()
            guard request.headers["Authorization"] == expected else { return respond(request, 401) }
            let scope = URLComponents(url: request.url, resolvingAgainstBaseURL: false)?.queryItems?.first { $0.name == "scope" }?.value ?? ""
            return respond(request, 200, body: Array("{\"token\":\"tok \(scope)\"}".utf8))
        }
        if bearer != nil && request.headers["Authorization"]?.hasPrefix("Bearer tok repository:") != true {
            return respond(request, 401, headers: ["WWW-Authenticate": "Bearer realm=\"http://fake/token\",service=\"fake\",scope=\"repository:app:pull\""])
        }
        if path == "/v2/" { return respond(request, 200, body: Array("{}".utf8)) }
        let rest = String(path.dropFirst(4))
        if let r = rest.range(of: "/manifests/") {
            let repo = String(rest[..<r.lowerBound]), ref = String(rest[r.upperBound...])
            switch request.method {
            case "PUT":
                let body = request.body ?? []
                let digest = SHA256.hash(body).prefixed
                let ct = request.headers["Content-Type"] ?? ""
                manifests["\(repo)@\(ref)"] = (body, ct)
                manifests["\(repo)@\(digest)"] = (body, ct)
                var headers = ["Docker-Content-Digest": digest]
                if referrersAPI, let obj = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
                   let subject = (obj["subject"] as? [String: Any])?["digest"] as? String {
                    headers["OCI-Subject"] = subject
                }
                return respond(request, 201, headers: headers)
            default:
                guard let m = manifests["\(repo)@\(ref)"] else { return respond(request, 404) }
                return respond(request, 200, headers: ["Content-Type": m.mediaType, "Docker-Content-Digest": SHA256.hash(m.bytes).prefixed],
                               body: m.bytes)
            }
        }
        // URL.path drops the trailing slash of `…/blobs/uploads/`.
        if let r = rest.range(of: "/blobs/uploads") {
            let repo = String(rest[..<r.lowerBound])
            if request.method == "POST" {
                uploads += 1
                return respond(request, 202, headers: ["Location": "/v2/\(repo)/blobs/uploads/u\(uploads)?state=x"])
            }
            let digest = URLComponents(url: request.url, resolvingAgainstBaseURL: false)?.queryItems?.first { $0.name == "digest" }?.value ?? ""
            let body = request.body ?? []
            guard SHA256.hash(body).prefixed == digest else { return respond(request, 400) }
            blobs["\(repo)@\(digest)"] = body
            return respond(request, 201)
        }
        if let r = rest.range(of: "/blobs/") {
            let repo = String(rest[..<r.lowerBound]), digest = String(rest[r.upperBound...])
            guard let b = blobs["\(repo)@\(digest)"] else { return respond(request, 404) }
            return respond(request, 200, headers: ["Content-Length": String(b.count)], body: b)
        }
        if let r = rest.range(of: "/referrers/") {
            guard referrersAPI else { return respond(request, 404) }
            let repo = String(rest[..<r.lowerBound]), digest = String(rest[r.upperBound...])
            var list: [[String: Any]] = []
            for (key, m) in manifests where key.hasPrefix("\(repo)@sha256:") {
                guard let obj = try? JSONSerialization.jsonObject(with: Data(m.bytes)) as? [String: Any],
                      (obj["subject"] as? [String: Any])?["digest"] as? String == digest else { continue }
                list.append(["mediaType": m.mediaType, "digest": String(key.dropFirst(repo.count + 1)), "size": m.bytes.count,
                             "artifactType": obj["artifactType"] ?? "", "annotations": obj["annotations"] ?? [:]])
            }
            let body = try JSONSerialization.data(withJSONObject: ["schemaVersion": 2, "mediaType": MediaType.ociIndex, "manifests": list])
            return respond(request, 200, headers: ["Content-Type": MediaType.ociIndex], body: Array(body))
        }
        return respond(request, 404)
    }

    private func respond(_ r: HTTPRequest, _ status: Int, headers: [String: String] = [:], body: [UInt8] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: headers, url: r.url, body: MemorySource(r.method == "HEAD" ? [] : body))
    }

    /// Puts a one-layer image under `repo:tag`; returns its manifest digest.
    @discardableResult
    func addImage(_ repo: String, tag: String) throws -> Digest {
        let config = Array("{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}".utf8)
        blobs["\(repo)@\(SHA256.hash(config).prefixed)"] = config
        let manifest: [String: Any] = ["schemaVersion": 2, "mediaType": MediaType.ociManifest,
                                       "config": ["mediaType": MediaType.ociConfig, "digest": SHA256.hash(config).prefixed, "size": config.count],
                                       "layers": [Any]()]
        let bytes = Array(try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys]))
        manifests["\(repo)@\(tag)"] = (bytes, MediaType.ociManifest)
        manifests["\(repo)@\(SHA256.hash(bytes).prefixed)"] = (bytes, MediaType.ociManifest)
        return SHA256.hash(bytes)
    }
}

@Suite("RegistryClientTests")
struct RegistryClientTests {
    var options: RegistryOptions {
        var o = RegistryOptions(environment: [:])
        o.backoff = 0
        return o
    }

    static let manifestJSON: [UInt8] = {
        let tree = Tree()
        tree.computeDigests()
        return Manifest(tree: tree).jsonBytes()
    }()

    @Test(arguments: [
        ("registry://127.0.0.1:5000/app:v1", "127.0.0.1:5000", "app", "v1", nil),
        ("registry://localhost/team/app", "localhost", "team/app", "latest", nil),
        ("registry://r.example:443/a/b/c@sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "r.example:443", "a/b/c", nil,
         "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"),
    ] as [(String, String, String, String?, String?)])
    func parsesReferences(_ spec: String, _ host: String, _ repo: String, _ tag: String?, _ digest: String?) throws {
        let r = try RegistryReference(parsing: spec)
        #expect(r.host == host)
        #expect(r.repository == repo)
        #expect(r.tag == tag)
        #expect(r.digest?.prefixed == digest)
        #expect(try RegistryReference(parsing: r.spec) == r)
    }

    @Test(arguments: ["registry://", "registry://host", "registry://host/", "registry://host/App:v1", "registry://host/app:-x",
                      "registry://host/app@sha256:abc", "registry://host//app"])
    func rejectsBadReferences(_ spec: String) {
        #expect(throws: ImprintError.self) { try RegistryReference(parsing: spec) }
    }

    @Test func loopbackUsesPlainHTTP() throws {
        #expect(try RegistryClient(host: "127.0.0.1:5000", options: options, transport: FakeRegistry(), credentials: .some(nil)).scheme == "http")
        #expect(try RegistryClient(host: "localhost:5000", options: options, transport: FakeRegistry(), credentials: .some(nil)).scheme == "http")
        #expect(try RegistryClient(host: "r.example", options: options, transport: FakeRegistry(), credentials: .some(nil)).scheme == "https")
        var insecure = options
        insecure.insecure = true
        #expect(try RegistryClient(host: "r.example", options: insecure, transport: FakeRegistry(), credentials: .some(nil)).scheme == "http")
    }

    @Test func parsesChallenges() {
        let c = AuthChallenge(header: #"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#)
        #expect(c?.scheme == "bearer")
        #expect(c?.parameters == ["realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:a/b:pull,push"])
        #expect(AuthChallenge(header: #"Basic realm="Registry Realm""#)?.parameters["realm"] == "Registry Realm")
    }

    @Test func readsDockerConfigAndEnvironment() throws {
        let dir = NSTemporaryDirectory() + "/imprint-cred-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let auth = Data("alice:pa:ss".utf8).base64EncodedString()
        try Data("{\"auths\":{\"https://r.example:5000/v1/\":{\"auth\":\"\(auth)\"},\"other\":{\"username\":\"bob\",\"password\":\"pw\"}}}".utf8)
            .write(to: URL(fileURLWithPath: dir + "/config.json"))
        let c = try RegistryCredentials.lookup(host: "r.example:5000", environment: ["DOCKER_CONFIG": dir])
        #expect(c?.username == "alice" && c?.password == "pa:ss")
        #expect(try RegistryCredentials.lookup(host: "other", environment: ["DOCKER_CONFIG": dir])?.username == "bob")
        #expect(try RegistryCredentials.lookup(host: "r.example", environment: ["DOCKER_CONFIG": dir]) == nil)
        let env = try RegistryCredentials.lookup(host: "r.example:5000", environment: ["DOCKER_CONFIG": dir, "IMPRINT_REGISTRY_USER": "ci", "IMPRINT_REGISTRY_PASSWORD": "x"])
        #expect(env?.username == "ci" && env?.source == "IMPRINT_REGISTRY_USER")
    }

    @Test func bearerTokenFlow() throws {
        let fake = FakeRegistry()
        fake.bearer = ("ci", "secret")
        try fake.addImage("app", tag: "v1")
        let client = try RegistryClient(host: "fake", options: options, transport: fake,
                                        credentials: RegistryCredentials(username: "ci", password: "secret", source: "test"))
        let (desc, _) = try client.manifest("app", reference: "v1")
        #expect(desc.mediaType == MediaType.ociManifest)
        #expect(fake.log.filter { $0 == "GET /token" }.count == 1)
        _ = try client.manifest("app", reference: "v1")
        #expect(fake.log.filter { $0 == "GET /token" }.count == 1, "the token is cached")

        let wrong = try RegistryClient(host: "fake", options: options, transport: fake,
                                       credentials: RegistryCredentials(username: "ci", password: "nope", source: "test"))
        let e = #expect(throws: ImprintError.self) { try wrong.manifest("app", reference: "v1") }
        #expect(e?.message.hasPrefix("token service fake of registry fake refused the credentials of user ci from test for repo app (401)") == true, "\(e?.message ?? "")")
    }

    @Test func retriesServerErrorsThenGivesUp() throws {
        let fake = FakeRegistry()
        try fake.addImage("app", tag: "v1")
        fake.failuresLeft = 3
        let client = try RegistryClient(host: "fake", options: options, transport: fake, credentials: .some(nil))
        _ = try client.manifest("app", reference: "v1")
        #expect(fake.log.count == 4)
        fake.failuresLeft = 4
        let e = #expect(throws: ImprintError.self) { try client.manifest("app", reference: "v1") }
        #expect(e?.message == "registry fake answered 503 (service unavailable) to GET /v2/app/manifests/v1 (after 4 tries)")
    }

    @Test func rejectsManifestNotMatchingItsDigest() throws {
        let fake = FakeRegistry()
        let digest = try fake.addImage("app", tag: "v1")
        fake.manifests["app@\(digest.prefixed)"] = (Array("{\"layers\":[]}".utf8), MediaType.ociManifest)
        let client = try RegistryClient(host: "fake", options: options, transport: fake, credentials: .some(nil))
        let e = #expect(throws: ImprintError.self) { try client.manifest("app", reference: digest.prefixed) }
        #expect(e?.message.contains("does not match its digest") == true)
    }

    @Test(arguments: [true, false])
    func attachAndFindThroughReferrersOrFallbackTag(_ referrersAPI: Bool) throws {
        let fake = FakeRegistry()
        fake.referrersAPI = referrersAPI
        let digest = try fake.addImage("app", tag: "v1")
        let client = try RegistryClient(host: "fake", options: options, transport: fake, credentials: .some(nil))
        let result = try RegistryArtifacts.attach(Self.manifestJSON, to: "registry://fake/app:v1", client: client)
        #expect(result.subject.digest == digest)
        #expect(result.referrersAPI == referrersAPI)
        let fallback = "app@" + RegistryArtifacts.fallbackTag(digest)
        #expect((fake.manifests[fallback] != nil) == !referrersAPI, "the fallback index is written only without referrers API")
        let found = try RegistryArtifacts.findManifest(for: "registry://fake/app@\(digest.prefixed)", client: client)
        #expect(found.bytes == Self.manifestJSON)
        #expect(found.viaReferrersAPI == referrersAPI)
        #expect(found.artifactDigest == result.artifactDigest)
        #expect(fake.log.contains("GET /v2/app/referrers/\(digest.prefixed)"))
    }

    @Test func historyRoundTripThroughFake() throws {
        let fake = FakeRegistry()
        let client = try RegistryClient(host: "fake", options: options, transport: fake, credentials: .some(nil))
        let archive = Array((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try RegistryArtifacts.pushHistory(archive: archive, to: "registry://fake/hist", name: "ci", client: client)
        #expect(fake.manifests["hist@imprint-history-ci"] != nil)
        let out = NSTemporaryDirectory() + "/imprint-hist-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        try RegistryArtifacts.pullHistory(from: "registry://fake/hist", name: "ci", to: out, client: client)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: out))) == archive)
        // A corrupted blob leaves nothing behind.
        let key = fake.blobs.keys.first { $0.hasPrefix("hist@") && fake.blobs[$0]!.count == archive.count }!
        fake.blobs[key]![5] ^= 1
        try? FileManager.default.removeItem(atPath: out)
        let e = #expect(throws: ImprintError.self) { try RegistryArtifacts.pullHistory(from: "registry://fake/hist", name: "ci", to: out, client: client) }
        #expect(e?.message.contains("does not match its digest") == true)
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
