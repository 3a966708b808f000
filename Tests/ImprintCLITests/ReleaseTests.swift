import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// ci/release, run once per test process (the portable build takes minutes from a clean tree), signed with a key
/// made for the run.
struct Release {
    let dir: String
    let out: String
    let key: String
    let pub: String
    let version: String
    var name: String { "imprint-\(version)-linux-x86_64" }
    var tarball: String { "\(out)/\(name).tar.gz" }
    /// The tarball unpacked.
    var unpacked: String { "\(dir)/x/\(name)" }
    var binary: String { unpacked + "/bin/imprint" }

    nonisolated(unsafe) private static var built: Result<Release, Error>?
    private static let lock = NSLock()

    static func shared(sourceLocation: SourceLocation = #_sourceLocation) throws -> Release {
        lock.lock(); defer { lock.unlock() }
        if built == nil { built = Result { try build() } }
        return try built!.get()
    }

    private static func build() throws -> Release {
        for tool in ["gcc", "openssl", "python3", "strip", "sha256sum"] { try requireTool(tool) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imprint-release-\(UUID().uuidString.prefix(8))").path
        let out = dir + "/out"
        try FileManager.default.createDirectory(atPath: dir + "/x", withIntermediateDirectories: true)
        ProcessFixtures.removeAtExit(dir)
        let r = try run("/bin/bash", ["-euo", "pipefail", "-c", """
        openssl genpkey -algorithm ed25519 -out '\(dir)/release.key'
        openssl pkey -in '\(dir)/release.key' -pubout -out '\(dir)/release.pub'
        IMPRINT_SIGNING_KEY='\(dir)/release.key' bash ci/release '\(out)'
        """], cwd: TestEnv.packageRoot.path, timeout: 3600)
        guard r.status == 0 else { throw ReleaseFailed(log: r.err) }
        let version = try String(contentsOfFile: TestEnv.packageRoot.path + "/Sources/ImprintBase/Support/Imprint.swift", encoding: .utf8)
            .components(separatedBy: "static let version = \"")[1].components(separatedBy: "\"")[0]
        let release = Release(dir: dir, out: out, key: dir + "/release.key", pub: dir + "/release.pub", version: version)
        let x = try run("tar", ["-xzf", release.tarball, "-C", dir + "/x"])
        guard x.status == 0 else { throw ReleaseFailed(log: x.err) }
        return release
    }

    struct ReleaseFailed: Error, CustomStringConvertible {
        var log: String
        var description: String { "ci/release failed:\n\(log.suffix(4000))" }
    }
}

/// Serves a directory over HTTP on 127.0.0.1 (Python's http.server) until stopped.
final class FileServer {
    let process = Process()
    let stdin = Pipe()
    let port: Int
    var url: String { "http://127.0.0.1:\(port)" }

    init(_ dir: String) throws {
        let out = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", """
        import functools, http.server, sys, threading
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
        handler.log_message = lambda *a: None
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        print(server.server_address[1], flush=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        sys.stdin.read()
        """, dir]
        process.standardInput = stdin
        process.standardOutput = out
        try launchProcess(process)
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        guard let p = Int(line.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw ToolMissing(name: "python3 http.server did not start: \(line)")
        }
        port = p
    }

    func stop() {
        try? stdin.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    deinit { stop() }
}

@Suite(.serialized) struct ReleaseTests {
    @Test(.tags(.release)) func theBinaryLoadsOnlyGlibcAndRunsWithoutTheToolchain() throws {
        let release = try Release.shared()
        let ldd = try run("ldd", [release.binary])
        let libraries = ldd.out.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces).components(separatedBy: " ")[0] }
        #expect(!libraries.isEmpty)
        for lib in libraries {
            #expect(["linux-vdso.so.1", "libc.so.6", "libm.so.6", "/lib64/ld-linux-x86-64.so.2"].contains(lib), "loads \(lib):\n\(ldd.out)")
        }
        // No Swift toolchain, no library path, an empty environment.
        let r = try run("/usr/bin/env", ["-i", release.binary, "--version"])
        let openssl = try opensslVersion()
        #expect(r.status == 0 && r.out == "imprint \(release.version) (OpenSSL \(openssl))\n", "\(r.out)\(r.err)")
        try withTempDir { dir in
            try writeFile(dir + "/ctx/app.py", "print('hi')\n")
            try writeFile(dir + "/ctx/.dockerignore", "*.log\n")
            let portable = try run("/usr/bin/env", ["-i", release.binary, "fingerprint", dir + "/ctx", "--digest-only"])
            let developer = try imprint("fingerprint", dir + "/ctx", "--digest-only")
            #expect(portable.status == 0 && portable.out == developer.out, "\(portable.err)")
        }
    }

    func opensslVersion() throws -> String {
        // The version line of the statically linked OpenSSL: the same release as the system's libcrypto.
        let v = try run("openssl", ["version"]).out
        return v.components(separatedBy: " (Library")[0].replacingOccurrences(of: "OpenSSL ", with: "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(.tags(.release)) func theTarballHoldsTheBinaryManPageCompletionsReadmeAndLicense() throws {
        let release = try Release.shared()
        let u = release.unpacked
        for (path, needle) in [("share/man/man1/imprint.1", ".Dt IMPRINT 1"), ("share/bash-completion/completions/imprint", "fingerprint"),
                               ("share/zsh/site-functions/_imprint", "#compdef imprint"),
                               ("share/fish/vendor_completions.d/imprint.fish", "verify-signature")] {
            let text = (try? String(contentsOfFile: u + "/" + path, encoding: .utf8)) ?? ""
            #expect(text.contains(needle), "\(path) lacks \(needle)")
        }
        for file in ["README.md", "LICENSE"] {
            #expect(FileManager.default.contentsEqual(atPath: u + "/" + file, andPath: TestEnv.packageRoot.path + "/" + file), "\(file)")
        }
        let listing = try run("tar", ["-tvzf", release.tarball]).out
        for line in listing.split(separator: "\n") {
            #expect(line.contains(" 0/0 "), "not owned by 0/0: \(line)")
        }
        #expect(listing.contains("-rwxr-xr-x 0/0") && listing.contains("\(release.name)/bin/imprint"))
    }

    @Test(.tags(.release)) func twoRunsGiveIdenticalBytes() throws {
        let release = try Release.shared()
        try withTempDir { dir in
            // The second run builds from nothing in another directory: neither an incremental build nor the build
            // directory's path may change a byte.
            let again = try run("/bin/bash", ["-c", "IMPRINT_SIGNING_KEY='\(release.key)' IMPRINT_RELEASE_SCRATCH='\(dir)/scratch' bash ci/release '\(dir)/out'"],
                                cwd: TestEnv.packageRoot.path, timeout: 3600)
            #expect(again.status == 0, "\(again.err.suffix(2000))")
            let first = try String(contentsOfFile: release.out + "/SHA256SUMS", encoding: .utf8)
            #expect(try String(contentsOfFile: dir + "/out/SHA256SUMS", encoding: .utf8) == first)
            #expect(first.split(separator: "\n").count == 3, "\(first)")
            #expect(FileManager.default.contentsEqual(atPath: release.out + "/SHA256SUMS.sig", andPath: dir + "/out/SHA256SUMS.sig"))
            let layouts = try run("diff", ["-r", release.out + "/\(release.name)-image", dir + "/out/\(release.name)-image"])
            #expect(layouts.status == 0, "\(layouts.out)")
        }
    }

    @Test(.tags(.release)) func checksumsAndSignatureVerifyWithOpenSSLSha256sumAndImprint() throws {
        let release = try Release.shared()
        let out = release.out
        #expect(try sh("sha256sum -c SHA256SUMS", cwd: out).status == 0)
        let openssl = try run("openssl", ["pkeyutl", "-verify", "-pubin", "-inkey", release.pub, "-rawin", "-in", out + "/SHA256SUMS",
                                          "-sigfile", out + "/SHA256SUMS.sig"])
        #expect(openssl.status == 0 && openssl.out.contains("Signature Verified Successfully"), "\(openssl.out)\(openssl.err)")
        let ok = try imprint("verify-signature", out + "/SHA256SUMS", "--signature", out + "/SHA256SUMS.sig", "--pubkey", release.pub)
        #expect(ok.status == 0 && ok.out.hasPrefix("signature valid: "), "\(ok.out)\(ok.err)")
        try withTempDir { dir in
            // One character changed, whatever it was (a digest that already starts with 0 must still change).
            try sh("cp '\(out)/SHA256SUMS' \(dir)/SUMS && sed -i '1s/^0/1/;t;1s/^./0/' \(dir)/SUMS && ! cmp -s '\(out)/SHA256SUMS' \(dir)/SUMS")
            let tampered = try imprint("verify-signature", dir + "/SUMS", "--signature", out + "/SHA256SUMS.sig", "--pubkey", release.pub)
            #expect(tampered.status == 1 && tampered.out.hasPrefix("signature INVALID: "), "\(tampered.out)\(tampered.err)")
            let pinned = try imprint("verify-signature", out + "/SHA256SUMS", "--signature", out + "/SHA256SUMS.sig",
                                     "--pubkey", TestEnv.packageRoot.path + "/ci/imprint-release.pub")
            #expect(pinned.status == 1, "a test-key signature verified with the release key")
        }
    }

    @Test(.tags(.release)) func theInstallScriptInstallsAVerifiedReleaseAndRefusesTamperedOnes() throws {
        let release = try Release.shared()
        let script = TestEnv.packageRoot.path + "/ci/install.sh"
        // The key install.sh pins is ci/imprint-release.pub, and it installs this version by default.
        let text = try String(contentsOfFile: script, encoding: .utf8)
        let pub = try String(contentsOfFile: TestEnv.packageRoot.path + "/ci/imprint-release.pub", encoding: .utf8)
        #expect(text.contains(pub.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(text.contains("version=${IMPRINT_VERSION:-\(release.version)}"))
        try withTempDir { dir in
            let server = try FileServer(release.out)
            defer { server.stop() }
            func install(_ base: String, prefix: String, pubkey: String?) throws -> RunResult {
                var env = ["IMPRINT_BASE_URL": base, "IMPRINT_PREFIX": prefix]
                if let pubkey { env["IMPRINT_PUBKEY_FILE"] = pubkey }
                // curl | sh, as the README says (the script itself from the release server).
                return try run("/bin/sh", ["-c", "curl -fsSL \(server.url)/install.sh | sh"], env: env)
            }
            let good = try install(server.url, prefix: dir + "/good", pubkey: release.pub)
            #expect(good.status == 0, "\(good.err)")
            #expect(try run(dir + "/good/bin/imprint", ["--version"]).out.hasPrefix("imprint \(release.version) "))
            for f in ["share/man/man1/imprint.1", "share/bash-completion/completions/imprint", "share/zsh/site-functions/_imprint",
                      "share/fish/vendor_completions.d/imprint.fish"] {
                #expect(FileManager.default.fileExists(atPath: dir + "/good/" + f), "\(f)")
            }

            // The pinned release key did not sign this (test) release: refused.
            let pinned = try install(server.url, prefix: dir + "/pinned", pubkey: nil)
            #expect(pinned.status == 2 && pinned.err.contains("does not verify with the release key"), "\(pinned.err)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/pinned"))

            // A tampered tarball, its SHA256SUMS left alone.
            try sh("cp -r '\(release.out)' \(dir)/tampered && printf x >> \(dir)/tampered/\(release.name).tar.gz")
            let tamperedServer = try FileServer(dir + "/tampered")
            defer { tamperedServer.stop() }
            let tampered = try install(tamperedServer.url, prefix: dir + "/t", pubkey: release.pub)
            #expect(tampered.status == 2 && tampered.err.contains("does not match SHA256SUMS"), "\(tampered.err)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/t"))

            // SHA256SUMS rewritten to match the tampered tarball: now the signature does not verify.
            try sh("cd \(dir)/tampered && sha256sum \(release.name).tar.gz > SHA256SUMS")
            let resigned = try install(tamperedServer.url, prefix: dir + "/r", pubkey: release.pub)
            #expect(resigned.status == 2 && resigned.err.contains("does not verify"), "\(resigned.err)")
            // A signature by another key.
            try sh("""
            cp '\(release.out)/SHA256SUMS' \(dir)/tampered/SHA256SUMS
            cp '\(release.out)/\(release.name).tar.gz' \(dir)/tampered/
            openssl genpkey -algorithm ed25519 -out \(dir)/other.key
            openssl pkeyutl -sign -inkey \(dir)/other.key -rawin -in \(dir)/tampered/SHA256SUMS -out \(dir)/tampered/SHA256SUMS.sig
            """)
            let wrongKey = try install(tamperedServer.url, prefix: dir + "/w", pubkey: release.pub)
            #expect(wrongKey.status == 2 && wrongKey.err.contains("does not verify"), "\(wrongKey.err)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/r") && !FileManager.default.fileExists(atPath: dir + "/w"))
            // Nothing there at all.
            let missing = try install(server.url + "/nope", prefix: dir + "/m", pubkey: release.pub)
            #expect(missing.status == 2 && missing.err.contains("cannot download"), "\(missing.err)")
        }
    }

    /// The action's steps run as a runner runs them (Support/gha_local.py), then ci/examples/github-actions.yml's
    /// jobs end to end through a real engine, with the action installing the release from a local server.
    @Test(.tags(.engine, .release)) func theActionAndTheExampleWorkflowInstallAndVerify() throws {
        let release = try Release.shared()
        let engine = try ContainerEngine()
        defer { engine.stop() }
        try engine.buildBusyboxBase()
        try withTempDir { dir in
            let server = try FileServer(release.out)
            defer { server.stop() }
            let gha = TestEnv.packageRoot.path + "/Tests/ImprintCLITests/Support/gha_local.py"
            let action = TestEnv.packageRoot.path + "/ci/github-action"
            // The action's inputs point at the local release; the example pins the published one.
            let workflowText = try String(contentsOfFile: TestEnv.packageRoot.path + "/ci/examples/github-actions.yml", encoding: .utf8)
            #expect(workflowText.contains("uses: imprint/imprint/ci/github-action@v\(release.version)"))
            let local = workflowText.replacingOccurrences(of: "        with:\n          command:",
                                                          with: "        with:\n          base-url: \(server.url)\n          pubkey-file: \(release.pub)\n          command:")
            try writeFile(dir + "/workflow.yml", local)
            let ws = dir + "/ws"
            try writeFile(ws + "/app/main.sh", "echo v1\n")
            try writeFile(ws + "/.dockerignore", ".git\n")
            try writeFile(ws + "/Dockerfile", "FROM localhost/busybox-base\nCOPY . /app\nCMD [\"sleep\", \"600\"]\n")
            let env = engine.env   // imprint comes from the action (GITHUB_PATH), not from the test build
            func runWorkflow(_ file: String) throws -> RunResult {
                try run("python3", [gha, file, "--workspace", ws, "--action", "imprint/imprint/ci/github-action=\(action)",
                                    "--env", "GITHUB_SHA=0123456789abcdef0123456789abcdef01234567"], cwd: ws, env: env)
            }
            let expected = try imprint("fingerprint", ws, "--digest-only").out.trimmingCharacters(in: .whitespacesAndNewlines)
            let r = try runWorkflow(dir + "/workflow.yml")
            #expect(r.status == 0, "\(r.err.suffix(3000))")
            let jobs = (try? jsonObject(r.stdout))?["jobs"] as? [String: [String: Any]] ?? [:]
            let digest = (jobs["build"]?["outputs"] as? [String: String])?["digest"] ?? ""
            let matches = digest == expected && digest.hasPrefix("sha256:")
            #expect(matches, "build output digest \(digest), context \(expected)")
            let summary = jobs["verify-deploy"]?["summary"] as? String ?? ""
            #expect(summary.contains("### imprint verify: VERIFIED") && summary.contains(digest), "\(summary)")
            #expect((jobs["build"]?["summary"] as? String ?? "").contains("### imprint fingerprint: OK"))
            #expect(FileManager.default.fileExists(atPath: ws + "/evidence/manifest.json"))

            // A deploy that leaves old code in the container fails the verify job and names the file.
            try engine.sh("docker exec app sh -c 'echo v0 > /app/main.sh'")
            let verifyOnly = workflowText.components(separatedBy: "  verify-deploy:")[1]
                .replacingOccurrences(of: "${{ needs.build.outputs.digest }}", with: digest)
                .replacingOccurrences(of: "docker run -d --name app", with: "docker exec app true || docker run -d --name app")
                .replacingOccurrences(of: "docker rm -f app >/dev/null 2>&1 || true", with: "true")
                .replacingOccurrences(of: "        with:\n          command:",
                                      with: "        with:\n          base-url: \(server.url)\n          pubkey-file: \(release.pub)\n          command:")
            try writeFile(dir + "/verify.yml", "name: v\non: [push]\njobs:\n  verify-deploy:" + verifyOnly.replacingOccurrences(of: "    needs: build\n", with: ""))
            let bad = try runWorkflow(dir + "/verify.yml")
            #expect(bad.status == 1 && bad.err.contains("failed with exit status 1"), "\(bad.err.suffix(2000))")
            #expect(bad.err.contains("MISMATCH") && bad.err.contains("main.sh"), "\(bad.err.suffix(2000))")
        }
    }

    /// The image of imprint: FROM scratch, the binary, the glibc it loads and a CA bundle; run by podman through
    /// the docker CLI: --version, fingerprint, verify of a tar stream, verify registry:// over HTTPS with a
    /// private CA given by SSL_CERT_FILE.
    @Test(.tags(.engine, .registry, .release)) func theImageOfImprintRunsFingerprintAndVerifyOverHTTPS() throws {
        let release = try Release.shared()
        let engine = try ContainerEngine()
        defer { engine.stop() }
        try withTempDir { dir in
            // The three image forms carry the same stamped image.
            let layout = release.out + "/\(release.name)-image"
            let oci = try run("skopeo", ["inspect", "--raw", "oci-archive:\(release.out)/\(release.name)-image.oci.tar"]).out
            let lay = try run("skopeo", ["inspect", "--raw", "oci:\(layout):\(release.version)"]).out
            #expect(!oci.isEmpty && oci == lay)
            let image = "imprint:\(release.version)"
            try engine.sh("docker load -q -i '\(release.out)/\(release.name)-image.docker.tar' >/dev/null")
            // Containers run to completion without docker run's attached wait (see runContainer).
            let version = try engine.runContainer("v", "--network none \(image) --version")
            #expect(version.out.hasPrefix("imprint \(release.version) "))
            // Nothing but the binary, glibc, the CA bundle and the stamp.
            let files = try engine.sh("docker create --name probe \(image) >/dev/null && docker export probe | tar -tf - | sort && docker rm probe >/dev/null")
            let listed = files.out.split(separator: "\n").map(String.init).filter { !$0.hasSuffix("/") }
            #expect(listed.contains("usr/local/bin/imprint") && listed.contains("etc/ssl/certs/ca-certificates.crt")
                    && listed.contains("lib64/ld-linux-x86-64.so.2") && listed.contains("lib/x86_64-linux-gnu/libc.so.6")
                    && listed.contains(".imprint/manifest.json"), "\(listed)")
            #expect(listed.count <= 8, "\(listed)")

            try writeFile(dir + "/ctx/app.py", "print('v1')\n")
            try writeFile(dir + "/ctx/.dockerignore", "*.pyc\n")
            let digest = try imprint("fingerprint", dir + "/ctx", "--digest-only").out.trimmingCharacters(in: .whitespacesAndNewlines)
            let inside = try engine.runContainer("fp", "--network none -v \(dir)/ctx:/ctx:ro \(image) fingerprint /ctx --digest-only")
            #expect(inside.out.trimmingCharacters(in: .whitespacesAndNewlines) == digest)
            try imprint("fingerprint", dir + "/ctx", "-q", "-o", dir + "/m.json")
            try sh("tar -C \(dir)/ctx -cf \(dir)/ctx.tar .")
            let stream = try engine.runContainer("stream", "--network none -v \(dir)/m.json:/m.json:ro -v \(dir)/ctx.tar:/ctx.tar:ro \(image) verify /ctx.tar --manifest /m.json")
            #expect(stream.out.contains("VERIFIED"), "\(stream.out)")

            // A registry that speaks only HTTPS, with a certificate from a private CA, reached by name.
            try sh("""
            cd \(dir)
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.pem 2>/dev/null
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=registry.test -keyout reg.key -out reg.csr 2>/dev/null
            printf 'subjectAltName=DNS:registry.test\\n' > san.ext
            openssl x509 -req -in reg.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out reg.pem 2>/dev/null
            chmod 644 ca.pem
            """)
            try FileManager.default.createDirectory(atPath: dir + "/reg", withIntermediateDirectories: true)
            let registry = try LocalRegistry(dir: dir + "/reg", tls: (dir + "/reg.pem", dir + "/reg.key"))
            defer { registry.stop() }
            // An image of the context, stamped, pushed over TLS.
            try engine.sh("""
            cd \(dir)
            mkdir b && cp -r ctx b/ctx && printf 'FROM scratch\\nCOPY ctx /app\\n' > b/Dockerfile
            docker build -q -t localhost/ctx-app b >/dev/null
            docker save localhost/ctx-app -o app.tar
            imprint stamp app.tar --context ctx --check --at /app -o stamped.tar >/dev/null
            skopeo copy -q --dest-tls-verify=false docker-archive:stamped.tar docker://\(registry.host)/app:v1
            """)
            let port = registry.port
            let https = try engine.runContainer("https", """
            --network host --add-host registry.test:127.0.0.1 -v \(dir)/ca.pem:/ca.pem:ro -e SSL_CERT_FILE=/ca.pem \
              \(image) verify registry://registry.test:\(port)/app:v1 --expect \(digest) --at /app
            """)
            #expect(https.out.contains("VERIFIED"), "\(https.out)\(https.err)")
            // Without the private CA the bundle in the image does not trust it: a one-line error, exit 2.
            let untrusted = try engine.runContainer("untrusted", "--network host --add-host registry.test:127.0.0.1 \(image) verify registry://registry.test:\(port)/app:v1 --expect \(digest) --at /app",
                                                    expectSuccess: false)
            #expect(untrusted.status == 2 && untrusted.err.contains("not trusted"), "\(untrusted.err)")
        }
    }

    /// The portable binary copied into running containers of an incident image (CPython on busybox), then run
    /// there against / with its processes.
    @Test(.tags(.engine, .release)) func copiedIntoRunningContainersItVerifiesFilesAndProcesses() throws {
        let release = try Release.shared()
        let engine = try ContainerEngine()
        defer { engine.stop() }
        try engine.buildPythonBase()
        try withTempDir { dir in
            try writeFile(dir + "/ctx/server.py", "import time\nimport mod\nprint(mod.V, flush=True)\ntime.sleep(600)\n")
            try writeFile(dir + "/ctx/mod.py", "V = 1\n")
            try writeFile(dir + "/ctx/.dockerignore", "**/__pycache__\nDockerfile\n.dockerignore\n")
            try writeFile(dir + "/ctx/Dockerfile", "FROM localhost/python-base\nCOPY . /app\nWORKDIR /app\nCMD [\"python3\", \"server.py\"]\n")
            try imprint("fingerprint", dir + "/ctx", "-q", "-o", dir + "/m.json")
            try engine.sh("""
            docker build -q -t localhost/incident \(dir)/ctx >/dev/null
            docker run -d --name app localhost/incident >/dev/null
            docker cp '\(release.binary)' app:/imprint
            docker cp \(dir)/m.json app:/m.json
            """)
            try engine.waitFor("app", "ls /app/__pycache__/mod.*.pyc")
            let ok = try run("docker", ["exec", "app", "/imprint", "verify", "/", "--manifest", "/m.json", "--at", "/app", "--processes"], env: engine.env)
            #expect(ok.status == 0 && ok.out.contains("VERIFIED"), "\(ok.out)\(ok.err)")
            // New code copied in while the process keeps the old module: the process is named.
            // The change is dated 5 s after now, so it lies beyond the clock-tick slack after the process's start
            // however fast this runs (no race with the start time).
            try engine.sh("docker exec app sh -c 'echo \"V = 2\" > /app/mod.py && python3 -c \"import os, time; t = time.time() + 5; os.utime(\\\"/app/mod.py\\\", (t, t))\"'")
            try imprint("fingerprint", dir + "/ctx", "-q", "-o", dir + "/m1.json")
            try writeFile(dir + "/ctx/mod.py", "V = 2\n")
            try imprint("fingerprint", dir + "/ctx", "-q", "-o", dir + "/m2.json")
            try engine.sh("docker cp \(dir)/m2.json app:/m2.json")
            let stale = try run("docker", ["exec", "app", "/imprint", "verify", "/", "--manifest", "/m2.json", "--at", "/app", "--processes"], env: engine.env)
            #expect(stale.status == 1 && stale.out.contains("python3"), "\(stale.out)\(stale.err)")
            // And the old manifest no longer matches the files.
            let files = try run("docker", ["exec", "app", "/imprint", "verify", "/", "--manifest", "/m.json", "--at", "/app", "--no-processes"], env: engine.env)
            #expect(files.status == 1 && files.out.contains("mod.py"), "\(files.out)")
        }
    }

    /// The README's install examples, literally but for the release URL, which points at a local copy.
    @Test(.tags(.engine, .release)) func theReadmeInstallExamplesWork() throws {
        let release = try Release.shared()
        let engine = try ContainerEngine()
        defer { engine.stop() }
        let readme = try String(contentsOfFile: TestEnv.packageRoot.path + "/README.md", encoding: .utf8)
        let blocks = readme.components(separatedBy: "<!-- readme: release (").dropFirst().map {
            $0.components(separatedBy: "```sh\n")[1].components(separatedBy: "\n```")[0]
        }
        #expect(blocks.count == 3)
        let published = "https://github.com/imprint/imprint/releases/download/v\(release.version)"
        try withTempDir { dir in
            let server = try FileServer(release.out)
            defer { server.stop() }
            try sh("cp '\(release.pub)' \(dir)/imprint-release.pub && mkdir -p \(dir)/src && echo 'print(1)' > \(dir)/src/app.py")
            // The mirror setting install.sh documents: the script itself also fetches from the local copy.
            var env = engine.scriptEnv(["IMPRINT_PREFIX": dir + "/prefix", "IMPRINT_PUBKEY_FILE": release.pub, "IMPRINT_BASE_URL": server.url])
            env["PATH"] = dir + "/prefix/bin:" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
            var outputs: [String] = []
            for block in blocks {
                #expect(block.contains(published), "\(block)")
                // The example as written for Docker; through podman's compatible API docker run's attached wait can
                // miss a container that exits at once and spin forever (a podman bug), so here the same container is
                // created, started, waited for and its output read back (see runContainer).
                var code = block.replacingOccurrences(of: published, with: server.url)
                if let line = code.split(separator: "\n").first(where: { $0.hasPrefix("docker run --rm ") }) {
                    let args = line.dropFirst("docker run --rm ".count)
                    code = code.replacingOccurrences(of: String(line), with: "docker create --name readme-example \(args) >/dev/null && docker start readme-example >/dev/null && until [ \"$(docker inspect -f '{{.State.Status}}' readme-example)\" = exited ]; do sleep 0.1; done && docker logs readme-example && exit \"$(docker inspect -f '{{.State.ExitCode}}' readme-example)\"")
                }
                let r = try run("/bin/bash", ["-euo", "pipefail", "-c", code], cwd: dir + (block.contains("/src") ? "/src" : ""), env: env)
                #expect(r.status == 0, "\(code)\n\(r.out)\(r.err)")
                outputs.append(r.out)
            }
            #expect(outputs[0].hasPrefix("imprint \(release.version) ") && outputs[1].contains("imprint \(release.version) "))
            #expect(outputs[1].contains("Signature Verified Successfully") && outputs[1].contains(": OK"))
            let digest = try imprint("fingerprint", dir + "/src", "--digest-only").out
            #expect(outputs[2].hasSuffix(digest) && digest.hasPrefix("sha256:"), "\(outputs[2])")
        }
    }
}
