import Foundation
import ImprintCore
import Testing

/// A content check decides the same on every kind of target. The hardest case: a timestamp pyc whose header
/// still matches its source (same size, same second) but whose bytecode is older code. Only compiling the source
/// shows it, and CPython in a real container runs the old code.
@Suite struct EveryTargetTests {
    static func kinds(_ r: RunResult) throws -> [String] {
        let report = try jsonObject(r.stdout)
        return (report["findings"] as? [[String: Any]] ?? []).compactMap { $0["detail"] as? String }
    }

    @Test(.tags(.engine, .registry)) func headerValidStalePycIsNamedOnEveryTarget() throws {
        try requireTool("python3.11")
        try requireTool("skopeo")
        let engine = try ContainerEngine()
        defer { engine.stop() }
        try engine.buildPythonBase()
        try withTempDir { dir in
            let ctx = dir + "/ctx"
            try writeFile(ctx + "/main.py", "import mod\nprint(mod.VALUE)\n")
            try writeFile(ctx + "/mod.py", "VALUE = 'old'\n")
            try writeFile(ctx + "/.dockerignore", "Dockerfile\n.dockerignore\n")
            try writeFile(ctx + "/Dockerfile", """
            FROM localhost/python-base
            COPY . /app
            WORKDIR /app
            ENV PYTHONDONTWRITEBYTECODE=1
            CMD ["sleep", "3600"]

            """)
            // Compiled from the old source, then the source edited to the same size and given its old mtime back.
            try sh("""
            touch -d @1700000000 mod.py
            python3.11 -c "import py_compile as p; p.compile('mod.py', invalidation_mode=p.PycInvalidationMode.TIMESTAMP, doraise=True)"
            printf "VALUE = 'new'\\n" > mod.py && touch -d @1700000000 mod.py
            """, cwd: ctx)
            #expect(try imprint("fingerprint", ctx, "-q", "-o", dir + "/m.json").status == 0)
            try engine.sh("""
            docker build -q -t localhost/stale \(ctx) >/dev/null
            docker save localhost/stale -o \(dir)/img.tar
            """)
            // CPython in the container runs the old code: this is what every verdict below must say.
            let ran = try run("docker", ["run", "--rm", "--network", "none", "localhost/stale", "python3", "main.py"], env: engine.env)
            #expect(ran.out.trimmingCharacters(in: .whitespacesAndNewlines) == "old", "\(ran.out)\(ran.err)")

            func expectStale(_ args: [String], stdinFile: String? = nil, _ label: String) throws {
                let r = try imprint(args + ["--format", "json"], stdinFile: stdinFile, env: engine.env)
                #expect(r.status == 1, "\(label): \(r.out)\(r.err)")
                #expect(try Self.kinds(r).contains("stale-code-pyc"), "\(label): \(r.out)\(r.err)")
            }
            try expectStale(["verify", ctx, "--manifest", dir + "/m.json"], "directory")
            try expectStale(["verify", dir + "/img.tar", "--manifest", dir + "/m.json", "--at", "/app"], "local image")
            try engine.sh("cid=$(docker create localhost/stale) && docker export $cid -o \(dir)/export.tar && docker rm $cid >/dev/null")
            try expectStale(["verify", "-", "--manifest", dir + "/m.json", "--at", "/app"], stdinFile: dir + "/export.tar", "tar stream")
            let reg = try LocalRegistry(dir: dir + "/registry")
            defer { reg.stop() }
            try sh("skopeo copy -q --dest-tls-verify=false docker-archive:\(dir)/img.tar docker://\(reg.host)/stale:1")
            try expectStale(["verify", "registry://\(reg.host)/stale:1", "--manifest", dir + "/m.json", "--at", "/app"], "registry image")
            try engine.sh("docker run -d --name stale --network none localhost/stale >/dev/null")
            try expectStale(["verify", "docker:stale", "--manifest", dir + "/m.json", "--at", "/app", "--no-processes"], "live container")
            // stamp --check refuses to stamp it.
            let stamp = try imprint("stamp", dir + "/img.tar", "--manifest", dir + "/m.json", "--check", "--at", "/app", "-o", dir + "/s.tar")
            #expect(stamp.status == 1 && (stamp.out + stamp.err).contains("stale-code-pyc"), "\(stamp.out)\(stamp.err)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/s.tar"))
        }
    }
}

extension EveryTargetTests {
    /// Every bytecode scenario CPython decides (BytecodeTests.scenarios): a directory and the same files as a tar
    /// stream get the same findings and the same exit status.
    @Test(arguments: BytecodeTests.scenarios)
    func directoryAndTarStreamAgree(_ s: BytecodeTests.Scenario) throws {
        try requireTool("python3")
        try withTempDir { dir in
            let app = dir + "/app"
            try writeFile(app + "/mod.py", "VALUE = \"old\"\n")
            try sh(BytecodeTests.restoreMtime, cwd: app)
            #expect(try run("python3", ["-c", s.compile], cwd: app).status == 0)
            try sh(s.edit, cwd: app)
            try writeFile(dir + "/new/mod.py", "VALUE = \"new\"\n")
            #expect(try imprint("fingerprint", dir + "/new", "-q", "-o", dir + "/m.json").status == 0)
            try sh("tar -C \(dir) -cf \(dir)/app.tar app")
            let onDisk = try imprint("verify", app, "--manifest", dir + "/m.json", "--at", "/", "--format", "json")
            let streamed = try imprint("verify", "-", "--manifest", dir + "/m.json", "--at", "/app", "--format", "json", stdinFile: dir + "/app.tar")
            #expect(onDisk.status == streamed.status, "\(onDisk.out)\n\(streamed.out)\(streamed.err)")
            let a = try Self.kinds(onDisk).filter { $0.contains("pyc") }, b = try Self.kinds(streamed).filter { $0.contains("pyc") }
            #expect(a == b, "directory: \(a), tar stream: \(b)")
        }
    }
}

extension EveryTargetTests {
    /// Paths of any depth give one clear answer, never a signal: a 100,000-level path in a tar stream, in a
    /// manifest and in a directory is refused naming PATH_MAX, the kernel's limit (no runtime or builder can create
    /// a longer path, and it bounds how deep any tree imprint builds can be).
    @Test func hundredThousandLevelPathsAreOneClearError() throws {
        try withTempDir { dir in
            try sh("""
            python3 - <<'PY'
            import sys, json
            sys.path.insert(0, '\(TestEnv.packageRoot.path)/ci/fuzzing')
            import runtime_layers as rl
            deep = '/'.join(['d'] * 100000) + '/f'
            open('\(dir)/deep.tar', 'wb').write(rl.pax([(b'path', deep.encode())]) + rl.file(b'x', b'x') + rl.end())
            json.dump({'mediaType': 'application/vnd.imprint.manifest.v1+json', 'digest': 'sha256:' + '0' * 64,
                       'entries': [{'path': deep, 'type': 'file', 'mode': '0644', 'size': 0,
                                    'sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'}]}, open('\(dir)/deep.json', 'w'))
            PY
            """)
            for (args, stdin) in [(["inspect", "-", "--tree-digest"], dir + "/deep.tar"), (["verify", "-", "--manifest", dir + "/deep.json", "--at", "/"], dir + "/deep.tar"),
                                  (["inspect", dir + "/deep.json"], nil), (["diff", dir + "/deep.json", dir + "/deep.json"], nil)] as [([String], String?)] {
                let r = try imprint(args, stdinFile: stdin)
                #expect(r.status == 2, "\(args): \(r.status) \(r.err.prefix(300))")
                #expect(r.err.contains("PATH_MAX") && r.err.split(separator: "\n").count == 1, "\(args): \(r.err.prefix(300))")
            }
        }
    }
}
