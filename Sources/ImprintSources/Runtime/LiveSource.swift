import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A running container (or the machine imprint runs on) as a source: its filesystem as its processes see it —
/// through `/proc/PID/root`, the container's own mount namespace, volumes and bind mounts included — and its
/// processes, from its PID namespace. Nothing is executed in the target.
///
/// Specs: `pid:N` (any process of the container), `docker:NAME` and `podman:NAME` (resolved through the engine's
/// API at `DOCKER_HOST`/`CONTAINER_HOST`, which also gives the image the container runs and its mounts).
package struct LiveSource {
    package var spec: String
    /// A process of the target; its PID namespace defines the target's processes.
    package var pid: Int32
    /// The target's root as the host sees it (`/proc/PID/root`; `/` for the machine itself).
    package var root: String
    /// What the engine says, for `docker:`/`podman:` targets.
    package var container: ContainerDescription?
    /// The image ID the container's image name points at now (a rebuilt tag the container does not run).
    package var currentImageID: String?
    /// The PID namespace whose processes belong to the target.
    package var pidNamespace: UInt64?
    package var proc: String = "/proc"
    /// Digests of files seen before (`imprint watch`): unchanged files are not read again.
    package var digestCache: DigestCache?

    package static let prefixes = ["pid:", "docker:", "podman:"]

    package static func isLive(_ spec: String) -> Bool { prefixes.contains { spec.hasPrefix($0) } }

    /// Resolves a spec to a process and its root.
    /// - Throws: `badInput` for a malformed spec, `notFound` when the process or container does not exist or is not
    ///   running, `failure` when its root cannot be read (imprint must run as root, on the same host).
    package static func open(_ spec: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> LiveSource {
        var container: ContainerDescription?
        var current: String?
        let pid: Int32
        if spec.hasPrefix("pid:") {
            guard let p = Int32(spec.dropFirst(4)), p > 0 else { throw ImprintError.badInput("\(spec): expected pid:N with a process id") }
            pid = p
        } else {
            let engine = spec.hasPrefix("docker:") ? "docker" : "podman"
            let name = String(spec.drop { $0 != ":" }.dropFirst())
            guard !name.isEmpty else { throw ImprintError.badInput("\(spec): expected \(engine):NAME") }
            let client = try EngineClient(engine: engine, environment: environment)
            let c = try client.container(name)
            guard c.running, c.pid > 0 else { throw ImprintError(.notFound, "container \(c.name) is not running") }
            container = c
            current = try client.imageID(c.imageName)
            pid = c.pid
        }
        let root = "/proc/\(pid)/root"
        guard access("/proc/\(pid)", F_OK) == 0 else { throw ImprintError(.notFound, "no process \(pid) (\(spec))") }
        var st = stat()
        guard stat(root + "/", &st) == 0 else {
            throw ImprintError(.failure, "cannot read the filesystem of process \(pid) through \(root): \(String(cString: strerror(errno))) (imprint must run as root on the container's host)")
        }
        return LiveSource(spec: spec, pid: pid, root: root, container: container, currentImageID: current,
                          pidNamespace: ProcessTable.namespace("/proc/\(pid)/ns/pid"))
    }

    /// The machine imprint runs on (inside a container: that container), for `verify / --processes`.
    package static func local() -> LiveSource {
        let me = getpid()
        return LiveSource(spec: "/", pid: me, root: "/", container: nil, currentImageID: nil,
                          pidNamespace: ProcessTable.namespace("/proc/\(me)/ns/pid"))
    }

    /// The target's processes (those in its PID namespace), imprint itself left out.
    package func processes() -> [RunningProcess] {
        let me = getpid()
        return ProcessTable(proc: proc).processes(inNamespace: pidNamespace).filter { $0.pid != me }
    }

    /// Mount points (target paths, without the leading slash) of pseudo filesystems, left out of walks: /proc, /sys,
    /// /dev and the like hold no application files and some never end.
    package func pseudoMounts() -> Set<Bytes> {
        var out: Set<Bytes> = [Array("proc".utf8), Array("sys".utf8), Array("dev".utf8)]
        if let data = ProcessTable.readSmall("\(proc)/\(pid)/mountinfo", limit: 4 << 20) {
            out.formUnion(LiveSource.pseudoMounts(mountinfo: data))
        }
        return out
    }

    /// The mount points (absolute paths, without the leading slash) of pseudo filesystems in a mountinfo table.
    package static func pseudoMounts(mountinfo data: [UInt8]) -> Set<Bytes> {
        let pseudo: Set<String> = ["proc", "sysfs", "cgroup", "cgroup2", "devpts", "devtmpfs", "mqueue", "debugfs",
                                   "tracefs", "securityfs", "pstore", "bpf", "hugetlbfs", "configfs", "fusectl",
                                   "binfmt_misc", "autofs", "nsfs", "selinuxfs", "efivarfs", "rpc_pipefs"]
        var out = Set<Bytes>()
        for line in data.split(separator: 0x0A) {
            let s = String(decoding: line, as: UTF8.self)
            let halves = s.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " "), right = halves[1].split(separator: " ")
            guard left.count >= 5, let fstype = right.first, pseudo.contains(String(fstype)) else { continue }
            let mountPoint = LiveSource.unescapeMountinfo(String(left[4]))
            let rel = TreePath(mountPoint).bytes
            if !rel.isEmpty { out.insert(rel) }
        }
        return out
    }

    /// Pseudo filesystems mounted below `directory` on this machine (e.g. /proc and /sys when verifying `/` inside
    /// a container), relative to it: a directory walk leaves them out, as `docker export` does.
    package static func pseudoMounts(below directory: String) -> Set<Bytes> {
        guard let real = realpath(directory, nil) else { return [] }
        defer { free(real) }
        let base = TreePath(String(cString: real)).bytes
        guard let data = ProcessTable.readSmall("/proc/self/mountinfo", limit: 4 << 20) else { return [] }
        var out = Set<Bytes>()
        for m in pseudoMounts(mountinfo: data) where m.isPath(under: base) && m != base {
            out.insert(base.isEmpty ? m : Array(m[(base.count + 1)...]))
        }
        return out
    }

    /// Mountinfo escapes space, tab, newline and backslash as octal.
    package static func unescapeMountinfo(_ s: String) -> String {
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 3 < b.count, let v = UInt8(String(decoding: b[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v); i += 4
            } else { out.append(b[i]); i += 1 }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Walks the target's directory `path` (a target path such as `/app`, or `/`), recording change times.
    /// `path` as the target's processes reach it: symlinks resolved inside the target's root (through
    /// `/proc/PID/root` the kernel would resolve an absolute link from the host's root instead).
    package func resolve(_ path: String) -> String {
        root == "/" ? path : ServingProcess.resolve(path, root: root)
    }

    package func walk(_ path: String) throws -> Tree {
        let rel = TreePath(resolve(path)).bytes
        var walker = ContextWalker(recordOwnership: true)
        walker.digestCache = digestCache
        // Pseudo file systems below the walked directory, relative to it.
        var skip = Set<Bytes>()
        for m in pseudoMounts() where m.isPath(under: rel) && m != rel {
            skip.insert(rel.isEmpty ? m : Array(m[(rel.count + 1)...]))
        }
        walker.excludedPaths = skip
        let host = rel.isEmpty ? root : root + "/" + rel.lossyString
        return try walker.walk(host).tree
    }

    /// A file of the target, or nil when it does not exist.
    package func readFile(_ path: String, limit: Int = 256 << 20) throws -> [UInt8]? {
        let host = root + "/" + TreePath(resolve(path)).string
        var st = stat()
        guard lstat(host, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        guard st.st_size <= limit else { throw ImprintError.badInput("\(spec): \(path) is larger than \(formatBytes(UInt64(limit)))") }
        return try ImprintBase.readFile(host, what: "file")
    }

    /// Where the application's files are likely to be, best first: the working directories of the target's
    /// processes, then the usual places.
    package func likelyContextRoots(_ processes: [RunningProcess]) -> [String] {
        var out: [String] = []
        for p in processes.sorted(by: { $0.pid < $1.pid }) {
            if let cwd = p.workingDirectory, cwd != "/", !out.contains(cwd) { out.append(cwd) }
        }
        for d in ["/app", "/srv/app", "/usr/src/app", "/opt/app", "/code", "/workspace", "/srv", "/var/www", "/home/app"] where !out.contains(d) {
            out.append(d)
        }
        return out.filter { d in
            var st = stat()
            return lstat(root + resolve(d), &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
        }
    }
}
