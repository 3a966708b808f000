import Foundation
import ImprintCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What runs, not only what is on disk: real containers (podman + runc through the real docker CLI) running real
/// CPython, each way a deploy can leave old code running while the files look new.
@Suite(.serialized) struct RunningContainerTests {
    /// An application: ci/examples/serve-digest.py as its server, the probe, a package; `version` changes pkg/mod.py.
    func writeApp(_ dir: String, version: String) throws {
        try FileManager.default.createDirectory(atPath: dir + "/pkg", withIntermediateDirectories: true)
        try sh("cp '\(TestEnv.packageRoot.path)/ci/examples/serve-digest.py' '\(dir)/server.py'")
        #expect(try imprint("probe", "python", "-o", dir + "/imprint_probe.py").status == 0)
        try writeFile(dir + "/pkg/__init__.py", "")
        try writeFile(dir + "/pkg/mod.py", "VERSION = \"\(version)\"\n")
        try writeFile(dir + "/server.py", (try String(contentsOfFile: dir + "/server.py", encoding: .utf8))
            .replacingOccurrences(of: "import json\n", with: "import json\nimport pkg.mod\n"))
        try writeFile(dir + "/.dockerignore", "**/__pycache__\n**/*.pyc\n")
        try writeFile(dir + "/Dockerfile", """
        FROM localhost/python-base
        COPY . /app
        WORKDIR /app
        ENV HOST=127.0.0.1 IMPRINT_MANIFEST=/.imprint/manifest.json
        CMD ["python3", "server.py"]

        """)
    }

    /// Builds, stamps and loads `tag` from `dir`; returns the context digest.
    func buildStamped(_ engine: ContainerEngine, _ dir: String, tag: String, out: String) throws -> String {
        try engine.sh("""
        imprint fingerprint . -q -o \(out)/m.json --digest-file \(out)/digest.txt
        docker build -q -t \(tag) . >/dev/null
        docker save \(tag) -o \(out)/app.tar
        imprint stamp \(out)/app.tar --manifest \(out)/m.json -o \(out)/stamped.tar >/dev/null
        docker load -q -i \(out)/stamped.tar >/dev/null
        """, cwd: dir)
        return try String(contentsOfFile: out + "/digest.txt", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func freePort() throws -> Int { try LocalRegistry.freePort() }

    func verify(_ engine: ContainerEngine, _ args: [String]) throws -> (RunResult, [[String: Any]]) {
        let r = try run(TestEnv.imprintPath, ["verify"] + args + ["--format", "json"], env: engine.env)
        let findings = (try? JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])?["findings"] as? [[String: Any]] ?? []
        return (r, findings)
    }

    func details(_ findings: [[String: Any]]) -> [String] { findings.compactMap { $0["detail"] as? String } }

    @Test(.tags(.engine)) func deploysThatLeaveOldCodeRunningAreNamed() throws {
        let engine = try ContainerEngine()
        defer { engine.stop() }
        try engine.buildPythonBase()
        try withTempDir { dir in
            let v1 = dir + "/v1", v2 = dir + "/v2", out1 = dir + "/out1", out2 = dir + "/out2"
            try writeApp(v1, version: "1")
            try writeApp(v2, version: "2")
            try FileManager.default.createDirectory(atPath: out1, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: out2, withIntermediateDirectories: true)
            let d1 = try buildStamped(engine, v1, tag: "localhost/app:1", out: out1)

            // Healthy: the container runs the stamped image; Python writes its bytecode at run time.
            let port1 = try freePort()
            try engine.sh("docker run -d --name web-1 --network host -e PORT=\(port1) localhost/app:1 >/dev/null")
            try engine.waitFor("web-1", "ls /app/pkg/__pycache__/mod.*.pyc")
            var (r, f) = try verify(engine, ["docker:web-1", "--expect", d1])
            #expect(r.status == 0, "healthy container: \(r.out) \(r.err)")
            #expect(f.filter { ($0["severity"] as? String) != "info" }.isEmpty, "healthy container has findings: \(f)")
            (r, f) = try verify(engine, ["http://127.0.0.1:\(port1)/imprint", "--expect", d1])
            #expect(r.status == 0, "healthy process evidence: \(r.out) \(r.err)")

            // 1. In-place deploy without a restart: v2's files (and manifest) copied over, the process keeps v1.
            let d2 = try buildStamped(engine, v2, tag: "localhost/app:2", out: out2)
            sleep(2)
            try engine.sh("""
            docker cp \(v2)/pkg/mod.py web-1:/app/pkg/mod.py
            tar -C \(out2) -xOf \(out2)/stamped.tar >/dev/null
            docker cp \(out2)/m.json web-1:/.imprint/manifest.json
            """)
            (r, f) = try verify(engine, ["docker:web-1", "--expect", d2])
            #expect(r.status == 1, "in-place deploy: \(r.out)")
            #expect(details(f).filter { $0 == "stale-process" }.count == 1, "\(f)")
            #expect(!details(f).contains("modified"))
            let waited = try imprint("wait", "http://127.0.0.1:\(port1)/healthz", "--expect", d2, "--timeout", "2", "--interval", "0.3")
            #expect(waited.status == 1 && !waited.out.contains("rollout complete"), "\(waited.out)")
            (r, f) = try verify(engine, ["http://127.0.0.1:\(port1)/imprint", "--expect", d2, "--manifest", out2 + "/m.json"])
            #expect(r.status == 1)
            #expect(details(f).contains("manifest-digest") && details(f).contains("stale-module"), "\(f)")
            // CPython is the oracle: the running process still has version 1.
            let ran = try run("python3", ["-c", "import json,urllib.request; print(json.load(urllib.request.urlopen('http://127.0.0.1:\(port1)/imprint'))['modules'])"])
            #expect(ran.out.contains("pkg/mod.py"))

            // 2. A deleted executable.
            let port2 = try freePort()
            try engine.sh("docker run -d --name web-2 --network host -e PORT=\(port2) localhost/app:2 sh -c 'cp /usr/bin/python3 /tmp/py && exec /tmp/py server.py' >/dev/null")
            try engine.waitFor("web-2", "ls /app/pkg/__pycache__/mod.*.pyc")
            try engine.sh("docker exec web-2 rm /tmp/py")
            (r, f) = try verify(engine, ["docker:web-2", "--expect", d2])
            #expect(r.status == 1)
            #expect(details(f).filter { $0 == "deleted-executable" }.count == 1, "\(f)")

            // 3. Restarted, not recreated: the tag now names v2, the container still runs v1's image.
            try engine.sh("""
            docker run -d --name web-3 --network none localhost/app:1 sleep 600 >/dev/null
            docker tag localhost/app:2 localhost/app:1
            docker restart web-3 >/dev/null
            """)
            (r, f) = try verify(engine, ["docker:web-3", "--expect", d2])
            #expect(r.status == 1)
            #expect(details(f).filter { $0 == "stale-image" }.count == 1, "\(f)")
            #expect(f.contains { ($0["message"] as? String)?.contains("restarted, not recreated") == true })

            // 4. A volume over /app: filled with v1 on first use, it shadows the v2 image afterwards.
            try engine.sh("""
            docker volume create appvol >/dev/null
            docker run -d --name web-4 --network none -v appvol:/app localhost/app:2 sleep 600 >/dev/null
            docker exec web-4 sh -c 'echo VERSION = \\"1\\" > /app/pkg/mod.py'
            """)
            (r, f) = try verify(engine, ["docker:web-4", "--expect", d2])
            #expect(r.status == 1)
            #expect(details(f).filter { $0 == "mount-overlay" }.count == 1, "\(f)")
            #expect(f.contains { ($0["class"] as? String) == "modified" && ($0["path"] as? String) == "pkg/mod.py" }, "the volume's file is named: \(f)")
            // docker export leaves the volume out: it cannot see the file that differs.
            let exported = try run("/bin/bash", ["-c", "docker export web-4 | '\(TestEnv.imprintPath)' verify - --expect \(d2)"], env: engine.env)
            #expect(exported.status == 0, "export shows the image's files, not the volume's: \(exported.out)")
            // A volume holding the same files: VERIFIED, no warning.
            try engine.sh("""
            docker volume create goodvol >/dev/null
            docker run -d --name web-5 --network none -v goodvol:/app localhost/app:2 sleep 600 >/dev/null
            """)
            (r, f) = try verify(engine, ["docker:web-5", "--expect", d2])
            #expect(r.status == 0, "\(r.out)")
            #expect(f.filter { ($0["severity"] as? String) != "info" }.isEmpty, "\(f)")
        }
    }
}
