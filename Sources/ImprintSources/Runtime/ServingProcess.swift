import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether a process runs code from the verified tree, decided from what the kernel shows of it, resolved inside
/// the target's root: files it maps, a script it was started with (resolved from its working directory), files it
/// holds open, for Python its module search path (`-m` runs a module from the working directory; `PYTHONPATH`),
/// and otherwise its working directory.
///
/// A wrapper — a shell, tini, dumb-init, supervisord and the like — runs no application code of its own: it is
/// not stale for its children's sake (they are judged themselves), unless it runs a script file from the tree.
package struct ServingProcess {
    /// Why the process serves the tree (nil when it does not).
    package let reason: String?
    package let isWrapper: Bool
    /// For a wrapper: it was started with a script file from the tree (`sh /app/run.sh`).
    package let runsScriptFromTree: Bool
    /// The only sign is the working directory.
    package var onlyWorkingDirectory: Bool { reason?.hasPrefix("works in ") == true }

    package static let wrappers: Set<String> = ["sh", "bash", "dash", "ash", "zsh", "busybox", "tini", "tini-static", "dumb-init",
                                        "supervisord", "s6-svscan", "s6-supervise", "runsvdir", "runsv", "catatonit",
                                        "docker-init", "gosu", "su-exec", "chpst", "setpriv", "env", "nohup", "timeout"]

    /// True for a process that runs Python code (an interpreter, or a server embedding one): the only kind that
    /// can hold the probe's evidence.
    package static func runsPython(_ p: RunningProcess) -> Bool {
        let argv0 = (p.arguments.first.map { ($0 as NSString).lastPathComponent }) ?? ""
        let exe = (p.executable.map { ($0 as NSString).lastPathComponent }) ?? ""
        return argv0.hasPrefix("python") || exe.hasPrefix("python") || ["gunicorn", "uwsgi", "celery", "uvicorn"].contains(argv0)
    }

    package init(_ p: RunningProcess, proc: String, mapped: [String], inTree: (String) -> Bool) {
        let name = { (s: String?) in s.map { ($0 as NSString).lastPathComponent } ?? "" }
        let argv0 = name(p.arguments.first), exe = name(p.executable)
        isWrapper = ServingProcess.wrappers.contains(argv0) || (ServingProcess.wrappers.contains(exe) && !exe.hasPrefix("python"))
        let root = "\(proc)/\(p.pid)/root"
        let cwd = p.workingDirectory ?? "/"
        var reason: String?
        var script = false
        if let m = mapped.first(where: inTree) { reason = "maps \(m)" }
        // Script arguments that name a file in the tree (a command string for `sh -c` names no file).
        for arg in p.arguments.dropFirst().prefix(8) where !arg.hasPrefix("-") {
            let abs = arg.hasPrefix("/") ? arg : (cwd as NSString).appendingPathComponent(arg)
            let resolved = ServingProcess.resolve(abs, root: root)
            var st = stat()
            guard inTree(abs) || inTree(resolved), stat(root + resolved, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            script = true
            if reason == nil { reason = "runs \(abs)" }
        }
        runsScriptFromTree = script
        if reason == nil, ServingProcess.runsPython(p) {
            // The module search path as the interpreter builds it: the working directory for -m, then PYTHONPATH.
            let env = ServingProcess.environment(p.pid, proc: proc)
            var searchPath: [String] = []
            let module = p.arguments.firstIndex(of: "-m").flatMap { $0 + 1 < p.arguments.count ? p.arguments[$0 + 1] : nil }
            if module != nil { searchPath.append(cwd) }
            for entry in (env["PYTHONPATH"] ?? "").split(separator: ":").map(String.init) where !entry.isEmpty {
                searchPath.append(entry.hasPrefix("/") ? entry : (cwd as NSString).appendingPathComponent(entry))
            }
            let inside = searchPath.filter { inTree($0) || inTree(ServingProcess.resolve($0, root: root)) }
            if let module, let dir = inside.first(where: { ServingProcess.hasModule(module, in: ServingProcess.resolve($0, root: root), root: root) }) {
                reason = "runs module \(module) (-m) from \(dir)"
            } else if let dir = inside.first(where: { $0 != cwd || module == nil }) {
                reason = "imports from PYTHONPATH \(dir)"
            }
        }
        if reason == nil, let open = ServingProcess.openFiles(p.pid, proc: proc).first(where: inTree) { reason = "has \(open) open" }
        if reason == nil, inTree(cwd), !isWrapper { reason = "works in \(cwd)" }
        self.reason = reason
    }

    /// True when module `name` (dotted) is a file or package in `dir` (a path inside `root`).
    package static func hasModule(_ name: String, in dir: String, root: String) -> Bool {
        let base = root + dir + "/" + name.replacingOccurrences(of: ".", with: "/")
        return [base + ".py", base + "/__init__.py", base + "/__main__.py", base + ".pyc"].contains { (candidate: String) in access(candidate, F_OK) == 0 }
    }

    /// `path` resolved inside `root` the way the kernel resolves it there: symlinks followed (absolute targets from
    /// the root), `..` stopping at the root. Components that do not exist are kept as they are.
    package static func resolve(_ path: String, root: String) -> String {
        var done: [String] = []
        var pending = Array(path.split(separator: "/").map(String.init).reversed())
        var links = 0
        while let c = pending.popLast() {
            if c.isEmpty || c == "." { continue }
            if c == ".." { if !done.isEmpty { done.removeLast() }; continue }
            let candidate = "/" + (done + [c]).joined(separator: "/")
            if links < 40, let target = ProcessTable.readLink(root + candidate) {
                links += 1
                if target.hasPrefix("/") { done = [] }
                pending.append(contentsOf: target.split(separator: "/").map(String.init).reversed())
                continue
            }
            done.append(c)
        }
        return "/" + done.joined(separator: "/")
    }

    package static func environment(_ pid: Int32, proc: String) -> [String: String] {
        guard let data = ProcessTable.readSmall("\(proc)/\(pid)/environ", limit: 1 << 20) else { return [:] }
        var out: [String: String] = [:]
        for entry in data.split(separator: 0) {
            guard let eq = entry.firstIndex(of: UInt8(ascii: "=")) else { continue }
            out[String(decoding: entry[entry.startIndex..<eq], as: UTF8.self)] = String(decoding: entry[(eq + 1)...], as: UTF8.self)
        }
        return out
    }

    /// The files the process holds open (paths as it sees them), sockets, pipes and anonymous files left out.
    package static func openFiles(_ pid: Int32, proc: String) -> [String] {
        guard let dir = opendir("\(proc)/\(pid)/fd") else { return [] }
        defer { closedir(dir) }
        var out: [String] = []
        while let e = readdir(dir), out.count < 4096 {
            let name = Syscall.entryNameString(e)
            guard Int(name) != nil, let target = ProcessTable.readLink("\(proc)/\(pid)/fd/\(name)"), target.hasPrefix("/") else { continue }
            out.append(target.hasSuffix(" (deleted)") ? String(target.dropLast(10)) : target)
        }
        return out
    }

    /// The evidence file the Python probe keeps for process `p` (`IMPRINT_EVIDENCE_DIR`, default
    /// `/tmp/imprint-evidence`, file `PID-STARTTICKS.json` with the pid as the container sees it): its path and
    /// bytes, if any.
    package static func evidenceFile(of p: RunningProcess, proc: String) -> (path: String, bytes: [UInt8])? {
        let base = "\(proc)/\(p.pid)"
        guard let status = ProcessTable.readSmall(base + "/status"), let stat = ProcessTable.readSmall(base + "/stat"),
              let close = stat.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = stat[(close + 2)...].split(separator: 0x20)
        guard fields.count > 19 else { return nil }
        let ticks = String(decoding: fields[19], as: UTF8.self)
        var nspid = String(p.pid)
        for line in String(decoding: status, as: UTF8.self).split(separator: "\n") where line.hasPrefix("NSpid:") {
            if let last = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).last { nspid = String(last) }
        }
        let dir = environment(p.pid, proc: proc)["IMPRINT_EVIDENCE_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp/imprint-evidence"
        let file = base + "/root" + (dir.hasPrefix("/") ? dir : "/" + dir) + "/\(nspid)-\(ticks).json"
        guard let bytes = ProcessTable.readSmall(file, limit: 64 << 20) else { return nil }
        return (file, bytes)
    }
}
