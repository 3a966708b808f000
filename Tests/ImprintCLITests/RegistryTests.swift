import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Debian's `docker-registry` (distribution 2.8) on 127.0.0.1 with a temporary config and storage; the access
/// log goes to a file so tests can count requests.
final class LocalRegistry {
    let dir: String
    let port: Int
    let process = Process()
    let logPath: String
    var host: String { "127.0.0.1:\(port)" }
    var storage: String { dir + "/storage" }

    /// Starts a registry; with `htpasswd` (user, password) it requires Basic auth; with `tls` (certificate, key
    /// PEM paths) it speaks HTTPS only.
    init(dir: String, htpasswd: (String, String)? = nil, tls: (certificate: String, key: String)? = nil) throws {
        try requireTool("docker-registry")
        self.dir = dir
        port = try LocalRegistry.freePort()
        logPath = dir + "/registry.log"
        var auth = ""
        if let (user, pass) = htpasswd {
            try sh("htpasswd -Bbn '\(user)' '\(pass)' > '\(dir)/htpasswd'")
            auth = """
            auth:
              htpasswd:
                realm: imprint-test
                path: \(dir)/htpasswd

            """
        }
        let config = """
        version: 0.1
        log:
          level: info
          accesslog:
            disabled: false
        storage:
          filesystem:
            rootdirectory: \(dir)/storage
          delete:
            enabled: true
        \(auth)http:
          addr: 127.0.0.1:\(port)
        \(tls.map { "  tls:\n    certificate: \($0.certificate)\n    key: \($0.key)\n" } ?? "")

        """
        try writeFile(dir + "/config.yml", config)
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: "/usr/bin/docker-registry")
        process.arguments = ["serve", dir + "/config.yml"]
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try launchProcess(process)
        for _ in 0..<100 {
            let r = try run("curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code}", "\(tls == nil ? "http" : "https")://\(host)/v2/"])
            if r.out == "200" || r.out == "401" { return }
            usleep(100_000)
        }
        stop()
        throw RegistryDidNotStart(log: (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")
    }

    struct RegistryDidNotStart: Error { var log: String }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    deinit { stop() }

    /// `METHOD path` of every request in the access log so far.
    func requests() -> [String] {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        var out: [String] = []
        for line in text.split(separator: "\n") {
            guard let r = line.range(of: #""(GET|HEAD|PUT|POST|PATCH|DELETE) (/v2/\S*) HTTP"#, options: .regularExpression) else { continue }
            let parts = line[r].dropFirst().split(separator: " ")
            out.append("\(parts[0]) \(parts[1])")
        }
        return out
    }

    /// Pushes an OCI layout image with skopeo.
    func push(_ layoutRef: String, _ repoTag: String, creds: String? = nil) throws {
        try requireTool("skopeo")
        let c = creds.map { " --dest-creds '\($0)'" } ?? ""
        try sh("skopeo copy -q --dest-tls-verify=false\(c) oci:\(layoutRef) docker://\(host)/\(repoTag)")
    }

    /// The data file of a blob in the registry's storage.
    func blobFile(_ digest: String) -> String {
        let hex = String(digest.dropFirst("sha256:".count))
        return "\(storage)/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data"
    }

    static func freePort() throws -> Int {
        let (fd, port) = try bound(listen: false)
        close(fd)
        return port
    }

    /// A socket listening on a free loopback port (the caller closes it).
    static func listeningSocket() throws -> (Int32, Int) { try bound(listen: true) }

    private static func bound(listen shouldListen: Bool) throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        // why: bind/getsockname take a sockaddr pointer; sockaddr_in is layout-compatible.
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok, !shouldListen || listen(fd, 8) == 0 else { close(fd); throw POSIXError(.EADDRINUSE) }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }
}

/// A two-layer image in an OCI layout (`dir/img:v1`), built with umoci; returns its root-filesystem directory.
@discardableResult
func makeTwoLayerImage(_ dir: String) throws -> String {
    try requireTool("umoci")
    try sh("""
    cd '\(dir)'
    umoci init --layout img
    umoci new --image img:v1
    umoci unpack --rootless --image img:v1 bundle >/dev/null
    mkdir -p bundle/rootfs/app/lib
    echo 'print("hello")' > bundle/rootfs/app/main.py
    head -c 300000 /dev/urandom > bundle/rootfs/app/lib/blob.bin
    umoci repack --image img:v1 bundle
    rm -rf bundle
    umoci unpack --rootless --image img:v1 bundle >/dev/null
    echo 'version 2' > bundle/rootfs/app/VERSION
    ln -s main.py bundle/rootfs/app/entry
    umoci repack --image img:v1 bundle
    """)
    return dir + "/bundle/rootfs"
}

@Suite("RegistryTests", .serialized)
struct RegistryTests {
    /// A registry with `app:v1` (unstamped), the stamped manifest `m.json` and the local layout.
    func withPushedImage<T>(htpasswd: (String, String)? = nil, _ body: (String, LocalRegistry) throws -> T) throws -> T {
        try withTempDir { dir in
            let reg = try LocalRegistry(dir: dir, htpasswd: htpasswd)
            defer { reg.stop() }
            let rootfs = try makeTwoLayerImage(dir)
            #expect(try imprint("fingerprint", rootfs, "-o", dir + "/m.json").status == 0)
            try reg.push("\(dir)/img:v1", "app:v1", creds: htpasswd.map { "\($0.0):\($0.1)" })
            return try body(dir, reg)
        }
    }

    func treeDigest(_ source: String, env: [String: String] = [:]) throws -> String? {
        let r = try imprint("inspect", source, "--tree-digest", "--json", env: env)
        #expect(r.status == 0, "\(r.err)")
        guard r.status == 0 else { return nil }
        return (try jsonObject(r.stdout)["tree"] as? [String: Any])?["digest"] as? String
    }

    @Test func readsImagesFromRegistryLikeLocalOnes() throws {
        try withPushedImage { dir, reg in
            let local = try treeDigest("oci:\(dir)/img:v1")
            #expect(local != nil)
            #expect(try treeDigest("registry://\(reg.host)/app:v1") == local)
            // By digest, too, and the manifest digest is the local one.
            let inspect = try imprint("inspect", "registry://\(reg.host)/app:v1", "--json")
            let digest = try #require((try jsonObject(inspect.stdout)["manifest"] as? [String: Any])?["digest"] as? String)
            let localInspect = try imprint("inspect", "oci:\(dir)/img:v1", "--json")
            #expect((try jsonObject(localInspect.stdout)["manifest"] as? [String: Any])?["digest"] as? String == digest)
            #expect(try jsonObject(inspect.stdout)["format"] as? String == "registry")
            #expect(try treeDigest("registry://\(reg.host)/app@\(digest)") == local)
            // No manifest in an unstamped image: exit 2, one line.
            let none = try imprint("extract", "registry://\(reg.host)/app:v1")
            #expect(none.status == 2)
            #expect(none.err.contains("has no imprint manifest"))
            // Unknown tag and repository.
            let missing = try imprint("extract", "registry://\(reg.host)/app:nope")
            #expect(missing.status == 2)
            #expect(missing.err.contains("has no manifest app:nope (404)"))
            let bad = try imprint("inspect", "registry://\(reg.host)/App:v1")
            #expect(bad.status == 2)
            #expect(bad.err.contains("invalid repository name"))
        }
    }

    @Test func extractFetchesOnlyManifestConfigAndStampLayer() throws {
        try withPushedImage { dir, reg in
            try sh("cp -r '\(dir)/img' '\(dir)/stamped'")
            let stamp = try imprint("stamp", "\(dir)/stamped:v1", "--manifest", dir + "/m.json")
            #expect(stamp.status == 0, "\(stamp.err)")
            try reg.push("\(dir)/stamped:v1", "app:stamped")
            let index = try jsonObject(Data(contentsOf: URL(fileURLWithPath: dir + "/stamped/index.json")))
            let manifestDigest = try #require(((index["manifests"] as? [[String: Any]])?.last?["digest"]) as? String)
            let hex = String(manifestDigest.dropFirst(7))
            let manifest = try jsonObject(Data(contentsOf: URL(fileURLWithPath: "\(dir)/stamped/blobs/sha256/\(hex)")))
            let layers = try #require(manifest["layers"] as? [[String: Any]]).compactMap { $0["digest"] as? String }
            try #require(layers.count == 3)
            let config = try #require((manifest["config"] as? [String: Any])?["digest"] as? String)

            let before = reg.requests().count
            let r = try imprint("extract", "registry://\(reg.host)/app:stamped", "-o", dir + "/out.json")
            #expect(r.status == 0, "\(r.err)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/out.json")) == Data(contentsOf: URL(fileURLWithPath: dir + "/m.json")))
            let requests = Array(reg.requests().dropFirst(before))
            let blobGets = requests.filter { $0.hasPrefix("GET /v2/app/blobs/") }.map { String($0.split(separator: "/").last!) }
            #expect(Set(blobGets) == [config, layers[2]], "fetched: \(requests)")
            #expect(!blobGets.contains(layers[0]) && !blobGets.contains(layers[1]))

            // verify --expect with the wrong digest is decided by the stamp alone: no base layer is fetched.
            let m = try jsonObject(Data(contentsOf: URL(fileURLWithPath: dir + "/m.json")))
            let expected = try #require(m["digest"] as? String)
            let before2 = reg.requests().count
            let wrong = try imprint("verify", "registry://\(reg.host)/app:stamped", "--expect", "sha256:" + String(repeating: "1", count: 64))
            #expect(wrong.status == 1)
            #expect(wrong.out.contains("digest-mismatch"))
            let stampOnly = try imprint("verify", "registry://\(reg.host)/app:stamped", "--expect", expected, "--stamp-only")
            #expect(stampOnly.status == 0, "\(stampOnly.out)\(stampOnly.err)")
            // It says what it checked, and claims no file comparison.
            #expect(stampOnly.out.hasPrefix("VERIFIED (stamp only): ") && stampOnly.out.contains("files were not compared")
                    && !stampOnly.out.contains("0 entries"), "\(stampOnly.out)")
            let fetched = Array(reg.requests().dropFirst(before2)).filter { $0.hasPrefix("GET /v2/app/blobs/") }.map { String($0.split(separator: "/").last!) }
            #expect(!fetched.contains(layers[0]) && !fetched.contains(layers[1]), "fetched: \(fetched)")
            // With the right digest and no --stamp-only, the files are compared too (all layers read).
            let full = try imprint("verify", "registry://\(reg.host)/app:stamped", "--expect", expected, "--at", "/")
            #expect(full.status == 0, "\(full.out)\(full.err)")

            // inspect (full flatten) agrees with the local stamped image, embedded manifest included.
            let local = try imprint("inspect", "oci:\(dir)/stamped:v1", "--json", "--tree-digest")
            let remote = try imprint("inspect", "registry://\(reg.host)/app:stamped", "--json", "--tree-digest")
            #expect(try jsonObject(local.stdout)["tree"] as? NSDictionary == jsonObject(remote.stdout)["tree"] as? NSDictionary)
            #expect(try jsonObject(local.stdout)["embeddedManifest"] as? NSDictionary == jsonObject(remote.stdout)["embeddedManifest"] as? NSDictionary)
        }
    }

    @Test func stampPushesOnlyNewBlobsAndMatchesLocalStamp() throws {
        try withPushedImage { dir, reg in
            try sh("cp -r '\(dir)/img' '\(dir)/stamped'")
            let local = try imprint("stamp", "\(dir)/stamped:v1", "--manifest", dir + "/m.json")
            let before = reg.requests().count
            let r = try imprint("stamp", "registry://\(reg.host)/app:v1", "--manifest", dir + "/m.json", "--tag", "v1-stamped")
            #expect(r.status == 0, "\(r.err)")
            let digest = r.out.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(digest == local.out.trimmingCharacters(in: .whitespacesAndNewlines), "registry stamp and local stamp differ")
            let requests = Array(reg.requests().dropFirst(before))
            // Uploads: the stamp layer and the config, one POST + PUT each; one manifest PUT; no base layer read.
            #expect(requests.filter { $0.hasPrefix("POST ") }.count == 2, "\(requests)")
            #expect(requests.filter { $0.hasPrefix("PUT /v2/app/manifests/") } == ["PUT /v2/app/manifests/v1-stamped"])
            #expect(requests.filter { $0.hasPrefix("GET /v2/app/blobs/") }.count == 1, "only the config is read: \(requests)")

            let inspect = try sh("skopeo inspect --tls-verify=false docker://\(reg.host)/app:v1-stamped")
            let labels = try jsonObject(inspect.stdout)["Labels"] as? [String: Any]
            #expect((labels?["org.imprint.digest"] as? String)?.hasPrefix("sha256:") == true)
            #expect(try jsonObject(inspect.stdout)["Digest"] as? String == digest)

            let back = try imprint("extract", "registry://\(reg.host)/app:v1-stamped", "-o", dir + "/back.json")
            #expect(back.status == 0, "\(back.err)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/back.json")) == Data(contentsOf: URL(fileURLWithPath: dir + "/m.json")))

            // Into another repository: base layers are mounted, never read or uploaded.
            let m0 = reg.requests().count
            let other = try imprint("stamp", "registry://\(reg.host)/app:v1", "--manifest", dir + "/m.json", "--to", "registry://\(reg.host)/prod/app:1.0")
            #expect(other.status == 0, "\(other.err)")
            #expect(other.out == r.out)
            let otherRequests = Array(reg.requests().dropFirst(m0))
            #expect(otherRequests.filter { $0.contains("mount=") }.count == 2, "\(otherRequests)")
            #expect(otherRequests.filter { $0.hasPrefix("GET /v2/app/blobs/") }.count == 1, "\(otherRequests)")
            let fromOther = try imprint("extract", "registry://\(reg.host)/prod/app:1.0")
            #expect(fromOther.stdout == (try Data(contentsOf: URL(fileURLWithPath: dir + "/m.json"))))

            // Stamping again pushes nothing new.
            let n = reg.requests().count
            let again = try imprint("stamp", "registry://\(reg.host)/app:v1", "--manifest", dir + "/m.json", "--tag", "v1-stamped")
            #expect(again.out == r.out)
            #expect(Array(reg.requests().dropFirst(n)).filter { $0.hasPrefix("POST ") }.isEmpty)
        }
    }

    @Test func attachedManifestIsFoundFromTheImageDigest() throws {
        try withPushedImage { dir, reg in
            let inspect = try imprint("inspect", "registry://\(reg.host)/app:v1", "--json")
            let digest = try #require((try jsonObject(inspect.stdout)["manifest"] as? [String: Any])?["digest"] as? String)
            let none = try imprint("fetch-manifest", "registry://\(reg.host)/app@\(digest)")
            #expect(none.status == 2)
            #expect(none.err.contains("no imprint manifest is attached"))

            let a = try imprint("attach", "registry://\(reg.host)/app@\(digest)", "--manifest", dir + "/m.json")
            #expect(a.status == 0, "\(a.err)")
            #expect(a.err.contains("no referrers API"))
            let tag = "sha256-\(digest.dropFirst(7))"   // the distribution spec's referrers tag schema
            let tags = try sh("skopeo list-tags --tls-verify=false docker://\(reg.host)/app")
            #expect(tags.out.contains(tag))
            // The artifact is a proper OCI 1.1 artifact.
            let artifactDigest = a.out.trimmingCharacters(in: .whitespacesAndNewlines)
            let raw = try sh("curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' http://\(reg.host)/v2/app/manifests/\(artifactDigest)")
            let art = try jsonObject(raw.stdout)
            #expect(art["artifactType"] as? String == "application/vnd.imprint.manifest.v1+json")
            #expect((art["config"] as? [String: Any])?["digest"] as? String == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
            #expect((art["subject"] as? [String: Any])?["digest"] as? String == digest)

            for ref in ["registry://\(reg.host)/app@\(digest)", "registry://\(reg.host)/app:v1"] {
                let f = try imprint("fetch-manifest", ref, "-o", dir + "/fetched.json")
                #expect(f.status == 0, "\(f.err)")
                #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/fetched.json")) == Data(contentsOf: URL(fileURLWithPath: dir + "/m.json")))
            }
            // Attaching the same manifest again keeps one entry.
            #expect(try imprint("attach", "registry://\(reg.host)/app:v1", "--manifest", dir + "/m.json").out == a.out)
            let index = try sh("curl -sf -H 'Accept: application/vnd.oci.image.index.v1+json' http://\(reg.host)/v2/app/manifests/\(tag)")
            #expect((try jsonObject(index.stdout)["manifests"] as? [Any])?.count == 1)
        }
    }

    @Test(.tags(.registry)) func historyTransportRoundTrip() throws {
        try withTempDir { dir in
            let reg = try LocalRegistry(dir: dir)
            defer { reg.stop() }
            try writeFile(dir + "/h1/records/a.json", "{\"step\":1}\n")
            try writeFile(dir + "/h1/records/b.json", "{\"step\":2}\n")
            try writeFile(dir + "/h1/index", "a\nb\n", mode: 0o600)
            let push = try imprint("history", "push", "--archive", dir + "/h1", "registry://\(reg.host)/team/history", "--name", "ci")
            #expect(push.status == 0, "\(push.err)")
            let pull = try imprint("history", "pull", "registry://\(reg.host)/team/history", "--name", "ci", "--directory", dir + "/h2")
            #expect(pull.status == 0, "\(pull.err)")
            try sh("diff -r '\(dir)/h1' '\(dir)/h2' && test \"$(stat -c %a '\(dir)/h2/index')\" = 600")

            // A file (what `history export` writes) travels byte for byte.
            try sh("head -c 200000 /dev/urandom | gzip > '\(dir)/export.tar.gz'")
            #expect(try imprint("history", "push", "--archive", dir + "/export.tar.gz", "registry://\(reg.host)/team/history").status == 0)
            let p2 = try imprint("history", "pull", "registry://\(reg.host)/team/history", "-o", dir + "/import.tar.gz")
            #expect(p2.status == 0, "\(p2.err)")
            try sh("cmp '\(dir)/export.tar.gz' '\(dir)/import.tar.gz'")
            let tags = try sh("skopeo list-tags --tls-verify=false docker://\(reg.host)/team/history")
            #expect(tags.out.contains("imprint-history-ci") && tags.out.contains("imprint-history-default"))
            let missing = try imprint("history", "pull", "registry://\(reg.host)/team/history", "--name", "nope", "-o", dir + "/x")
            #expect(missing.status == 2)
            #expect(!FileManager.default.fileExists(atPath: dir + "/x"))
        }
    }

    @Test(.tags(.registry)) func historyStoresSyncThroughTheRegistry() throws {
        try withTempDir { dir in
            let reg = try LocalRegistry(dir: dir)
            defer { reg.stop() }
            let repo = "registry://\(reg.host)/team/history"
            // Runner 1 records two builds and pushes; runner 2 records one and pushes (merging); both pull.
            for (store, n) in [("s1", 2), ("s2", 1)] {
                for i in 0..<n {
                    try sh("mkdir -p ctx-\(store)-\(i) && printf '\(store) \(i)' > ctx-\(store)-\(i)/f", cwd: dir)
                    #expect(try imprint("fingerprint", dir + "/ctx-\(store)-\(i)", "--record", "--history", dir + "/" + store, "-q", "--digest-only").status == 0)
                }
                let push = try imprint("history", "push", repo, "--history", dir + "/" + store)
                #expect(push.status == 0, "\(push.err)")
            }
            #expect(try imprint("history", "pull", repo, "--history", dir + "/s1").status == 0)
            let empty = dir + "/s3"
            #expect(try imprint("history", "pull", repo, "--history", empty).status == 0)
            let lists = try ["s1", "s2", "s3"].map { try imprint("history", "list", "--json", "--history", dir + "/" + $0).out }
            #expect(lists[0] == lists[1])
            #expect(lists[0] == lists[2])
            #expect(lists[0].components(separatedBy: "\"root\"").count - 1 == 3, "\(lists[0])")
            #expect(try imprint("history", "fsck", "--history", empty).status == 0)
        }
    }

    @Test(.tags(.registry)) func basicAuthFromDockerConfig() throws {
        try withPushedImage(htpasswd: ("ci", "s3cret")) { dir, reg in
            let spec = "registry://\(reg.host)/app:v1"
            let anonymous = try imprint("inspect", spec, env: ["DOCKER_CONFIG": dir + "/nowhere", "HOME": dir])
            #expect(anonymous.status == 2)
            #expect(anonymous.err.contains("requires credentials for repo app (401)"), "\(anonymous.err)")

            let wrong = try imprint("inspect", spec, env: ["IMPRINT_REGISTRY_USER": "ci", "IMPRINT_REGISTRY_PASSWORD": "wrong"])
            #expect(wrong.status == 2)
            #expect(wrong.err.contains("registry \(reg.host) refused credentials for repo app (401"), "\(wrong.err)")
            #expect(wrong.err.split(separator: "\n").count == 1)

            let auth = Data("ci:s3cret".utf8).base64EncodedString()
            try writeFile(dir + "/docker/config.json", "{\"auths\":{\"\(reg.host)\":{\"auth\":\"\(auth)\"}}}")
            let good = try imprint("inspect", spec, "--tree-digest", "--json", env: ["DOCKER_CONFIG": dir + "/docker"])
            #expect(good.status == 0, "\(good.err)")
            #expect(try treeDigest("oci:\(dir)/img:v1") == (try jsonObject(good.stdout)["tree"] as? [String: Any])?["digest"] as? String)
            let stamp = try imprint("stamp", spec, "--manifest", dir + "/m.json", env: ["DOCKER_CONFIG": dir + "/docker"])
            #expect(stamp.status == 0, "\(stamp.err)")
            let back = try imprint("extract", spec, env: ["DOCKER_CONFIG": dir + "/docker"])
            #expect(back.stdout == (try Data(contentsOf: URL(fileURLWithPath: dir + "/m.json"))))
        }
    }

    @Test func registryDownIsAClearError() throws {
        try withPushedImage { dir, reg in
            reg.stop()
            let r = try imprint("extract", "registry://\(reg.host)/app:v1", "-o", dir + "/out.json",
                                env: ["IMPRINT_REGISTRY_RETRIES": "2"])
            #expect(r.status == 2)
            #expect(r.err == "imprint: error: cannot connect to registry \(reg.host): connection refused (after 2 tries)\n")
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.json"))
        }
    }

    @Test func silentRegistryTimesOut() throws {
        try withTempDir { dir in
            // A listening socket nobody accepts from: the kernel completes the handshake, no answer ever comes.
            let (fd, port) = try LocalRegistry.listeningSocket()
            defer { close(fd) }
            let r = try imprint("extract", "registry://127.0.0.1:\(port)/app:v1", "-o", dir + "/out.json",
                                env: ["IMPRINT_REGISTRY_TIMEOUT": "1", "IMPRINT_REGISTRY_RETRIES": "2"])
            #expect(r.status == 2)
            #expect(r.err.contains("did not answer in time: 127.0.0.1:\(port): waiting for the response: no data for 1s (idle timeout; IMPRINT_REGISTRY_TIMEOUT) (after 2 tries)"), "\(r.err)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.json"))
        }
    }

    @Test func corruptedOrTruncatedBlobIsRejected() throws {
        try withPushedImage { dir, reg in
            let stamp = try imprint("stamp", "registry://\(reg.host)/app:v1", "--manifest", dir + "/m.json")
            #expect(stamp.status == 0, "\(stamp.err)")
            let raw = try sh("curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' http://\(reg.host)/v2/app/manifests/v1")
            let layers = try #require(try jsonObject(raw.stdout)["layers"] as? [[String: Any]])
            let stampLayer = try #require(layers.last?["digest"] as? String)
            let file = reg.blobFile(stampLayer)
            #expect(FileManager.default.fileExists(atPath: file))

            // Same size, different bytes.
            try sh("printf 'XXXX' | dd of='\(file)' bs=1 seek=20 conv=notrunc status=none")
            let r = try imprint("extract", "registry://\(reg.host)/app:v1", "-o", dir + "/out.json")
            #expect(r.status == 2)
            #expect(r.err.contains(stampLayer) && (r.err.contains("does not match its digest") || r.err.contains("corrupt gzip")), "\(r.err)")
            #expect(r.err.split(separator: "\n").count == 1)
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.json"))

            // A base layer corrupted: inspect (which reads every layer) names it.
            let base = try #require(layers.first?["digest"] as? String)
            try sh("printf 'XXXX' | dd of='\(reg.blobFile(base))' bs=1 seek=100 conv=notrunc status=none")
            let i = try imprint("inspect", "registry://\(reg.host)/app:v1", "--tree-digest")
            #expect(i.status == 2)
            #expect(i.err.contains(String(base.dropFirst(7).prefix(12))), "\(i.err)")

            // Truncated blob.
            try sh("truncate -s 10 '\(file)'")
            let t = try imprint("extract", "registry://\(reg.host)/app:v1", "-o", dir + "/out.json")
            #expect(t.status == 2)
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.json"))
        }
    }
}
