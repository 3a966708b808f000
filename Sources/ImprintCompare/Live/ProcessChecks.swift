import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What the processes of a live target run, compared with the files that were verified: an executable or shared
/// object deleted or replaced since the process mapped it, an application process older than the files it serves,
/// and what the engine knows (the container runs an image its tag no longer names; a mount covers the application).
package enum ProcessChecks {
    /// One finding about a process or the container.
    package enum Kind: String, Sendable, CaseIterable {
        case deletedExecutable = "deleted-executable"
        case replacedExecutable = "replaced-executable"
        case deletedLibrary = "deleted-library"
        case replacedLibrary = "replaced-library"
        /// A process that serves the verified tree started before a file of it last changed: it may run old code.
        case staleProcess = "stale-process"
        /// The container runs an image its image name no longer points at: restarted, not recreated.
        case staleImage = "stale-image"
        /// A volume or bind mount lies over (or inside) the verified tree: the files come from it, not the image.
        case mountOverlay = "mount-overlay"
    }

    /// Checks every process of `source`. `tree` is the verified context subtree (walked with change times), found at
    /// target path `at`.
    /// - Parameter slack: seconds a file may change after a process started without making it stale (clock ticks).
    /// - Parameter fileFindings: what the file comparison found; a mount is reported when a difference lies under it.
    package static func check(_ source: LiveSource, processes: [RunningProcess], tree: Tree?, at: String,
                             manifest: Manifest?, fileFindings: [VerifyFinding] = [], slack: Double = 1) -> [VerifyFinding] {
        var out: [VerifyFinding] = []
        let atPath = TreePath(at).bytes
        let atPrefix = "/" + atPath.lossyString
        func inTree(_ path: String) -> Bool {
            atPath.isEmpty || path == atPrefix || path.hasPrefix(atPrefix + "/")
        }
        // The newest change among the manifest's files (bytecode written at run time is not the application's).
        var newest: (path: String, nanos: Int64)?
        if let tree, let manifest {
            manifest.tree.walk { path, node in
                guard node.type == .file, let n = tree.node(at: path), let t = n.changedNanos,
                      !Verifier.isBytecodeCache(path) else { return }
                if newest == nil || t > newest!.nanos { newest = (path.lossyString, t) }
            }
        }
        let table = ProcessTable(proc: source.proc)
        // The tree as the processes may name it: the path given, and where it resolves inside the target's root
        // (`/app` a symlink to `/srv/app`: the kernel reports `/srv/app` as a working directory or mapped file).
        let resolvedAt = ServingProcess.resolve(atPrefix, root: "\(source.proc)/\(source.pid)/root")
        func inAnyTree(_ path: String) -> Bool {
            inTree(path) || (resolvedAt != atPrefix && (resolvedAt == "/" || path == resolvedAt || path.hasPrefix(resolvedAt + "/")))
        }
        let liveIDs = Set(processes.map(\.pid))
        // What the Python probe says each process loaded, for those that imported it.
        var evidence: [Int32: RuntimeEvidence] = [:]
        for p in processes where ServingProcess.runsPython(p) {
            evidence[p.pid] = ServingProcess.evidence(of: p, proc: source.proc, live: liveIDs)
        }
        for p in processes {
            let who = "pid \(p.pid) (\(p.commandLine.isEmpty ? "?" : String(p.commandLine.prefix(120))))"
            let procRoot = "\(source.proc)/\(p.pid)/root"
            if let exe = p.executable {
                if p.executableDeleted {
                    out.append(finding(.deletedExecutable, path: exe, "\(who) runs \(exe), which has been deleted since it started"))
                } else if let running = identity("\(source.proc)/\(p.pid)/exe"), let onDisk = identity(procRoot + exe), running != onDisk {
                    out.append(finding(.replacedExecutable, path: exe, "\(who) runs an older \(exe): the file was replaced after it started"))
                }
            }
            let mapped = table.mappedFiles(p.pid)
            for m in mapped where m.path != p.executable {
                if m.deleted {
                    out.append(finding(.deletedLibrary, path: m.path, "\(who) has \(m.path) mapped, which has been deleted since"))
                } else if let onDisk = identity(procRoot + m.path), let mapped = mappedIdentity(source.proc, p.pid, m.path), onDisk != mapped {
                    out.append(finding(.replacedLibrary, path: m.path, "\(who) has an older \(m.path) mapped: the file was replaced after it was loaded"))
                }
            }
            let serving = ServingProcess(p, proc: source.proc, mapped: mapped.map(\.path), inTree: inAnyTree)
            // A wrapper (a shell, tini, dumb-init, supervisord) runs no application code itself: its children are
            // judged, not it; unless it runs a script from the tree, which it reads as it goes. Where the
            // application imports the probe, a Python process of it without evidence imported none of its modules
            // (a prefork master that loads the application only in its workers): its working directory alone does
            // not make it stale.
            let importedNothing = !evidence.isEmpty && evidence[p.pid] == nil && ServingProcess.runsPython(p) && serving.onlyWorkingDirectory
            if let why = serving.reason, let newest, Double(newest.nanos - p.startedNanos) / 1e9 > slack,
               !(serving.isWrapper && !serving.runsScriptFromTree), !importedNothing {
                out.append(finding(.staleProcess, path: newest.path,
                                   "\(who) \(why), started at \(HistoryTime.rfc3339(nanos: p.startedNanos)), before \(atPrefix == "/" ? "/" : atPrefix + "/")\(newest.path) changed at \(HistoryTime.rfc3339(nanos: newest.nanos)): it may still run the old code (restart it)",
                                   expected: [("started-after", HistoryTime.rfc3339(nanos: newest.nanos))],
                                   actual: [("pid", String(p.pid)), ("started", HistoryTime.rfc3339(nanos: p.startedNanos))]))
            }
            if let evidence = evidence[p.pid] {
                out += evidence.judge(manifest: manifest, expected: nil).map { f in
                    var f = f
                    f.message = "\(who): " + f.message.replacingOccurrences(of: "process \(evidence.pid) on \(evidence.hostname) (started \(evidence.startedAt)): ", with: "")
                    return f
                }
            }
        }
        if let c = source.container {
            if let current = source.currentImageID, !current.isEmpty, current != c.imageID {
                out.append(VerifyFinding(.container, .warning, path: "",
                                         message: "container \(c.name) runs image \(c.imageID), but \(c.imageName) is now \(current): it was restarted, not recreated (a restart is not a redeploy)",
                                         expected: [("image", current)], actual: [("image", c.imageID)], detail: Kind.staleImage.rawValue))
            }
            let differing = fileFindings.filter { $0.severity == .error && !$0.path.isEmpty }
                .map { atPrefix == "/" ? "/" + $0.path : atPrefix + "/" + $0.path }
            for m in c.mounts {
                let d = m.destination
                let under = differing.contains { $0 == d || $0.hasPrefix(d == "/" ? "/" : d + "/") }
                if under && (inTree(d) || (atPrefix + "/").hasPrefix(d == "/" ? "/" : d + "/")) {
                    out.append(VerifyFinding(.container, .warning, path: d,
                                             message: "\(m.type) \(m.source) is mounted at \(d): the files that differ there come from it, not from the image",
                                             detail: Kind.mountOverlay.rawValue))
                }
            }
        }
        return out
    }

    package static func finding(_ kind: Kind, path: String, _ message: String, expected: [(String, String)] = [], actual: [(String, String)] = []) -> VerifyFinding {
        VerifyFinding(.process, .error, path: path, message: message, expected: expected, actual: actual, detail: kind.rawValue)
    }

    /// (device, inode) of what `path` names, following symlinks (so `/proc/PID/exe` gives the running file).
    package static func identity(_ path: String) -> [UInt64]? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return [UInt64(st.st_dev), UInt64(st.st_ino)]
    }

    /// (device, inode) of the file mapped at `path` by `pid`, through `/proc/PID/map_files` (the mapped file as the
    /// process's mount namespace sees it, so it compares with a stat of the path there).
    package static func mappedIdentity(_ proc: String, _ pid: Int32, _ path: String) -> [UInt64]? {
        guard let dir = opendir("\(proc)/\(pid)/map_files") else { return nil }
        defer { closedir(dir) }
        while let e = readdir(dir) {
            let name = Syscall.entryNameString(e)
            if name.hasPrefix(".") { continue }
            let link = "\(proc)/\(pid)/map_files/\(name)"
            if ProcessTable.readLink(link) == path { return identity(link) }
        }
        return nil
    }
}
