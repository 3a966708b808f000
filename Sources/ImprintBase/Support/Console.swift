import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Output for people: stdout for results, stderr for diagnostics and progress.
package enum Console {
    package static func out(_ s: String) { outRaw(Array((s + "\n").utf8)) }

    /// Writes to stdout with write(2). A reader that went away (EPIPE) ends the process quietly, as it ends
    /// coreutils (by SIGPIPE); any other failure (a full disk, a closed descriptor) is one error line and exit 2.
    package static func outRaw(_ b: [UInt8]) {
        ProgressLine.shared.clear()
        if let e = stdoutClosed ? EBADF : writeAll(1, b) {
            if e == EPIPE {
                signal(SIGPIPE, SIG_DFL)
                raise(SIGPIPE)
                exit(141)
            }
            err("imprint: error: cannot write to standard output: \(String(cString: strerror(e)))")
            exit(2)
        }
    }

    /// True when the process started with descriptor 1 closed (`>&-`); it then points at /dev/null so that no
    /// file opened later takes its number, and writing to stdout is an error.
    // why nonisolated(unsafe): set once by guardStandardDescriptors() at startup, before any thread exists.
    nonisolated(unsafe) package static var stdoutClosed = false

    /// Makes descriptors 0–2 safe before anything is opened: a closed one is pointed at /dev/null.
    package static func guardStandardDescriptors() {
        for fd: Int32 in 0...2 where fcntl(fd, F_GETFD) < 0 {
            let null = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY)
            if null >= 0 && null != fd { dup2(null, fd); close(null) }
            if fd == 1 { stdoutClosed = true }
        }
    }

    /// True under -q/--quiet: `note` prints nothing.
    // why nonisolated(unsafe): set once from the command line before any work starts, then only read.
    nonisolated(unsafe) package static var quiet = false

    /// What a command did, for people (counts, files written); silenced by -q/--quiet. Errors and findings go
    /// through `err` and are never silenced.
    package static func note(_ s: String) { if !quiet { err(s) } }

    /// Diagnostics; a failure to write them is ignored (there is nowhere left to report it).
    package static func err(_ s: String) {
        ProgressLine.shared.clear()
        _ = writeAll(2, Array((s + "\n").utf8))
    }

    /// Writes all of `bytes`; returns errno on failure.
    package static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32? {
        bytes.withUnsafeBytes { Syscall.writeAll(fd, $0) }
    }

    package static var stderrIsTTY: Bool { isatty(2) == 1 }
    package static var stdoutIsTTY: Bool { isatty(1) == 1 }
    package static var colour: Bool { stdoutIsTTY && ProcessInfo.processInfo.environment["NO_COLOR"] == nil }

}

/// The progress line of long work (hashing, reading archives and images), fed by `ProgressMeter`: on a terminal a
/// live line (files, bytes, rate, and the time left when it is known) once the work has run half a second;
/// elsewhere one line every 5 seconds once it has run 5 seconds, so a CI log shows life. Lines appear only while
/// the counters move; `--quiet` turns it off.
// why @unchecked Sendable: every mutable field is guarded by `lock`.
package final class ProgressLine: @unchecked Sendable {
    // why @unchecked: all mutable state is behind `lock`.
    package static let shared = ProgressLine()

    private let lock = NSLock()
    private var label = "imprint"
    private var shown = false
    private var running = false
    private var started = Date()
    private var lastPrinted = Date.distantPast
    private var lastSnapshot = ProgressMeter.Snapshot()
    private let tty = Console.stderrIsTTY

    /// The label for a command line's progress (`imprint verify`, `imprint history add`), or nil when the arguments
    /// before `--` ask for quiet (`-q`, `--quiet`).
    package static func label(arguments: [String]) -> String? {
        let args = arguments.prefix { $0 != "--" }
        if args.contains("-q") || args.contains("--quiet") { return nil }
        let words = Array(arguments.prefix { !$0.hasPrefix("-") }.prefix(2))
        var label = "imprint " + (words.first ?? "")
        if words.count == 2, ["history", "probe"].contains(words[0]) { label += " " + words[1] }
        return label
    }

    /// Starts the line for a command (`label`, e.g. "imprint verify"); the environment can change the quiet period
    /// and the interval of log lines (IMPRINT_PROGRESS_AFTER, IMPRINT_PROGRESS_EVERY: seconds).
    package func start(label: String) {
        lock.lock(); defer { lock.unlock() }
        guard !running else { return }
        running = true
        self.label = label
        started = Date()
        let env = ProcessInfo.processInfo.environment
        let after = env["IMPRINT_PROGRESS_AFTER"].flatMap(Double.init) ?? (tty ? 0.5 : 5)
        let every = env["IMPRINT_PROGRESS_EVERY"].flatMap(Double.init) ?? (tty ? 0.2 : 5)
        atexit { ProgressLine.shared.clear() }
        let thread = Thread { [self] in
            usleep(useconds_t(min(after, 3600) * 1_000_000))
            while true {
                self.tick()
                usleep(useconds_t(max(0.05, min(every, 3600)) * 1_000_000))
            }
        }
        thread.start()
    }

    private func tick() {
        let now = ProgressMeter.shared.snapshot()
        lock.lock(); defer { lock.unlock() }
        guard now != lastSnapshot else { return }
        lastSnapshot = now
        let elapsed = Date().timeIntervalSince(started)
        var parts = ["\(now.items) files", formatBytes(now.bytes)]
        let rate = elapsed > 0 ? Double(now.bytes) / elapsed : 0
        if rate > 0 { parts.append("\(formatBytes(UInt64(rate)))/s") }
        if now.ahead > 0, rate > 0, Double(now.ahead) / rate >= 1 { parts.append("about \(ProgressLine.duration(Double(now.ahead) / rate)) left") }
        let line = "\(label): \(parts.joined(separator: ", ")) (\(ProgressLine.duration(elapsed)))"
        if tty {
            _ = Console.writeAll(2, Array("\r\u{1B}[K\(line)".utf8))
            shown = true
        } else {
            _ = Console.writeAll(2, Array("\(line)\n".utf8))
        }
        lastPrinted = Date()
    }

    /// Removes the live line before other output (and at exit).
    package func clear() {
        lock.lock(); defer { lock.unlock() }
        if shown {
            _ = Console.writeAll(2, Array("\r\u{1B}[K".utf8))
            shown = false
        }
    }

    package static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s) s" }
        if s < 3600 { return "\(s / 60) min \(s % 60) s" }
        return "\(s / 3600) h \(s % 3600 / 60) min"
    }
}

/// Writes `bytes` to `path` atomically, or to stdout when `path` is nil or `-`.
package func writeOutput(_ bytes: [UInt8], to path: String?) throws {
    try writeOutput(chunks: [bytes], to: path)
}

/// Creates the directory an output file goes into, when it does not exist yet (`-o ../out/manifest.json`).
package func createParentDirectory(of path: String) throws {
    let dir = (path as NSString).deletingLastPathComponent
    guard !dir.isEmpty, !FileManager.default.fileExists(atPath: dir) else { return }
    do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
        throw ImprintError(.io, "cannot create the directory \(dir) for \(path): \(error.localizedDescription)")
    }
}

/// `writeOutput` for output made in chunks (a manifest of a large context), without joining them first.
package func writeOutput(chunks: [[UInt8]], to path: String?) throws {
    if let path, path != "-" {
        var st = stat()
        if stat(path, &st) == 0 && (st.st_mode & S_IFMT) != S_IFREG {
            // /dev/null, a FIFO, /dev/stdout: nothing to replace atomically.
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            if fd < 0 { throw ImprintError.posix("open", path) }
            defer { close(fd) }
            for c in chunks { try AtomicFile.writeAll(fd, c, path: path) }
            return
        }
        try createParentDirectory(of: path)
        try AtomicFile.write(to: path) { fd in for c in chunks { try AtomicFile.writeAll(fd, c, path: path) } }
    } else {
        for c in chunks { Console.outRaw(c) }
    }
}

/// Keeps `object` alive until the process exits. For trees of a whole context: freeing their nodes one by one
/// takes milliseconds per ten thousand entries that exiting the process does at once.
package func keepUntilExit(_ object: AnyObject) {
    let kept = UnsafeTransfer(object)  // only stored, never used again
    keptUntilExit.withLock { $0.append(kept) }
}

private let keptUntilExit = Mutex<[UnsafeTransfer<AnyObject>]>([])

