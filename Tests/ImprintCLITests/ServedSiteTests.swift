import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Debian's nginx on 127.0.0.1 with its config, pid file, logs and temp paths in a test directory: an origin serving
/// a directory (gzip on, as sites run it), or a `proxy_cache` in front of another server.
final class Nginx {
    let dir: String
    let port: Int
    private let process = Process()

    /// Serves `root`; or, with `upstream`, caches what that server answers in `dir/cache`.
    init(dir: String, root: String? = nil, upstream: Int? = nil) throws {
        try requireTool("nginx")
        self.dir = dir
        try FileManager.default.createDirectory(atPath: dir + "/logs", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/cache", withIntermediateDirectories: true)
        port = try Nginx.freePort()
        let server: String
        if let upstream {
            server = """
              proxy_cache_path \(dir)/cache levels=1:2 keys_zone=static:4m max_size=200m inactive=1h use_temp_path=off;
              server { listen 127.0.0.1:\(port);
                location / { proxy_pass http://127.0.0.1:\(upstream); proxy_cache static; proxy_cache_valid 200 10m;
                             add_header X-Cache-Status $upstream_cache_status always; } }
            """
        } else {
            server = """
              gzip on; gzip_min_length 0; gzip_types text/css application/javascript application/json;
              server { listen 127.0.0.1:\(port); root \(root ?? dir + "/www");
                location / { add_header Cache-Control "public, max-age=3600"; } }
            """
        }
        try writeFile(dir + "/nginx.conf", """
        user root;
        worker_processes 1;
        pid \(dir)/nginx.pid;
        error_log \(dir)/logs/error.log;
        events { worker_connections 256; }
        http {
          access_log off;
          client_body_temp_path \(dir)/tmp/body; proxy_temp_path \(dir)/tmp/proxy;
          fastcgi_temp_path \(dir)/tmp/fastcgi; uwsgi_temp_path \(dir)/tmp/uwsgi; scgi_temp_path \(dir)/tmp/scgi;
          include /etc/nginx/mime.types;
          keepalive_requests 100000;
        \(server)
        }

        """)
        try FileManager.default.createDirectory(atPath: dir + "/tmp", withIntermediateDirectories: true)
        // In the foreground, as this test's child: a daemonising nginx keeps Foundation's exit watch of the
        // process it started open, so that process is never reaped.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["nginx", "-e", dir + "/logs/error.log", "-c", dir + "/nginx.conf", "-g", "daemon off;"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try launchProcess(process)
        for _ in 0..<100 {
            if (try? run("/bin/bash", ["-c", "exec 3<>/dev/tcp/127.0.0.1/\(port)"]).status) == 0 { return }
            if !process.isRunning { break }
            usleep(50_000)
        }
        let log = (try? String(contentsOfFile: dir + "/logs/error.log", encoding: .utf8)) ?? ""
        stop()
        throw ToolMissing(name: "nginx did not start: \(log)")
    }

    deinit { stop() }

    /// Stops nginx (graceful quit) and waits until it is gone.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGQUIT)
        for _ in 0..<100 where process.isRunning { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }

    /// Empties the cache under a running nginx (there is no purge in open-source nginx).
    func purge() throws { try sh("rm -rf '\(dir)/cache'/*") }

    static func freePort() throws -> Int {
        let r = try run("python3", ["-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"])
        guard let p = Int(r.out.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw ToolMissing(name: "no free port") }
        return p
    }
}

/// `verify URL --served` and `wait --served` against real servers: Debian's nginx as the origin (gzip on) and an
/// nginx `proxy_cache` in front that keeps the old bundle after a deploy, with a service worker that precaches it.
@Suite(.serialized) struct ServedSiteTests {
    /// A built `dist/` of version `v`: a page referencing a hashed bundle, a stylesheet and a service worker that
    /// precaches the bundle.
    static func writeSite(_ dir: String, _ v: String) throws {
        try writeFile(dir + "/dist/index.html", """
        <!doctype html><html><head><link rel="stylesheet" href="/assets/style.css">
        <link rel="modulepreload" href="assets/app.\(v).js"><link rel="canonical" href="https://example.com/"></head>
        <body><script type="module" src="/assets/app.\(v).js"></script>
        <script>navigator.serviceWorker.register('/sw.js')</script></body></html>

        """)
        try writeFile(dir + "/dist/assets/app.\(v).js", "export const version = '\(v)';\n")
        try writeFile(dir + "/dist/assets/style.css", "body { color: \(v == "v1" ? "red" : "blue"); }\n")
        try writeFile(dir + "/dist/sw.js", """
        importScripts('workbox-sw.js');
        workbox.precaching.precacheAndRoute([{"url":"/assets/app.\(v).js","revision":null},{"url":"/index.html","revision":"\(v)"}]);

        """)
        try writeFile(dir + "/dist/workbox-sw.js", "self.workbox = {};\n")
        try writeFile(dir + "/dist/robots.txt", "User-agent: *\n")
    }

    @Test func aCacheKeepingTheOldBundleIsNamedUntilPurged() throws {
        try withTempDir { dir in
            let history = dir + "/history"
            for v in ["v1", "v2"] {
                try Self.writeSite(dir + "/" + v, v)
                let r = try imprint("fingerprint", dir + "/" + v, "-q", "--ignore-file", "/dev/null", "-o", dir + "/\(v).json",
                                    "--digest-file", dir + "/\(v).digest", "--record", "--history", history, "--tag", v)
                #expect(r.status == 0, "\(r.err)")
            }
            try sh("mkdir -p '\(dir)/www' && cp -a '\(dir)/v1/dist/.' '\(dir)/www/'")
            let origin = try Nginx(dir: dir + "/origin", root: dir + "/www")
            defer { origin.stop() }
            let cache = try Nginx(dir: dir + "/cache", upstream: origin.port)
            defer { cache.stop() }
            let viaCache = "http://127.0.0.1:\(cache.port)/", atOrigin = "http://127.0.0.1:\(origin.port)/"
            func verify(_ url: String, _ v: String, _ extra: [String] = []) throws -> RunResult {
                try imprint(["verify", url, "--served", "--manifest", dir + "/\(v).json", "--served-root", "dist",
                             "--history", history, "--format", "json"] + extra)
            }
            func findings(_ r: RunResult) throws -> [(path: String, detail: String, message: String)] {
                ((try jsonObject(r.stdout)["findings"] as? [[String: Any]]) ?? []).filter { ($0["severity"] as? String) == "error" }
                    .map { ($0["path"] as? String ?? "", $0["detail"] as? String ?? "", $0["message"] as? String ?? "") }
            }

            // v1 deployed: served as built, through the cache (which now holds v1) and at the origin.
            var r = try verify(viaCache, "v1", ["--expect", try String(contentsOfFile: dir + "/v1.digest", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)])
            #expect(r.status == 0, "\(r.out)\(r.err)")
            try expectValidJSON(r.stdout, schema: "verify-report.schema.json")
            #expect(try jsonObject(r.stdout)["trust"] as? String == "expected-digest")
            #expect(try verify(atOrigin, "v1").status == 0)

            // v2 deployed to the origin: the origin serves the build.
            try sh("rm -rf '\(dir)/www'/* && cp -a '\(dir)/v2/dist/.' '\(dir)/www/'")
            r = try verify(atOrigin, "v2")
            #expect(r.status == 0, "the origin serves v2: \(r.out)\(r.err)")

            // Through the cache: the old page, stylesheet and service worker; the new bundle (never cached) is fine.
            r = try verify(viaCache, "v2")
            #expect(r.status == 1)
            try expectValidJSON(r.stdout, schema: "verify-report.schema.json")
            let f = try findings(r)
            let byDetail = Dictionary(grouping: f, by: \.detail).mapValues { Set($0.map(\.path)) }
            #expect(byDetail["stale-cache"] == ["index.html", "assets/style.css", "sw.js"], "\(f)")
            #expect(byDetail["unknown-reference"] == ["index.html"], "the cached page loads app.v1.js: \(f)")
            #expect(byDetail["stale-precache"] == ["sw.js"], "the cached worker precaches app.v1.js: \(f)")
            #expect(byDetail["stale-origin"] == nil && byDetail["missing-asset"] == nil, "\(f)")
            let css = f.first { $0.path == "assets/style.css" }?.message ?? ""
            #expect(css.contains("x-cache-status: HIT") && css.contains("v1"), "names the cache answer and the build the bytes come from: \(css)")
            #expect(f.contains { $0.detail == "unknown-reference" && $0.message.contains("/assets/app.v1.js") })
            let text = try imprint("verify", viaCache, "--served", "--manifest", dir + "/v2.json", "--served-root", "dist", "--history", history)
            #expect(text.status == 1 && text.out.hasPrefix("MISMATCH"), "\(text.out)")

            // The gate stays closed while the cache holds v1, and opens once it is purged.
            var gate = try imprint("wait", viaCache, "--served", "--manifest", dir + "/v2.json", "--served-root", "dist", "--interval", "0.3", "--timeout", "1")
            #expect(gate.status == 1 && gate.out.contains("does not serve the build") && gate.out.contains("stale-cache"), "\(gate.out)\(gate.err)")
            try cache.purge()
            gate = try imprint("wait", viaCache, "--served", "--manifest", dir + "/v2.json", "--served-root", "dist", "--interval", "0.3", "--timeout", "10")
            #expect(gate.status == 0 && gate.out.hasPrefix("rollout complete: \(viaCache) serves the build"), "\(gate.out)\(gate.err)")
            #expect(try verify(viaCache, "v2").status == 0)

            // The origin itself stale (a file rolled back) and a file not deployed at all.
            try sh("cp '\(dir)/v1/dist/assets/style.css' '\(dir)/www/assets/style.css' && rm '\(dir)/www/robots.txt'")
            r = try verify(atOrigin, "v2")
            let g = try findings(r)
            #expect(r.status == 1 && Set(g.map { "\($0.detail) \($0.path)" }) == ["stale-origin assets/style.css", "missing-asset robots.txt"], "\(g)")
        }
    }

    @Test func badUsageIsOneClearLine() throws {
        try withTempDir { dir in
            try Self.writeSite(dir + "/v1", "v1")
            #expect(try imprint("fingerprint", dir + "/v1", "-q", "-o", dir + "/m.json").status == 0)
            let noManifest = try imprint("verify", "http://127.0.0.1:9/", "--served")
            #expect(noManifest.status == 2 && noManifest.err == "imprint: error: --served needs --manifest (the build's manifest file, or history:REF)\n", "\(noManifest.err)")
            let notURL = try imprint("verify", dir, "--served", "--manifest", dir + "/m.json")
            #expect(notURL.status == 2 && notURL.err.contains("--served needs an http:// or https:// URL"), "\(notURL.err)")
            let emptyRoot = try imprint("verify", "http://127.0.0.1:9/", "--served", "--manifest", dir + "/m.json", "--served-root", "nothing")
            #expect(emptyRoot.status == 2 && emptyRoot.err.contains("no file under 'nothing'"), "\(emptyRoot.err)")
            // Nothing listening: every asset is a fetch failure, the verdict MISMATCH, not a trap.
            let down = try imprint("verify", "http://127.0.0.1:9/", "--served", "--manifest", dir + "/m.json", "--served-root", "dist")
            #expect(down.status == 1 && down.out.contains("fetch-failed"), "\(down.out)\(down.err)")
        }
    }
}
