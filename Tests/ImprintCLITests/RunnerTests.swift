import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// End-to-end tests of `imprint run` and `imprint pipeline` through the built binary.
@Suite("RunnerTests")
struct RunnerTests {
    // MARK: helpers

    func record(_ dir: String, _ step: String) throws -> [String: Any] {
        try jsonObject(Data(contentsOf: URL(fileURLWithPath: "\(dir)/.imprint/steps/\(step).json")))
    }

    func sha256(_ data: Data, in dir: String) throws -> String {
        let r = try run("sha256sum", [], stdin: data)
        return "sha256:" + r.out.prefix(64)
    }

    /// Starts imprint without waiting; output goes to files in `dir`.
    func launch(_ args: [String], cwd: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestEnv.imprintPath)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: cwd)
        FileManager.default.createFile(atPath: "\(cwd)/launch.out", contents: nil)
        FileManager.default.createFile(atPath: "\(cwd)/launch.err", contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: "\(cwd)/launch.out")
        p.standardError = FileHandle(forWritingAtPath: "\(cwd)/launch.err")
        p.standardInput = FileHandle.nullDevice
        try launchProcess(p)
        return p
    }

    func waitFor(_ path: String, seconds: Double = 20) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let s = try? String(contentsOfFile: path, encoding: .utf8), s.hasSuffix("\n") { return true }
            usleep(20_000)
        }
        return false
    }

    func processAlive(_ pid: Int32) -> Bool {
        // A zombie is dead for our purpose; /proc shows its state.
        guard kill(pid, 0) == 0 else { return false }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return !stat.contains(") Z ")
    }

    // MARK: imprint run

    @Test func runPassesExitCodeAndHashesOutput() throws {
        try withTempDir { dir in
            try writeFile("\(dir)/src/a.txt", "alpha\n")
            try writeFile("\(dir)/src/b/c.txt", "gamma\n")
            try writeFile("\(dir)/src/skip.log", "noise\n")
            try writeFile("\(dir)/in.txt", "input\n")
            let r = try imprint(["run", "--name", "build", "--materials", "src", "in.txt", "--products", "out",
                                 "--exclude", "*.log", "--env", "HOME", "--",
                                 "sh", "-c", "mkdir -p out; printf 'hello\\nworld\\n'; echo oops >&2; echo bin > out/app.bin; exit 7"],
                                cwd: dir)
            #expect(r.status == 7)
            #expect(r.out == "hello\nworld\n")
            #expect(r.err.hasPrefix("oops\n"))
            let rec = try record(dir, "build")
            #expect(rec["status"] as? String == "failed")
            #expect(rec["exitCode"] as? Int == 7)
            let out = rec["stdout"] as! [String: Any], err = rec["stderr"] as! [String: Any]
            #expect(out["digest"] as? String == (try sha256(Data("hello\nworld\n".utf8), in: dir)))
            #expect(out["digest"] as? String == (try sha256(r.stdout, in: dir)))
            #expect(err["digest"] as? String == (try sha256(Data("oops\n".utf8), in: dir)))
            #expect(out["bytes"] as? Int == 12)
            let materials = rec["materials"] as! [[String: Any]]
            #expect(materials.map { $0["path"] as? String } == ["src", "in.txt"])
            #expect(materials[0]["files"] as? Int == 2, "the *.log exclusion applies inside src")
            #expect(materials[1]["digest"] as? String == (try sha256(Data("input\n".utf8), in: dir)))
            let products = rec["products"] as! [[String: Any]]
            #expect(products[0]["type"] as? String == "directory")
            #expect((rec["environment"] as? [String: Any])?["HOME"] as? String == ProcessInfo.processInfo.environment["HOME"])
            for k in ["startTime", "endTime"] {
                #expect((rec[k] as? String)?.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression) != nil)
            }
            try expectValidJSON(Data(contentsOf: URL(fileURLWithPath: "\(dir)/.imprint/steps/build.json")), schema: "step-record.schema.json")

            // Success passes 0 through; a directory's digest is its fingerprint (imprint fingerprint's root digest).
            try writeFile("\(dir)/plain/x/y.txt", "y\n")
            let ok = try imprint(["run", "--name", "ok", "--materials", "plain", "--", "true"], cwd: dir)
            #expect(ok.status == 0)
            let fp = try imprint(["fingerprint", "plain", "--digest-only"], cwd: dir)
            let okMaterials = (try record(dir, "ok"))["materials"] as! [[String: Any]]
            #expect(okMaterials[0]["digest"] as? String == fp.out.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    @Test func runReportsMissingMaterialAndProduct() throws {
        try withTempDir { dir in
            let r = try imprint(["run", "--name", "m", "--materials", "nope", "--", "true"], cwd: dir)
            #expect(r.status == 2)
            #expect(r.err.contains("nope"))
            let p = try imprint(["run", "--name", "p", "--products", "out/x", "--", "true"], cwd: dir)
            #expect(p.status == 1)
            #expect(p.err.contains("out/x was declared but not produced"))
            #expect((try record(dir, "p"))["status"] as? String == "failed")
            let bad = try imprint(["run", "--name", "../x", "--", "true"], cwd: dir)
            #expect(bad.status == 2)
        }
    }

    @Test func sigtermStopsChildAndRecordsInterrupted() throws {
        try withTempDir { dir in
            let p = try launch(["run", "--name", "long", "--", "sh", "-c", "echo $$ > child.pid; exec sleep 30"], cwd: dir)
            #expect(waitFor("\(dir)/child.pid"))
            let childPid = Int32((try String(contentsOfFile: "\(dir)/child.pid", encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines))!
            kill(p.processIdentifier, SIGTERM)
            p.waitUntilExit()
            #expect(p.terminationStatus == 143)
            #expect(!processAlive(childPid))
            let rec = try record(dir, "long")
            #expect(rec["status"] as? String == "interrupted")
            #expect(rec["signal"] as? Int == Int(SIGTERM))
            #expect((rec["reason"] as? String)?.contains("SIGTERM") == true)

            // In a pipeline: the step (and its shell's children) stop, the step is recorded interrupted.
            try writeFile("\(dir)/p.yml", """
            steps:
              wait:
                run: echo $$ > step.pid; sleep 30; echo never
            """)
            let q = try launch(["pipeline", "p.yml"], cwd: dir)
            #expect(waitFor("\(dir)/step.pid"))
            let stepPid = Int32((try String(contentsOfFile: "\(dir)/step.pid", encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines))!
            kill(q.processIdentifier, SIGTERM)
            q.waitUntilExit()
            #expect(q.terminationStatus == 143)
            #expect(!processAlive(stepPid))
            #expect((try record(dir, "wait"))["status"] as? String == "interrupted")
        }
    }

    // MARK: imprint pipeline

    @Test func custodyViolationStopsPipeline() throws {
        try withTempDir { dir in
            try writeFile("\(dir)/src/main.c", "int main(){}\n")
            // 'tamper' needs 'build' and rewrites out/a without declaring it; 'package' needs both, so it
            // always starts after the tampering: deterministic.
            try writeFile("\(dir)/ci/pipeline.yml", """
            steps:
              build:
                run: mkdir -p out && echo A > out/a
                inputs: [src]
                outputs: [out/a]
              tamper:
                run: echo B >> out/a
                needs: [build]
              package:
                run: cp out/a out/pkg
                inputs: [out/a]
                outputs: [out/pkg]
                needs: [build, tamper]
            """)
            let r = try imprint(["pipeline"], cwd: dir)
            #expect(r.status == 1)
            let produced = try sha256(Data("A\n".utf8), in: dir), found = try sha256(Data("A\nB\n".utf8), in: dir)
            let line = r.err.split(separator: "\n").first { $0.contains("error: chain of custody broken") }.map(String.init) ?? ""
            #expect(line.contains("out/a"))
            #expect(line.contains("'build'") && line.contains("'package'"))
            #expect(line.contains(produced) && line.contains(found))
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/out/pkg"), "package must not run")
            #expect((try record(dir, "build"))["status"] as? String == "succeeded")
            #expect((try record(dir, "tamper"))["status"] as? String == "succeeded")
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/.imprint/steps/package.json"))

            let j = try imprint(["pipeline", "--json"], cwd: dir)
            #expect(j.status == 1)
            try expectValidJSON(j.stdout, schema: "pipeline-run.schema.json")
            let steps = (try jsonObject(j.stdout))["steps"] as! [[String: Any]]
            let v = steps[2]["custodyViolation"] as? [String: Any]
            #expect(steps[2]["status"] as? String == "custody-violation")
            #expect(v?["producer"] as? String == "build")
            #expect(v?["producedDigest"] as? String == produced)
            #expect(v?["foundDigest"] as? String == found)
        }
    }

    @Test func custodyAgainstRecordedRun() throws {
        try withTempDir { dir in
            try writeFile("\(dir)/p.yml", """
            steps:
              make:
                run: mkdir -p out && echo v1 > out/lib
                outputs: [out/lib]
              use:
                run: cat out/lib
                inputs: [out/lib]
            """)
            #expect(try imprint(["pipeline", "p.yml", "--step", "make"], cwd: dir).status == 0)
            try writeFile("\(dir)/out/lib", "v2\n")
            let r = try imprint(["pipeline", "p.yml", "--step", "use"], cwd: dir)
            #expect(r.status == 1)
            #expect(r.err.contains("out/lib was produced by step 'make'"))
        }
    }

    @Test func cacheSkipsAndRerunsWhenProductMissing() throws {
        try withTempDir { dir in
            try writeFile("\(dir)/src/a", "1\n")
            try writeFile("\(dir)/p.yml", """
            steps:
              compile:
                run: mkdir -p out && cat src/a > out/app.bin && echo compiled
                inputs: [src]
                outputs: [out/app.bin]
                cache: true
              link:
                run: cat out/app.bin > out/final && echo linked
                inputs: [out/app.bin]
                outputs: [out/final]
                needs: [compile]
                cache: true
              lint:
                run: echo linted
                inputs: [src]
            """)
            let first = try imprint(["pipeline", "p.yml", "--json"], cwd: dir)
            #expect(first.status == 0, "\(first.err)")
            let s1 = (try jsonObject(first.stdout))["steps"] as! [[String: Any]]
            #expect(s1.map { $0["why"] as? String } == ["no previous run", "no previous run", "cache off"])
            #expect(first.err.contains("[compile] compiled"))

            let second = try imprint(["pipeline", "p.yml", "--json"], cwd: dir)
            #expect(second.status == 0)
            try expectValidJSON(second.stdout, schema: "pipeline-run.schema.json")
            let s2 = (try jsonObject(second.stdout))["steps"] as! [[String: Any]]
            #expect(s2.map { $0["status"] as? String } == ["cached", "cached", "succeeded"])
            #expect(s2.map { $0["why"] as? String } == ["cache hit", "cache hit", "cache off"])
            #expect(!second.err.contains("[compile] compiled"))

            let table = try imprint(["pipeline", "p.yml"], cwd: dir)
            #expect(table.out.contains("cache hit"))
            #expect(table.out.range(of: #"compile\s+cached"#, options: .regularExpression) != nil)

            try FileManager.default.removeItem(atPath: "\(dir)/out/app.bin")
            let third = try imprint(["pipeline", "p.yml", "--json"], cwd: dir)
            #expect(third.status == 0)
            let s3 = (try jsonObject(third.stdout))["steps"] as! [[String: Any]]
            #expect(s3[0]["status"] as? String == "succeeded")
            #expect(s3[0]["why"] as? String == "product out/app.bin missing")
            #expect(s3[1]["status"] as? String == "cached", "link's materials are byte-identical again")

            try writeFile("\(dir)/src/a", "2\n")
            let fourth = try imprint(["pipeline", "p.yml", "--json"], cwd: dir)
            let s4 = (try jsonObject(fourth.stdout))["steps"] as! [[String: Any]]
            #expect(s4[0]["why"] as? String == "materials changed: src")
            #expect(s4[1]["why"] as? String == "materials changed: out/app.bin")

            let forced = try imprint(["pipeline", "p.yml", "--json", "--no-cache"], cwd: dir)
            let s5 = (try jsonObject(forced.stdout))["steps"] as! [[String: Any]]
            #expect(s5.map { $0["cached"] as? Bool } == [false, false, false])
            #expect(s5[0]["why"] as? String == "--no-cache")
        }
    }

    @Test func wholeDirectoryInputIsCachedOnSecondRun() throws {
        try withTempDir { dir in
            try writeFile("\(dir)/src/a", "1\n")
            try writeFile("\(dir)/p.yml", """
            steps:
              all:
                run: echo all
                inputs: ["."]
                cache: true
            """)
            #expect(try imprint(["pipeline", "p.yml"], cwd: dir).status == 0)
            let again = try imprint(["pipeline", "p.yml", "--json"], cwd: dir)
            let steps = (try jsonObject(again.stdout))["steps"] as! [[String: Any]]
            #expect(steps[0]["why"] as? String == "cache hit", "the record directory must not count as a material")
        }
    }

    @Test func independentStepsOverlap() throws {
        try withTempDir { dir in
            // Each step succeeds only when it sees the other one start while it still runs: they overlap, or they fail
            // (after 15 s), whatever the machine's load.
            try writeFile("\(dir)/p.yml", """
            steps:
              left:
                run: touch left.started; for i in $(seq 300); do [ -e right.started ] && exit 0; sleep 0.05; done; exit 1
              right:
                run: touch right.started; for i in $(seq 300); do [ -e left.started ] && exit 0; sleep 0.05; done; exit 1
            """)
            let r = try imprint(["pipeline", "p.yml", "--jobs", "2"], cwd: dir)
            #expect(r.status == 0, "the steps did not run side by side: \(r.out)\(r.err)")

            try writeFile("\(dir)/p.yml", """
            steps:
              left:
                run: "true"
              right:
                run: "true"
            """)
            let serial = try imprint(["pipeline", "p.yml", "--jobs", "1"], cwd: dir)
            #expect(serial.status == 0)
            let c = try record(dir, "left"), d = try record(dir, "right")
            #expect((c["endTime"] as! String) <= (d["startTime"] as! String))
        }
    }

    @Test func failuresTimeoutsAndMissingOutputs() throws {
        try withTempDir { dir in
            try writeFile("\(dir)/p.yml", """
            steps:
              slow:
                run: sleep 30
                timeout: 1s
              lazy:
                run: "true"
                outputs: [out/never]
              after:
                run: echo after
                needs: [lazy]
            """)
            let r = try imprint(["pipeline", "p.yml", "--keep-going", "--json"], cwd: dir)
            #expect(r.status == 1)
            let steps = (try jsonObject(r.stdout))["steps"] as! [[String: Any]]
            #expect(steps[0]["status"] as? String == "timed-out")
            #expect((steps[0]["detail"] as? String)?.contains("1s timeout") == true)
            #expect(steps[1]["status"] as? String == "failed")
            #expect((steps[1]["detail"] as? String)?.contains("out/never was declared but not produced") == true)
            #expect(steps[2]["status"] as? String == "not-run")
            #expect((try record(dir, "slow"))["status"] as? String == "timed-out")
            #expect((try record(dir, "lazy"))["status"] as? String == "failed")

            // Fail fast: a failing step stops a long one running beside it.
            try writeFile("\(dir)/f.yml", """
            steps:
              boom:
                run: exit 3
              long:
                run: sleep 30
            """)
            let start = Date()
            let f = try imprint(["pipeline", "f.yml", "--jobs", "2"], cwd: dir)
            #expect(f.status == 1)
            #expect(Date().timeIntervalSince(start) < 20)
            #expect((try record(dir, "boom"))["exitCode"] as? Int == 3)
            #expect((try record(dir, "long"))["status"] as? String == "interrupted")
        }
    }

    @Test func stepSelectionAndSummary() throws {
        try withTempDir { dir in
            try writeFile("\(dir)/p.yml", """
            env: {GREETING: hi}
            steps:
              a:
                run: echo "$GREETING from a"
              b:
                run: echo b
                needs: [a]
              c:
                run: echo c
            """)
            let summary = "\(dir)/summary.md"
            let r = try imprint(["pipeline", "p.yml", "--step", "b"], cwd: dir, env: ["GITHUB_STEP_SUMMARY": summary])
            #expect(r.status == 0)
            #expect(r.out.contains("[a] hi from a"))
            #expect(r.out.contains("[b] b"))
            #expect(!r.out.contains("[c]"))
            let md = try String(contentsOfFile: summary, encoding: .utf8)
            #expect(md.contains("| step | status |"))
            #expect(md.contains("| a | succeeded |"))
            let env = (try record(dir, "a"))["environment"] as? [String: Any]
            #expect(env?["GREETING"] as? String == "hi")
            let bad = try imprint(["pipeline", "p.yml", "--step", "zzz"], cwd: dir)
            #expect(bad.status == 2)
        }
    }

    @Test(arguments: [
        ("steps:\n  a:\n    run: echo a\n    needs: [b]\n  b:\n    run: echo b\n    needs: [a]\n", "cycle: a -> b -> a"),
        ("steps:\n  a:\n    run: echo a\n    needs: [c]\n  b:\n    run: echo b\n    needs: [a]\n  c:\n    run: echo c\n    needs: [b]\n", "cycle: a -> c -> b -> a"),
        ("steps:\n  a:\n    run: [unclosed\n", "p.yml:4:1: invalid YAML: while parsing a flow sequence at 3:10"),
        ("steps:\n  a:\n    run: echo\n   bad: indent\n", "p.yml:4:"),
        ("steps:\n  a:\n    run: echo a\n    inptus: [src]\n", "p.yml:4:5: unknown key 'inptus' in step 'a'"),
        ("steps:\n  a:\n    run: echo a\n    needs: [ghost]\n", "step 'a' needs 'ghost', which is not a step"),
        ("steps:\n  a:\n    run: echo a\n    timeout: soon\n", "invalid duration \"soon\""),
        ("steps:\n  a:\n    inputs: [x]\n", "step 'a' has no 'run' command"),
        ("stages: []\n", "unknown key 'stages' at the top level"),
    ])
    func badPipelineFiles(yaml: String, message: String) throws {
        try withTempDir { dir in
            try writeFile("\(dir)/p.yml", yaml)
            let r = try imprint(["pipeline", "p.yml"], cwd: dir)
            #expect(r.status == 2)
            #expect(r.err.contains(message), "\(r.err)")
            #expect(r.err.split(separator: "\n").count == 1, "one-line error: \(r.err)")
        }
    }

    @Test func bundledStepRecordSchemaIsTheSame() throws {
        let dir = TestEnv.packageRoot.appendingPathComponent("schemas")
        let step = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("step-record.schema.json"))) as! NSDictionary
        let run = try jsonObject(Data(contentsOf: dir.appendingPathComponent("pipeline-run.schema.json")))
        let bundled = (run["$defs"] as? [String: Any])?["stepRecord"] as? NSDictionary
        #expect(bundled == step, "regenerate $defs/stepRecord in pipeline-run.schema.json from step-record.schema.json")
    }

    @Test func dogfoodPipelineParses() throws {
        let root = TestEnv.packageRoot.path
        // --step with a step that needs nothing and is cheap would run it; instead check the file loads by
        // asking for a step that does not exist: a parse error would come first.
        let r = try imprint(["pipeline", "ci/pipeline.yml", "--step", "no-such-step"], cwd: root)
        #expect(r.status == 2)
        #expect(r.err.contains("no step named 'no-such-step'"), "\(r.err)")
    }
}
