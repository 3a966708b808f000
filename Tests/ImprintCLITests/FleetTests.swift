import Foundation
import ImprintCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Whole deployments: a compose project (Debian's docker-compose 1.29 through podman's Docker API), every replica
/// judged as `verify docker:` judges one container, against the stamp of the image its service names now.
@Suite(.serialized) struct FleetTests {
    @Test func composeProjectNamesEveryReplicasState() throws {
        try requireTool("docker-compose")
        let engine = try ContainerEngine()
        defer { engine.stop() }
        try engine.buildPythonBase()
        try withTempDir { dir in
            let v1 = dir + "/v1/ctx", v2 = dir + "/v2/ctx", project = dir + "/project"
            for d in [v1, v2, project] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
            try DeploymentTruthTests.writeApp(v1, version: "v1")
            try DeploymentTruthTests.writeApp(v2, version: "v2")
            try writeFile(project + "/docker-compose.yml", """
            version: "3.7"
            services:
              worker:
                image: localhost/fleet-app:1
                network_mode: none

            """)
            let compose = "docker-compose -p fleet -f \(project)/docker-compose.yml"
            _ = try DeploymentTruthTests.build(engine, v1, tag: "localhost/fleet-app:1")
            try engine.sh("\(compose) up -d --scale worker=3 2>/dev/null")
            var r = try run(TestEnv.imprintPath, ["verify", "compose:fleet", "--format", "json"], env: engine.env)
            #expect(r.status == 0, "three healthy replicas: \(r.out)\(r.err)")
            try expectValidJSON(r.stdout, schema: "fleet-report.schema.json")
            for c in (try jsonObject(r.stdout)["containers"] as? [[String: Any]]) ?? [] {
                try expectValidJSON(try JSONSerialization.data(withJSONObject: c["report"] ?? [:]), schema: "verify-report.schema.json")
            }

            // The tag moves to v2. Replica 3 is recreated from it (healthy), replica 2 only restarted (still v1),
            // replica 1 hot-fixed in place (v2's files under a process started on v1).
            _ = try DeploymentTruthTests.build(engine, v2, tag: "localhost/fleet-app:1")
            try engine.sh("""
            docker rm -f fleet_worker_3 >/dev/null
            \(compose) up -d --no-recreate --scale worker=3 2>/dev/null
            docker restart -t 1 fleet_worker_2 >/dev/null
            sleep 2
            docker cp \(v2)/lib.py fleet_worker_1:/app/lib.py
            """)
            r = try run(TestEnv.imprintPath, ["verify", "compose:fleet", "--format", "json"], env: engine.env)
            #expect(r.status == 1, "\(r.out)\(r.err)")
            let rows = (try jsonObject(r.stdout)["containers"] as? [[String: Any]]) ?? []
            func row(_ n: Int) -> [String: Any] { rows.first { ($0["number"] as? Int) == n } ?? [:] }
            func details(_ n: Int) -> [String] {
                (((row(n)["report"] as? [String: Any])?["findings"] as? [[String: Any]]) ?? []).compactMap { $0["detail"] as? String ?? $0["class"] as? String }
            }
            #expect(rows.count == 3)
            #expect(row(1)["verdict"] as? String == "MISMATCH" && details(1).contains("stale-process"), "hot-fixed: \(details(1))")
            #expect(row(2)["verdict"] as? String == "MISMATCH" && details(2).contains("stale-image"), "restarted after the tag moved: \(details(2))")
            #expect(row(3)["verdict"] as? String == "VERIFIED", "recreated: \(details(3))")
            let text = try run(TestEnv.imprintPath, ["verify", "compose:fleet"], env: engine.env)
            #expect(text.out.hasPrefix("MISMATCH: compose:fleet: 3 containers, 1 verified, 2 not"), "\(text.out)")
            var gate = try run(TestEnv.imprintPath, ["wait", "compose:fleet", "--interval", "0.5", "--timeout", "2"], env: engine.env)
            #expect(gate.status == 1 && gate.out.hasPrefix("timed out"), "\(gate.out)\(gate.err)")

            // A real redeploy: every replica recreated from v2; the gate completes.
            try engine.sh("\(compose) up -d --force-recreate --scale worker=3 2>/dev/null")
            gate = try run(TestEnv.imprintPath, ["wait", "compose:fleet", "--interval", "1", "--timeout", "60"], env: engine.env)
            #expect(gate.status == 0 && gate.out.hasPrefix("rollout complete"), "\(gate.out)\(gate.err)")
            try engine.sh("\(compose) down -t 1 2>/dev/null")
        }
    }
}

extension FleetTests {
    /// A Kubernetes node without kubelet: Debian's containerd running two "pods" (ctr run with the annotations the
    /// CRI plugin sets for kubelet); imprint reads the pod and container names from containerd's own bundle files and
    /// each container through /proc/PID/root. A hot-fix in one container is named with its pod.
    @Test func kubernetesNodeFromContainerdsOwnState() throws {
        for tool in ["containerd", "ctr", "buildah", "busybox"] { try requireTool(tool) }
        try withTempDir { dir in
            try FileManager.default.createDirectory(atPath: dir + "/bb", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: dir + "/app", withIntermediateDirectories: true)
            try writeFile(dir + "/bb/Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\",\"--install\",\"-s\",\"/bin\"]\n")
            try writeFile(dir + "/app/app.py", "print('v1')\n")
            try writeFile(dir + "/app/lib.py", "VERSION = 1\n")
            try writeFile(dir + "/app/Dockerfile", "FROM localhost/bb:1\nCOPY . /app\nCMD [\"/bin/sleep\", \"3600\"]\n")
            try writeFile(dir + "/app/.dockerignore", "Dockerfile\n.dockerignore\n")
            try writeFile(dir + "/config.toml", """
            version = 2
            root = "\(dir)/root"
            state = "\(dir)/state"
            disabled_plugins = ["io.containerd.grpc.v1.cri"]
            [grpc]
              address = "\(dir)/containerd.sock"
            [ttrpc]
              address = "\(dir)/containerd.sock.ttrpc"

            """)
            let B = "buildah --root \(dir)/broot --runroot \(dir)/brun --storage-driver vfs"
            let ctr = "ctr --address \(dir)/containerd.sock -n k8s.io"
            try sh("""
            cp "$(command -v busybox)" \(dir)/bb/busybox
            \(B) bud -q --isolation chroot --timestamp 0 -t localhost/bb:1 \(dir)/bb >/dev/null
            \(B) bud -q --isolation chroot --timestamp 0 -t localhost/app:1 \(dir)/app >/dev/null
            \(B) push -q localhost/app:1 oci-archive:\(dir)/app.tar:localhost/app:1
            """)
            #expect(try imprint("fingerprint", dir + "/app", "-q", "-o", dir + "/m.json").status == 0)
            let stamp = try imprint("stamp", dir + "/app.tar", "--manifest", dir + "/m.json", "--check", "-o", dir + "/stamped.tar")
            #expect(stamp.status == 0, "\(stamp.err)")
            let daemon = try BackgroundDaemon(["containerd", "--config", dir + "/config.toml"], ready: dir + "/containerd.sock")
            defer {
                _ = try? run("/bin/sh", ["-c", "for c in web1 web2; do \(ctr) task kill -s SIGKILL $c; done; sleep 0.5; for c in web1 web2; do \(ctr) task rm -f $c; \(ctr) containers rm $c; done"])
                daemon.stop()
                _ = try? run("/bin/sh", ["-c", "grep -o '\(dir)/[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l"])
            }
            try sh("""
            \(ctr) images import \(dir)/stamped.tar >/dev/null
            for i in 1 2; do
              \(ctr) run -d --snapshotter overlayfs \\
                --annotation io.kubernetes.cri.container-type=container \\
                --annotation io.kubernetes.cri.sandbox-name=web-$i \\
                --annotation io.kubernetes.cri.sandbox-namespace=shop \\
                --annotation io.kubernetes.cri.container-name=web \\
                localhost/app:1 web$i /bin/sleep 3600
            done
            """)
            let env = ["IMPRINT_RUNTIME_STATE": dir + "/state/io.containerd.runtime.v2.task/k8s.io"]
            var r = try run(TestEnv.imprintPath, ["verify", "node:"], env: env)
            #expect(r.status == 0 && r.out.contains("shop/web-1/web") && r.out.contains("shop/web-2/web"), "\(r.out)\(r.err)")
            // A hot-fix inside one pod's container, written through its root as `kubectl cp` would.
            let pid = try String(contentsOfFile: dir + "/state/io.containerd.runtime.v2.task/k8s.io/web2/init.pid", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            try writeFile("/proc/\(pid)/root/app/lib.py", "VERSION = 2\n")
            r = try run(TestEnv.imprintPath, ["verify", "node:", "--format", "json"], env: env)
            #expect(r.status == 1, "\(r.out)\(r.err)")
            try expectValidJSON(r.stdout, schema: "fleet-report.schema.json")
            let rows = (try jsonObject(r.stdout)["containers"] as? [[String: Any]]) ?? []
            #expect(rows.map { $0["pod"] as? String ?? "" } == ["shop/web-1", "shop/web-2"])
            #expect(rows.map { $0["verdict"] as? String ?? "" } == ["VERIFIED", "MISMATCH"], "\(rows)")
            let one = try run(TestEnv.imprintPath, ["verify", "pod:shop/web-1"], env: env)
            #expect(one.status == 0, "\(one.out)\(one.err)")
            let missing = try run(TestEnv.imprintPath, ["verify", "pod:shop/nope"], env: env)
            #expect(missing.status == 2 && missing.err.contains("no pod shop/nope"), "\(missing.err)")
        }
    }
}

/// A daemon started for a test, ready once `ready` (a socket) exists; stopped with SIGTERM, then SIGKILL.
final class BackgroundDaemon {
    let process = Process()

    init(_ argv: [String], ready: String) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = argv
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: ready) { usleep(100_000) }
        guard FileManager.default.fileExists(atPath: ready) else { stop(); throw ToolMissing(name: "\(argv[0]) did not start") }
    }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        for _ in 0..<50 where process.isRunning { usleep(100_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}
