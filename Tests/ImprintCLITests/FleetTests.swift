import Foundation
import ImprintCore
import Testing

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
