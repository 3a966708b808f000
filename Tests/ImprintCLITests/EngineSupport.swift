import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A real container engine for the tests: podman (runc) with its Docker-compatible API on a unix socket in a temp
/// directory, so the real `docker` CLI builds, saves, loads, runs and exports through it (../shared/LAB.md recipe).
/// Everything — storage, run state, the socket — lives under `dir`; `stop()` ends the service and removes it.
final class ContainerEngine {
    let dir: String
    let service = Process()
    var socket: String { dir + "/podman.sock" }
    /// Environment for `docker` and `podman` commands that talk to this engine.
    var env: [String: String] {
        ["DOCKER_HOST": "unix://\(socket)", "CONTAINERS_CONF": dir + "/containers.conf", "DOCKER_BUILDKIT": "0",
         "DOCKER_CONFIG": dir + "/docker-config"]
    }
    /// Its own libpod temporary directory too: the default, /run/libpod, is shared by every podman on the machine,
    /// and one engine's `system reset` removing its `alive` file made another engine think the machine had
    /// rebooted and mark its running containers stopped (compose then failed to start them again: "container with
    /// given ID already exists"; a direct podman failed on "/run/libpod/alive: no such file or directory").
    var podman: String { "podman --root \(dir)/root --runroot \(dir)/run --tmpdir \(dir)/libpod --storage-driver vfs" }

    init() throws {
        for tool in ["podman", "runc", "docker", "busybox"] { try requireTool(tool) }
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("imprint-engine-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir + "/docker-config", withIntermediateDirectories: true)
        // An empty auth file: buildah (and podman) read $DOCKER_CONFIG/config.json and refuse a missing one.
        try writeFile(dir + "/docker-config/config.json", "{\"auths\": {}}\n")
        try writeFile(dir + "/containers.conf", """
        [containers]
        default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
        [engine]
        runtime = "runc"
        cgroup_manager = "cgroupfs"

        """)
        service.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        service.arguments = ["podman", "--root", dir + "/root", "--runroot", dir + "/run", "--tmpdir", dir + "/libpod", "--storage-driver", "vfs",
                             "system", "service", "--time=0", "unix://\(socket)"]
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        service.environment = environment
        let log = dir + "/service.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        service.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        service.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        service.standardInput = FileHandle.nullDevice
        try launchProcess(service)
        for _ in 0..<100 {
            if try run("docker", ["version", "--format", "{{.Server.Version}}"], env: env).status == 0 { return }
            usleep(100_000)
        }
        stop()
        throw ToolMissing(name: "podman system service did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    deinit { stop() }

    func stop() {
        if service.isRunning {
            _ = try? run("/bin/sh", ["-c", "docker ps -aq | xargs -r docker rm -f >/dev/null 2>&1"], env: env, timeout: 120)
            kill(service.processIdentifier, SIGKILL)
            service.waitUntilExit()
        }
        // Without DOCKER_HOST: this talks to the storage directly, also when the service hung.
        var local = env
        local["DOCKER_HOST"] = nil
        _ = try? run("/bin/sh", ["-c", "\(podman) system reset -f >/dev/null 2>&1; rm -rf '\(dir)'"], env: local, timeout: 300)
    }

    /// Runs a shell script against this engine (docker → podman), with imprint on PATH; records a failure when it fails.
    @discardableResult
    func sh(_ script: String, cwd: String? = nil, extraEnv: [String: String] = [:], expectSuccess: Bool = true,
            sourceLocation: SourceLocation = #_sourceLocation) throws -> RunResult {
        let r = try run("/bin/bash", ["-euo", "pipefail", "-c", script], cwd: cwd, env: scriptEnv(extraEnv))
        #expect(!expectSuccess || r.status == 0, "script failed (\(r.status)): \(script)\n\(r.out)\n\(r.err)", sourceLocation: sourceLocation)
        return r
    }

    /// Runs a container to completion and returns its exit status and output, as `docker run` would, without any
    /// wait endpoint: through podman's Docker-compatible API `docker run`'s attached wait ("next-exit") can miss a
    /// container that exits at once and spin forever (seen at 90% CPU for 10 and 15 minutes in full runs), and
    /// `docker wait` can answer -1 for one that exited. Created, started, polled with `docker inspect` until it
    /// exited, and its output read back with `docker logs`; the container stays until the engine stops.
    @discardableResult
    func runContainer(_ name: String, _ args: String, expectSuccess: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) throws -> RunResult {
        try sh("""
        docker create --name \(name) \(args) >/dev/null
        docker start \(name) >/dev/null
        for _ in $(seq 3000); do
          [ "$(docker inspect -f '{{.State.Status}}' \(name))" = exited ] && break
          sleep 0.1
        done
        code=$(docker inspect -f '{{.State.ExitCode}}' \(name))
        docker logs \(name)
        exit "$code"
        """, expectSuccess: expectSuccess, sourceLocation: sourceLocation)
    }

    /// Removes containers. `rm -f` of a running container races podman's own cleanup and now and then fails with
    /// EBUSY on the container's shm mount (a known podman flake); the containers are stopped first and the removal
    /// retried, so the race cannot fail the scenario that only cleans up after itself.
    func remove(_ names: String..., sourceLocation: SourceLocation = #_sourceLocation) throws {
        let list = names.joined(separator: " ")
        try sh("""
        docker stop -t 0 \(list) >/dev/null 2>&1 || true
        for i in 1 2 3 4 5; do docker rm -f \(list) >/dev/null 2>&1 && exit 0; sleep 1; done
        docker rm -f \(list) >/dev/null
        """, sourceLocation: sourceLocation)
    }

    /// The environment of a script: this engine, and `imprint` first on PATH.
    func scriptEnv(_ extra: [String: String] = [:]) -> [String: String] {
        var e = env
        let bin = (TestEnv.imprintPath as NSString).deletingLastPathComponent
        e["PATH"] = bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        for (k, v) in extra { e[k] = v }
        return e
    }

    /// A `FROM scratch` image with busybox (`sh`, `tar`, `sleep`, `cat`…), tagged `localhost/busybox-base`.
    func buildBusyboxBase() throws {
        let ctx = dir + "/busybox-ctx"
        try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
        try sh("""
        cp "$(command -v busybox)" \(ctx)/busybox
        cat > \(ctx)/Dockerfile <<'EOF'
        FROM scratch
        COPY busybox /bin/busybox
        RUN ["/bin/busybox", "--install", "-s", "/bin"]
        EOF
        docker build -q -t localhost/busybox-base \(ctx) >/dev/null
        """)
    }
}

extension ContainerEngine {
    /// A `FROM scratch` image with busybox and the host's Debian CPython (/usr/bin/python3.11, its standard library
    /// and the shared objects they need) and Debian's gunicorn, tagged `localhost/python-base`: real CPython in a
    /// container, built in seconds without a network.
    func buildPythonBase() throws {
        try requireTool("/usr/bin/python3.11")
        guard FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/gunicorn/__init__.py") else {
            Issue.record("Debian's python3-gunicorn is not installed (run ci/install-deps.sh)")
            throw ToolMissing(name: "python3-gunicorn")
        }
        let ctx = dir + "/python-ctx"
        try FileManager.default.createDirectory(atPath: ctx + "/rootfs", withIntermediateDirectories: true)
        try sh("""
        cd \(ctx)/rootfs
        mkdir -p bin usr/bin usr/lib lib64 lib/x86_64-linux-gnu tmp
        cp "$(command -v busybox)" bin/busybox
        for a in sh ls cat cp mv rm mkdir sleep tar touch echo ps kill sed; do ln -s busybox bin/$a; done
        cp /usr/bin/python3.11 usr/bin/python3
        tar -C /usr/lib --exclude=test --exclude=idlelib --exclude=tkinter --exclude=ensurepip --exclude=lib2to3 \
            --exclude=__pycache__ -cf - python3.11 | tar -C usr/lib -xf -
        # Debian's gunicorn (and the pkg_resources it imports), for prefork servers: Debian's site.py adds this path.
        mkdir -p usr/lib/python3/dist-packages
        tar -C /usr/lib/python3/dist-packages --exclude=__pycache__ -cf - gunicorn pkg_resources | tar -C usr/lib/python3/dist-packages -xf -
        for f in /usr/bin/python3.11 /usr/lib/python3.11/lib-dynload/*.so; do ldd "$f" 2>/dev/null; done \
            | awk '/=> \\// {print $3} /ld-linux/ {print $1}' | sort -u | while read -r lib; do
              case "$lib" in /lib64/*) cp -L "$lib" lib64/ ;; *) cp -L "$lib" lib/x86_64-linux-gnu/ ;; esac
            done
        cat > \(ctx)/Dockerfile <<'EOF2'
        FROM scratch
        COPY rootfs/ /
        ENV PATH=/usr/bin:/bin PYTHONDONTWRITEBYTECODE=
        EOF2
        docker build -q -t localhost/python-base \(ctx) >/dev/null
        """)
        let check = try runContainer("python-base-check", "--network none localhost/python-base python3 -c 'import json, hashlib, socket, http.server, gunicorn.app.wsgiapp; print(\"ok\")'")
        #expect(check.out == "ok\n", "\(check.out)\(check.err)")
    }

    /// Waits until `cmd` (run in the container) succeeds, up to `seconds`.
    func waitFor(_ container: String, _ cmd: String, seconds: Double = 15) throws {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if try run("docker", ["exec", container, "sh", "-c", cmd], env: env).status == 0 { return }
            usleep(200_000)
        }
        Issue.record("\(container): `\(cmd)` did not succeed within \(seconds) s")
    }
}
