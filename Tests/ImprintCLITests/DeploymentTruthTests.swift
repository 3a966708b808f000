import Foundation
import ImprintCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// No false VERIFIED from a running deployment, and no false alarm: real containers (podman + runc behind the real
/// docker CLI) running real CPython and Debian's gunicorn; in every case CPython itself reports the code it ran
/// (the application answers its module's VERSION, and the probe records what each process imported), and
/// imprint's verdict must agree.
@Suite(.serialized) struct DeploymentTruthTests {
    /// The application: a WSGI app (for gunicorn) and a plain server (for python3 server.py / -m server), both
    /// importing the probe first and `lib`, whose VERSION says which code runs.
    static func writeApp(_ dir: String, version: String, dockerfileTail: String = "CMD [\"python3\", \"server.py\"]\n") throws {
        #expect(try imprint("probe", "python", "-o", dir + "/imprint_probe.py").status == 0)
        try writeFile(dir + "/lib.py", "VERSION = \"\(version)\"\n")
        try writeFile(dir + "/unused.py", "X = 1\n")
        try writeFile(dir + "/wsgi.py", """
        import imprint_probe
        import json, os
        import lib

        def app(environ, start_response):
            doc = imprint_probe.evidence() if environ.get("PATH_INFO") == "/imprint" else {"version": lib.VERSION, "pid": os.getpid()}
            body = json.dumps(doc).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]

        """)
        try writeFile(dir + "/server.py", """
        import imprint_probe
        import json, os
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        import lib

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                doc = imprint_probe.evidence() if self.path == "/imprint" else {"version": lib.VERSION, "pid": os.getpid()}
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *a):
                pass

        ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), H).serve_forever()

        """)
        try writeFile(dir + "/.dockerignore", "**/__pycache__\nDockerfile\n.dockerignore\n")
        try writeFile(dir + "/Dockerfile", "FROM localhost/python-base\nCOPY . /app\nWORKDIR /app\nENV PYTHONDONTWRITEBYTECODE=1\n" + dockerfileTail)
    }

    /// Fingerprints, builds, checks and stamps `tag`; returns the context digest.
    static func build(_ engine: ContainerEngine, _ dir: String, tag: String, check: Bool = true) throws -> String {
        try engine.sh("""
        imprint fingerprint . -q -o ../\(tag.split(separator: ":").last!).json --digest-file ../digest.txt
        docker build -q -t \(tag) . >/dev/null
        docker save \(tag) -o ../image.tar
        imprint stamp ../image.tar --manifest ../\(tag.split(separator: ":").last!).json \(check ? "--check" : "") -o ../stamped.tar >/dev/null
        docker load -q -i ../stamped.tar >/dev/null
        """, cwd: dir)
        return try String(contentsOfFile: dir + "/../digest.txt", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func get(_ url: String) throws -> [String: Any] {
        let r = try run("python3", ["-c", "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())", url])
        return (try? JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]) ?? [:]
    }

    static func waitForHTTP(_ url: String, seconds: Double = 20) throws {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if try run("python3", ["-c", "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)", url]).status == 0 { return }
            usleep(200_000)
        }
        Issue.record("\(url) did not answer within \(seconds) s")
    }

    static func verify(_ engine: ContainerEngine, _ args: [String]) throws -> (status: Int32, details: [String], out: String) {
        let r = try run(TestEnv.imprintPath, ["verify"] + args + ["--format", "json"], env: engine.env)
        let findings = (try? JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])?["findings"] as? [[String: Any]] ?? []
        // Each error's class and detail (`modified`, `process`/`stale-process`, `runtime`/`stale-module`...).
        let errors = findings.filter { ($0["severity"] as? String) == "error" }
        return (r.status, errors.flatMap { [$0["class"] as? String, $0["detail"] as? String].compactMap { $0 } }, r.out + r.err)
    }

    @Test(.tags(.engine)) func everyProcessEveryWorkerEveryWayPythonStarts() throws {
        let engine = try ContainerEngine()
        defer { engine.stop() }
        try engine.buildPythonBase()
        try withTempDir { dir in
            let v1 = dir + "/v1/ctx", v2 = dir + "/v2/ctx"
            try FileManager.default.createDirectory(atPath: v1, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: v2, withIntermediateDirectories: true)
            try Self.writeApp(v1, version: "v1")
            try Self.writeApp(v2, version: "v2")
            let d1 = try Self.build(engine, v1, tag: "localhost/truth:1")
            let d2 = try Self.build(engine, v2, tag: "localhost/truth:2")

            // 1. A sourceless legacy pyc of an old helper, kept in the build context beside no source: CPython runs it.
            let legacy = dir + "/legacy/ctx"
            try FileManager.default.createDirectory(atPath: legacy, withIntermediateDirectories: true)
            try Self.writeApp(legacy, version: "v2")
            try writeFile(legacy + "/helper.py", "VERSION = \"old helper\"\n")
            try sh("python3.11 -c \"import py_compile; py_compile.compile('helper.py', cfile='helper.pyc', doraise=True)\" && rm helper.py", cwd: legacy)
            try writeFile(legacy + "/server.py", (try String(contentsOfFile: legacy + "/server.py", encoding: .utf8))
                .replacingOccurrences(of: "import lib\n", with: "import lib\nimport helper\n")
                .replacingOccurrences(of: "\"version\": lib.VERSION", with: "\"version\": helper.VERSION"))
            // (stamp --check would refuse it: orphan-sourceless-pyc; stamped anyway, as a team without the gate would.)
            let dl = try Self.build(engine, legacy, tag: "localhost/truth:legacy", check: false)
            let pl = try LocalRegistry.freePort()
            try engine.sh("docker run -d --name legacy --network host -e PORT=\(pl) localhost/truth:legacy >/dev/null")
            try Self.waitForHTTP("http://127.0.0.1:\(pl)/")
            #expect(try Self.get("http://127.0.0.1:\(pl)/")["version"] as? String == "old helper")
            var v = try Self.verify(engine, ["http://127.0.0.1:\(pl)/imprint", "--expect", dl])
            #expect(v.status == 1 && v.details.contains("sourceless-module"), "sourceless helper: \(v.out)")
            try engine.remove("legacy")

            // 2. The image is right (its stamp says v2), but a volume shadows the code with v1: the gate judges the
            //    loaded code, not the claim, and never completes; verify of the URL names the module.
            let p2 = try LocalRegistry.freePort()
            try engine.sh("docker run -d --name shadowed --network host -e PORT=\(p2) -v \(v1)/lib.py:/app/lib.py:ro localhost/truth:2 >/dev/null")
            try Self.waitForHTTP("http://127.0.0.1:\(p2)/")
            #expect(try Self.get("http://127.0.0.1:\(p2)/")["version"] as? String == "v1")
            let gate = try run(TestEnv.imprintPath, ["wait", "http://127.0.0.1:\(p2)/imprint", "--expect", d2, "--interval", "0.5", "--timeout", "3"])
            #expect(gate.status == 1 && gate.out.contains("OTHER") && gate.err.contains("stale-module"), "\(gate.out)\(gate.err)")
            v = try Self.verify(engine, ["http://127.0.0.1:\(p2)/imprint", "--expect", d2])
            #expect(v.status == 1 && v.details.contains("stale-module"), "\(v.out)")
            try engine.remove("shadowed")

            // 3. Four replicas behind a round-robin, one still on v1: no number of answers in a row completes the
            //    gate, and the replicas are told apart although each is pid 1 on host networking.
            var ports: [Int] = []
            for i in 0..<4 {
                let p = try LocalRegistry.freePort()
                ports.append(p)
                try engine.sh("docker run -d --name r\(i) --network host -e PORT=\(p) localhost/truth:\(i == 3 ? 1 : 2) >/dev/null")
            }
            for p in ports { try Self.waitForHTTP("http://127.0.0.1:\(p)/") }
            let balancer = try BackgroundServer(["python3", TestEnv.packageRoot.appendingPathComponent("Tests/ImprintCLITests/Support/round_robin.py").path] + ports.map(String.init))
            defer { balancer.stop() }
            let rr = try run(TestEnv.imprintPath, ["wait", "\(balancer.url)/imprint", "--expect", d2, "--consecutive", "4", "--interval", "0.2", "--timeout", "4"])
            #expect(rr.status == 1 && rr.out.contains("OTHER"), "round-robin with one old replica: \(rr.out)\(rr.err)")
            let instances = rr.out.split(separator: "\n").filter { $0.contains("expected  ") || $0.contains("OTHER  ") }
            #expect(instances.count == 4, "four instances in the table: \(rr.out)")
            try engine.remove("r0", "r1", "r2", "r3")

            // 4. gunicorn with two workers, one still v1: files updated to v2, one worker replaced (HUP). Whichever
            //    worker answers, verify of the URL judges both; verify docker: names the old worker.
            let pg = try LocalRegistry.freePort()
            try engine.sh("docker run -d --name g --network host localhost/truth:1 python3 -m gunicorn -w 2 -b 127.0.0.1:\(pg) wsgi:app >/dev/null")
            try Self.waitForHTTP("http://127.0.0.1:\(pg)/")
            try engine.waitFor("g", "test $(ls /tmp/imprint-evidence/*.json 2>/dev/null | wc -l) -ge 2")
            sleep(2)
            try engine.sh("""
            docker cp \(v2)/lib.py g:/app/lib.py
            w=$(docker exec g sh -c 'ls /proc | grep -E "^[0-9]+$" | while read p; do [ "$(cat /proc/$p/comm 2>/dev/null)" = python3 ] && [ $p != 1 ] && echo $p; done | head -1')
            docker exec g kill -HUP $w
            """)
            try engine.waitFor("g", "test $(ls /tmp/imprint-evidence/*.json | wc -l) -ge 3")
            sleep(1)
            for _ in 0..<6 {
                let u = try Self.verify(engine, ["http://127.0.0.1:\(pg)/imprint", "--manifest", dir + "/v2/2.json"])
                #expect(u.status == 1 && u.details.contains("stale-module"), "a worker on v1: \(u.out)")
            }
            let versions = Set((0..<12).compactMap { _ in (try? Self.get("http://127.0.0.1:\(pg)/"))?["version"] as? String })
            #expect(versions.isSubset(of: ["v1", "v2"]), "\(versions)")
            v = try Self.verify(engine, ["docker:g", "--manifest", dir + "/v2/2.json", "--at", "/app"])
            #expect(v.status == 1 && v.details.contains("stale-module") && v.details.contains("stale-process"), "gunicorn: \(v.out)")
            // A graceful reload (HUP to the master) replaces every worker; the master never imported the
            // application, so it is not stale although it started before the files changed.
            try engine.sh("docker exec g mkdir -p /.imprint && docker cp \(dir)/v2/2.json g:/.imprint/manifest.json && docker exec g kill -HUP 1")
            try engine.waitFor("g", "test $(ls /tmp/imprint-evidence/*.json | wc -l) -ge 5")
            sleep(1)
            v = try Self.verify(engine, ["docker:g", "--manifest", dir + "/v2/2.json", "--at", "/app"])
            #expect(v.status == 0, "gunicorn after a graceful reload: \(v.details) \(v.out.prefix(3000))")
            let reloaded = try Self.verify(engine, ["http://127.0.0.1:\(pg)/imprint", "--manifest", dir + "/v2/2.json"])
            #expect(reloaded.status == 0, "every worker on v2: \(reloaded.details) \(reloaded.out.prefix(2000))")
            try engine.remove("g")

            // 5. python3 -m server, PYTHONPATH=/app, working directory /: a hot-fix after start is named.
            let pm = try LocalRegistry.freePort()
            try engine.sh("docker run -d --name m --network host -w / -e PYTHONPATH=/app -e PORT=\(pm) localhost/truth:2 python3 -m server >/dev/null")
            try Self.waitForHTTP("http://127.0.0.1:\(pm)/")
            v = try Self.verify(engine, ["docker:m", "--expect", d2, "--at", "/app"])
            #expect(v.status == 0, "python -m, healthy: \(v.out)")
            sleep(2)
            try engine.sh("docker cp \(v1)/lib.py m:/app/lib.py && docker cp \(v2)/lib.py m:/app/lib.py")
            v = try Self.verify(engine, ["docker:m", "--expect", d2, "--at", "/app"])
            #expect(v.status == 1 && v.details.contains("stale-process"), "python -m after a hot-fix: \(v.out)")
            try engine.remove("m")

            // 6. A shell as PID 1 restarting python: after the files changed, python restarted on the new code; the
            //    shell runs none, so no stale-process; and a stale leftover pyc of a module not imported is a note.
            let ps = try LocalRegistry.freePort()
            try engine.sh("docker run -d --name sh1 --network host -e PORT=\(ps) -e PYTHONDONTWRITEBYTECODE= localhost/truth:2 sh -c 'while true; do python3 server.py; sleep 0.2; done' >/dev/null")
            try Self.waitForHTTP("http://127.0.0.1:\(ps)/")
            // A module the server never imports gets bytecode, then its source a new mtime (same content): the pyc
            // is stale, and CPython would ignore it.
            try engine.sh("docker exec sh1 sh -c 'cd /app && python3 -c \"import unused\"'")
            sleep(2)
            try engine.sh("""
            docker exec sh1 sh -c 'touch /app/unused.py /app/lib.py'
            w=$(docker exec sh1 sh -c 'ls /proc | grep -E "^[0-9]+$" | while read p; do [ "$(cat /proc/$p/comm 2>/dev/null)" = python3 ] && echo $p; done | head -1')
            docker exec sh1 kill $w
            """)
            try Self.waitForHTTP("http://127.0.0.1:\(ps)/")
            sleep(1)
            v = try Self.verify(engine, ["docker:sh1", "--expect", d2, "--at", "/app"])
            #expect(v.status == 0 && !v.details.contains("stale-process"), "shell wrapper after a child restart: \(v.out)")
            #expect(v.out.contains("stale-timestamp-pyc"), "the leftover is reported, as a note: \(v.out)")
            try engine.remove("sh1")
            _ = d1
        }
    }

    /// The application root reached through a symlink (`RUN ln -s /srv/app /app` before `COPY . /app`): a correct
    /// image passes stamp --check, verify of the image and of its export, and `python3 /app/server.py` is seen to
    /// serve the tree.
    @Test(.tags(.engine)) func symlinkedApplicationRoot() throws {
        let engine = try ContainerEngine()
        defer { engine.stop() }
        try engine.buildPythonBase()
        try withTempDir { dir in
            let ctx = dir + "/ctx"
            try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
            try Self.writeApp(ctx, version: "v1")
            try writeFile(ctx + "/Dockerfile", """
            FROM localhost/python-base
            RUN mkdir -p /srv/app && ln -s /srv/app /app
            COPY . /app
            WORKDIR /app
            ENV PYTHONDONTWRITEBYTECODE=1
            CMD ["python3", "/app/server.py"]

            """)
            let digest = try Self.build(engine, ctx, tag: "localhost/linked:1")
            var v = try Self.verify(engine, [dir + "/stamped.tar", "--expect", digest])
            #expect(v.status == 0, "image: \(v.out)")
            try engine.sh("cid=$(docker create localhost/linked:1) && docker export $cid -o \(dir)/export.tar && docker rm $cid >/dev/null")
            let r = try run(TestEnv.imprintPath, ["verify", "-", "--manifest", dir + "/1.json", "--format", "json"], stdinFile: dir + "/export.tar")
            #expect(r.status == 0, "export: \(r.out)\(r.err)")
            let port = try LocalRegistry.freePort()
            try engine.sh("docker run -d --name linked --network host -e PORT=\(port) localhost/linked:1 >/dev/null")
            try Self.waitForHTTP("http://127.0.0.1:\(port)/")
            sleep(2)
            try engine.sh("docker exec linked sh -c 'echo \"VERSION = \\\"v9\\\"\" > /srv/app/lib.py'")
            v = try Self.verify(engine, ["docker:linked", "--manifest", dir + "/1.json", "--at", "/app"])
            #expect(v.status == 1 && v.details.contains("stale-process") && v.details.contains("modified"), "hot-fix through the symlink: \(v.out)")
        }
    }
}

/// A helper process (a load balancer) that prints "listening on HOST:PORT" and runs until stopped.
final class BackgroundServer {
    let process = Process()
    var url = ""

    init(_ argv: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = argv
        let text = try startAndReadFirstLine(process)
        guard let r = text.range(of: "listening on ") else { stop(); throw ToolMissing(name: "background server: \(text)") }
        url = "http://" + text[r.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func stop() {
        // SIGKILL: the test runner may hand children an ignored SIGTERM.
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }
}
