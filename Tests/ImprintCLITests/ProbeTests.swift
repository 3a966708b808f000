import Foundation
import ImprintCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What a running CPython actually imported, through `imprint probe python`, judged against the manifest — with
/// CPython as the oracle: the application answers which version of its module ran.
@Suite struct ProbeTests {
    static let server = """
    import imprint_probe
    import json, os
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import pkg.mod

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(imprint_probe.evidence() if self.path == "/imprint" else {"version": pkg.mod.VERSION}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass

    s = ThreadingHTTPServer(("127.0.0.1", 0), H)
    print("listening on 127.0.0.1:%d" % s.server_address[1], flush=True)
    s.serve_forever()

    """

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        /// Bash run in the app before the server starts (mod.py holds VERSION = "old" with mtime 1700000000).
        var before: String
        /// Bash run after the server imported everything.
        var after: String = "true"
        /// What CPython ran, and what the probe evidence must show.
        var ran: String
        var details: [String]
        var testDescription: String { name }
    }

    static let sameSecondNew = "printf 'VERSION = \"new\"\\n' > pkg/mod.py && python3 -c 'import os; os.utime(\"pkg/mod.py\", (1700000000, 1700000000))'"
    static func compile(_ mode: String) -> String {
        "python3 -c \"import py_compile as p; p.compile('pkg/mod.py', invalidation_mode=p.PycInvalidationMode.\(mode), doraise=True)\""
    }

    static let cases: [Case] = [
        Case(name: "clean process", before: sameSecondNew, ran: "new", details: []),
        Case(name: "stale timestamp pyc (same size, same second)", before: compile("TIMESTAMP") + " && " + sameSecondNew,
             ran: "old", details: ["stale-bytecode-module"]),
        Case(name: "unchecked-hash pyc", before: compile("UNCHECKED_HASH") + " && " + sameSecondNew,
             ran: "old", details: ["stale-bytecode-module"]),
        Case(name: "sourceless pyc", before: "python3 -c \"import py_compile; py_compile.compile('pkg/mod.py', cfile='pkg/mod.pyc', doraise=True)\" && rm pkg/mod.py",
             ran: "old", details: ["sourceless-module"]),
        Case(name: "source replaced after import", before: "true", after: sameSecondNew, ran: "old", details: ["stale-module"]),
    ]

    @Test(arguments: cases)
    func probeNamesWhatRan(_ c: Case) throws {
        try requireTool("python3")
        try withTempDir { dir in
            let app = dir + "/app"
            try writeFile(app + "/pkg/__init__.py", "")
            try writeFile(app + "/pkg/mod.py", "VERSION = \"old\"\n")
            try writeFile(app + "/server.py", Self.server)
            #expect(try imprint("probe", "python", "-o", app + "/imprint_probe.py").status == 0)
            try sh("python3 -c 'import os; os.utime(\"pkg/mod.py\", (1700000000, 1700000000))' && \(c.before)", cwd: app)
            // The manifest is the build's: the new source, no bytecode.
            let ctx = dir + "/ctx"
            try sh("cp -a '\(app)' '\(ctx)' && rm -rf '\(ctx)'/pkg/__pycache__ '\(ctx)'/pkg/*.pyc", cwd: dir)
            try sh(Self.sameSecondNew, cwd: ctx)
            #expect(try imprint("fingerprint", ctx, "-q", "-o", dir + "/m.json", "--digest-file", dir + "/d.txt").status == 0)
            try sh("cp '\(dir)/m.json' '\(app)/manifest.json'")
            let server = try TestServer(script: app + "/server.py", env: ["IMPRINT_MANIFEST": app + "/manifest.json", "PYTHONDONTWRITEBYTECODE": "1"])
            defer { server.stop() }
            try sh(c.after, cwd: app)
            let version = try run("python3", ["-c", "import json,urllib.request; print(json.load(urllib.request.urlopen('http://127.0.0.1:\(server.port)/version'))['version'])"])
            #expect(version.out.trimmingCharacters(in: .whitespacesAndNewlines) == c.ran, "CPython ran \(version.out)")
            let digest = try String(contentsOfFile: dir + "/d.txt", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let r = try imprint("verify", "http://127.0.0.1:\(server.port)/imprint", "--manifest", dir + "/m.json", "--expect", digest, "--format", "json")
            let report = try jsonObject(r.stdout)
            let found = (report["findings"] as? [[String: Any]] ?? []).filter { ($0["severity"] as? String) == "error" }.compactMap { $0["detail"] as? String }
            #expect(found == c.details, "\(r.out)")
            #expect(r.status == (c.details.isEmpty ? 0 : 1))
            try expectValidJSON(r.stdout, schema: "verify-report.schema.json")
            let evidence = try run("python3", ["-c", "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:\(server.port)/imprint').read().decode())"])
            try expectValidJSON(evidence.stdout, schema: "probe-evidence.schema.json")
        }
    }

    /// Two applications on one host share the evidence directory (its default is /tmp/imprint-evidence): each
    /// answers for its own processes only. Another application running a sourceless pyc is not this one's finding,
    /// and a second process of this application on old code is.
    @Test func anotherApplicationOnTheHostIsNotThisOnesEvidence() throws {
        try requireTool("python3")
        try withTempDir { dir in
            let shared = dir + "/evidence"
            var servers: [TestServer] = []
            defer { for s in servers { s.stop() } }
            func app(_ name: String, stale: Bool) throws -> (root: String, manifest: String, digest: String) {
                let root = dir + "/" + name
                try writeFile(root + "/pkg/__init__.py", "")
                try writeFile(root + "/pkg/mod.py", "VERSION = \"old\"\n")
                try writeFile(root + "/server.py", Self.server)
                #expect(try imprint("probe", "python", "-o", root + "/imprint_probe.py").status == 0)
                let ctx = dir + "/ctx-" + name
                try sh("cp -a '\(root)' '\(ctx)' && printf 'VERSION = \"new\"\\n' > '\(ctx)/pkg/mod.py'")
                #expect(try imprint("fingerprint", ctx, "-q", "-o", dir + "/\(name).json", "--digest-file", dir + "/\(name).txt").status == 0)
                if stale {
                    try sh("python3 -c \"import py_compile; py_compile.compile('pkg/mod.py', cfile='pkg/mod.pyc', doraise=True)\" && rm pkg/mod.py", cwd: root)
                } else {
                    try sh("cp '\(ctx)/pkg/mod.py' pkg/mod.py", cwd: root)
                }
                let digest = try String(contentsOfFile: dir + "/\(name).txt", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                return (root, dir + "/\(name).json", digest)
            }
            let good = try app("good", stale: false), other = try app("other", stale: true)
            for a in [good, other] {
                servers.append(try TestServer(script: a.root + "/server.py",
                                              env: ["IMPRINT_MANIFEST": a.manifest, "IMPRINT_EVIDENCE_DIR": shared, "PYTHONDONTWRITEBYTECODE": "1"]))
            }
            usleep(600_000)  // each process writes its evidence file 0.2 s after its last import
            #expect(try FileManager.default.contentsOfDirectory(atPath: shared).filter { $0.hasSuffix(".json") }.count == 2)
            let r = try imprint("verify", "http://127.0.0.1:\(servers[0].port)/imprint", "--manifest", good.manifest, "--expect", good.digest)
            #expect(r.status == 0, "the other application's stale module was judged as this one's: \(r.out)\(r.err)")
            let o = try imprint("verify", "http://127.0.0.1:\(servers[1].port)/imprint", "--manifest", other.manifest, "--expect", other.digest)
            #expect(o.status == 1 && o.out.contains("sourceless-module"), "\(o.out)\(o.err)")
            // A second process of the good application, started on the stale code, is the good one's finding.
            try sh("cp -a '\(good.root)' '\(dir)/copy' && rm -rf '\(good.root)/pkg' && cp -a '\(other.root)/pkg' '\(good.root)/pkg'")
            servers.append(try TestServer(script: good.root + "/server.py",
                                          env: ["IMPRINT_MANIFEST": good.manifest, "IMPRINT_EVIDENCE_DIR": shared, "PYTHONDONTWRITEBYTECODE": "1"]))
            usleep(600_000)
            let again = try imprint("verify", "http://127.0.0.1:\(servers[0].port)/imprint", "--manifest", good.manifest, "--expect", good.digest)
            #expect(again.status == 1 && again.out.contains("sourceless-module"), "\(again.out)\(again.err)")
        }
    }

    @Test func waitNeverDeclaresARoundRobinOfOldAndNewComplete() throws {
        try requireTool("python3")
        try withTempDir { dir in
            let serveDigest = TestEnv.packageRoot.appendingPathComponent("ci/examples/serve-digest.py").path
            for v in ["v1", "v2"] {
                try writeFile("\(dir)/\(v)/app.py", "print('\(v)')\n")
                #expect(try imprint("fingerprint", "\(dir)/\(v)", "-q", "-o", "\(dir)/\(v).json", "--digest-file", "\(dir)/\(v).digest").status == 0)
            }
            let d2 = try String(contentsOfFile: dir + "/v2.digest", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let old = try TestServer(script: serveDigest, env: ["IMPRINT_MANIFEST": dir + "/v1.json"])
            defer { old.stop() }
            let new1 = try TestServer(script: serveDigest, env: ["IMPRINT_MANIFEST": dir + "/v2.json"])
            defer { new1.stop() }
            let balancer = TestEnv.packageRoot.appendingPathComponent("Tests/ImprintCLITests/Support/round_robin.py").path
            let mixed = try TestServer(script: balancer, args: [String(old.port), String(new1.port)])
            defer { mixed.stop() }
            let url = "http://127.0.0.1:\(mixed.port)/healthz"
            for extra in [["--consecutive", "3"], ["--instances", "2"]] {
                let r = try imprint(["wait", url, "--expect", d2, "--timeout", "3", "--interval", "0.1"] + extra)
                #expect(r.status == 1, "round robin over v1 and v2 declared complete with \(extra): \(r.out)")
                #expect(!r.out.contains("rollout complete"))
                // The per-instance table names both instances, each in full, one on v1 and one on v2.
                let rows = r.out.split(separator: "\n").drop { !$0.contains("instance ") }.dropFirst()
                let ids = Set(rows.compactMap { $0.split(separator: " ").first })
                #expect(ids.count == 2 && rows.contains { $0.contains("OTHER") } && rows.contains { $0.contains("expected") }, "the per-instance table: \(r.out)")
            }
            // Every instance on v2: done.
            let new2 = try TestServer(script: serveDigest, env: ["IMPRINT_MANIFEST": dir + "/v2.json"])
            defer { new2.stop() }
            let allNew = try TestServer(script: balancer, args: [String(new1.port), String(new2.port)])
            defer { allNew.stop() }
            let r = try imprint("wait", "http://127.0.0.1:\(allNew.port)/healthz", "--expect", d2, "--timeout", "10", "--interval", "0.1",
                                "--consecutive", "3", "--instances", "2")
            #expect(r.status == 0, "\(r.out)")
            #expect(r.out.contains("rollout complete"))
            // Several URLs, one per instance: all must serve it.
            let both = try imprint("wait", "http://127.0.0.1:\(old.port)/healthz", "http://127.0.0.1:\(new1.port)/healthz", "--expect", d2, "--timeout", "1", "--interval", "0.1")
            #expect(both.status == 1)
        }
    }
}
