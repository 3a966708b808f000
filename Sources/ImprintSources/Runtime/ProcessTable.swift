import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One process as `/proc` shows it. Everything is read from the host's view of the process (`/proc/PID/...`), so it
/// works for a container's processes without entering the container or running anything in it.
package struct RunningProcess: Sendable {
    package var pid: Int32
    package var parent: Int32
    /// `argv`, as `/proc/PID/cmdline` has it (may be empty for kernel threads).
    package var arguments: [String]
    /// When the process started, in nanoseconds since the epoch.
    package var startedNanos: Int64
    /// The executable's path as the process sees it (`/proc/PID/exe`), without a ` (deleted)` suffix.
    package var executable: String?
    /// True when the kernel marks the executable as deleted.
    package var executableDeleted: Bool
    /// The working directory as the process sees it.
    package var workingDirectory: String?
    /// The inode of the PID namespace (processes of one container share it).
    package var pidNamespace: UInt64?
    package var mountNamespace: UInt64?

    package var commandLine: String { arguments.joined(separator: " ") }
}

/// Reads the process table from a `/proc` (the host's, or a container's own when imprint runs inside it).
package struct ProcessTable {
    package var proc: String

    package init(proc: String = "/proc") { self.proc = proc }

    /// Seconds since the epoch at which the machine booted (`btime` in /proc/stat).
    package func bootTime() -> Int64? {
        guard let text = try? String(contentsOfFile: proc + "/stat", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Int64(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// Every process id in the table.
    package func pids() -> [Int32] {
        guard let dir = opendir(proc) else { return [] }
        defer { closedir(dir) }
        var out: [Int32] = []
        while let e = readdir(dir) {
            let name = Syscall.entryNameString(e)
            if let pid = Int32(name) { out.append(pid) }
        }
        return out.sorted()
    }

    /// The process `pid`, or nil when it is gone (or not readable).
    package func process(_ pid: Int32, bootTime: Int64?) -> RunningProcess? {
        let base = "\(proc)/\(pid)"
        guard let stat = ProcessTable.readSmall(base + "/stat"),
              let close = stat.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        // Fields after the command name (which may hold spaces and parentheses): state is field 3.
        let fields = stat[(close + 2)...].split(separator: 0x20).map { String(decoding: $0, as: UTF8.self) }
        guard fields.count > 19, let ppid = Int32(fields[1]), let ticks = Int64(fields[19]) else { return nil }
        let hz = Int64(sysconf(Int32(_SC_CLK_TCK)))
        let started = (bootTime ?? 0) * 1_000_000_000 + ticks * (1_000_000_000 / max(1, hz))
        let argv = (ProcessTable.readSmall(base + "/cmdline") ?? []).split(separator: 0, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        var args = argv
        if args.last == "" { args.removeLast() }
        var exe = ProcessTable.readLink(base + "/exe")
        var deleted = false
        if let e = exe, e.hasSuffix(" (deleted)") { deleted = true; exe = String(e.dropLast(10)) }
        return RunningProcess(pid: pid, parent: ppid, arguments: args, startedNanos: started, executable: exe,
                            executableDeleted: deleted, workingDirectory: ProcessTable.readLink(base + "/cwd"),
                            pidNamespace: ProcessTable.namespace(base + "/ns/pid"),
                            mountNamespace: ProcessTable.namespace(base + "/ns/mnt"))
    }

    /// Every process whose PID namespace is `namespace` (nil: every process in the table).
    package func processes(inNamespace namespace: UInt64?) -> [RunningProcess] {
        let boot = bootTime()
        return pids().compactMap { pid in
            guard let p = process(pid, bootTime: boot) else { return nil }
            if let namespace, p.pidNamespace != namespace { return nil }
            return p
        }
    }

    /// The files a process has mapped (shared objects, the executable), with the device and inode the mapping was
    /// made from and whether the kernel marks them deleted. Anonymous and pseudo mappings are left out.
    package func mappedFiles(_ pid: Int32) -> [(path: String, device: UInt64, inode: UInt64, deleted: Bool)] {
        guard let data = ProcessTable.readSmall("\(proc)/\(pid)/maps", limit: 16 << 20) else { return [] }
        var seen = Set<String>()
        var out: [(String, UInt64, UInt64, Bool)] = []
        for line in data.split(separator: 0x0A) {
            // address perms offset dev inode path
            let parts = line.split(separator: 0x20, maxSplits: 5, omittingEmptySubsequences: true)
            guard parts.count == 6 else { continue }
            var path = String(decoding: parts[5], as: UTF8.self).trimmingCharacters(in: .whitespaces)
            guard path.hasPrefix("/"), let inode = UInt64(String(decoding: parts[4], as: UTF8.self)), inode != 0 else { continue }
            var deleted = false
            if path.hasSuffix(" (deleted)") { deleted = true; path = String(path.dropLast(10)) }
            guard seen.insert(path).inserted else { continue }
            let dev = String(decoding: parts[3], as: UTF8.self).split(separator: ":")
            guard dev.count == 2, let major = UInt64(dev[0], radix: 16), let minor = UInt64(dev[1], radix: 16) else { continue }
            out.append((path, makeDevice(major, minor), inode, deleted))
        }
        return out
    }

    // MARK: helpers

    package static func readSmall(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 64 << 10)
        while out.count < limit {
            let n = buf.withUnsafeMutableBytes { Syscall.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { return out.isEmpty ? nil : out }
            if n == 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    package static func readLink(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buf, buf.count - 1)
        guard n >= 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The inode of a namespace link (`pid:[4026531836]`).
    package static func namespace(_ path: String) -> UInt64? {
        guard let l = readLink(path), let open = l.firstIndex(of: "["), let close = l.firstIndex(of: "]") else { return nil }
        return UInt64(l[l.index(after: open)..<close])
    }
}

/// glibc's makedev: the device number of (major, minor), as `st_dev` holds it.
package func makeDevice(_ major: UInt64, _ minor: UInt64) -> UInt64 {
    ((major & 0xFFFF_F000) << 32) | ((major & 0x0000_0FFF) << 8) | ((minor & 0xFFFF_FF00) << 12) | (minor & 0x0000_00FF)
}
