import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process started with `posix_spawnp`, its stdout and stderr read through pipes so they can be
/// hashed and streamed at once.
// why @unchecked Sendable: pid is set once before the object is shared; the reaped status is guarded by `lock`.
package final class ChildProcess: @unchecked Sendable {
    // why @unchecked: `pid` is written once before the object is shared; the rest is guarded by `lock`.

    /// How the child ended.
    package enum Termination: Equatable, Sendable {
        case exited(Int32)
        case signaled(Int32)
    }

    package enum Stream: Sendable { case stdout, stderr }

    package let argv: [String]
    package private(set) var pid: pid_t = 0
    /// The child leads its own process group (so a whole `sh -c` tree can be signalled at once).
    package let ownProcessGroup: Bool

    /// Spawns `argv`. `environment` replaces the environment; `stdinNull` gives the child /dev/null as stdin.
    /// `onOutput` is called from reader threads with each chunk read, in order per stream.
    /// - Throws: `ImprintError` when the program cannot be started (not found, not executable).
    package init(argv: [String], environment: [String: String], ownProcessGroup: Bool, stdinNull: Bool,
                onOutput: @escaping (Stream, UnsafeRawBufferPointer) -> Void) throws {
        precondition(!argv.isEmpty)
        self.argv = argv
        self.ownProcessGroup = ownProcessGroup
        // pipe2 is not visible from Swift (it needs _GNU_SOURCE): pipe, then FD_CLOEXEC, all under one lock
        // with the spawn, so a step spawned on another thread cannot inherit this step's pipe ends (it would
        // hold them open and this step's readers would never see end of file).
        ChildProcess.spawnLock.lock()
        defer { ChildProcess.spawnLock.unlock() }
        var outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
        guard pipe(&outPipe) == 0 else { throw ImprintError.posix("create a pipe for", argv[0]) }
        guard pipe(&errPipe) == 0 else {
            close(outPipe[0]); close(outPipe[1])
            throw ImprintError.posix("create a pipe for", argv[0])
        }
        var fa = posix_spawn_file_actions_t()
        var attr = posix_spawnattr_t()
        // Every call's result is checked: a spawn with half its set-up would run the child with the wrong streams
        // or signals.
        func check(_ rc: Int32, _ what: String) throws {
            if rc != 0 { throw ImprintError(.failure, "cannot run \(argv[0]): \(what) failed: \(String(cString: strerror(rc)))") }
        }
        do {
            for fd in outPipe + errPipe where fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 { try check(errno, "fcntl(FD_CLOEXEC)") }
            try check(posix_spawn_file_actions_init(&fa), "posix_spawn_file_actions_init")
        } catch {
            for fd in outPipe + errPipe { close(fd) }
            throw error
        }
        defer { posix_spawn_file_actions_destroy(&fa) }
        do {
            try check(posix_spawnattr_init(&attr), "posix_spawnattr_init")
        } catch {
            for fd in outPipe + errPipe { close(fd) }
            throw error
        }
        defer { posix_spawnattr_destroy(&attr) }
        do {
            if stdinNull { try check(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0), "posix_spawn_file_actions_addopen") }
            try check(posix_spawn_file_actions_adddup2(&fa, outPipe[1], 1), "posix_spawn_file_actions_adddup2")
            try check(posix_spawn_file_actions_adddup2(&fa, errPipe[1], 2), "posix_spawn_file_actions_adddup2")
            // imprint ignores the signals it forwards (DispatchSource needs that); the child must get the defaults
            // back, and an empty mask, or it could not be interrupted.
            var defaults = sigset_t()
            sigemptyset(&defaults)
            for s in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE] { sigaddset(&defaults, s) }
            try check(posix_spawnattr_setsigdefault(&attr, &defaults), "posix_spawnattr_setsigdefault")
            var mask = sigset_t()
            sigemptyset(&mask)
            try check(posix_spawnattr_setsigmask(&attr, &mask), "posix_spawnattr_setsigmask")
            var flags = Int32(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
            if ownProcessGroup {
                flags |= Int32(POSIX_SPAWN_SETPGROUP)
                try check(posix_spawnattr_setpgroup(&attr, 0), "posix_spawnattr_setpgroup")
            }
            try check(posix_spawnattr_setflags(&attr, Int16(flags)), "posix_spawnattr_setflags")
        } catch {
            for fd in outPipe + errPipe { close(fd) }
            throw error
        }

        let cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cenv: [UnsafeMutablePointer<CChar>?] = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cargs { free(p) }; for p in cenv { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawnp(&child, argv[0], &fa, &attr, cargs, cenv)
        close(outPipe[1]); close(errPipe[1])
        if rc != 0 {
            close(outPipe[0]); close(errPipe[0])
            throw ImprintError(rc == ENOENT ? .notFound : .failure,
                               "cannot run \(argv[0]): \(String(cString: strerror(rc)))")
        }
        pid = child
        readers.enter(); readers.enter()
        startReader(fd: outPipe[0], stream: .stdout, onOutput)
        startReader(fd: errPipe[0], stream: .stderr, onOutput)
    }

    private static let spawnLock = NSLock()
    private let readers = DispatchGroup()
    private let lock = NSLock()
    private var reaped: Termination?

    private func startReader(fd: Int32, stream: Stream, _ onOutput: @escaping (Stream, UnsafeRawBufferPointer) -> Void) {
        // onOutput runs on this reader thread (one per stream); callers make it safe to run beside the other
        // stream's (it writes whole chunks to a descriptor, or appends under a lock).
        let onOutput = UnsafeTransfer(onOutput)
        let t = Thread { [readers] in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
            defer { buffer.deallocate(); close(fd); readers.leave() }
            while true {
                let n = Syscall.read(fd, buffer.baseAddress, buffer.count)
                if n <= 0 { return }
                onOutput.value(stream, UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            }
        }
        t.start()
    }

    /// Sends `signal` to the child (to its whole process group when it has one). Harmless after it ended.
    package func kill(_ signal: Int32) {
        lock.lock(); defer { lock.unlock() }
        guard reaped == nil else { return }
        _ = Glibc.kill(ownProcessGroup ? -pid : pid, signal)
    }

    /// Waits for the child to exit and for both output streams to reach end of file.
    package func wait() -> Termination {
        var status: Int32 = 0
        if Syscall.waitpid(pid, &status, 0) < 0 { status = 0x7f }
        let t: Termination = (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
        lock.lock(); reaped = t; lock.unlock()
        // Background grandchildren may keep the pipes open; stop waiting for them once the child is gone.
        if readers.wait(timeout: .now() + 5) == .timedOut, ownProcessGroup { _ = Glibc.kill(-pid, SIGKILL) }
        readers.wait()
        return t
    }
}

/// Turns SIGINT, SIGTERM and SIGHUP into calls of a handler (on a private queue) instead of process death,
/// so imprint can forward them to its children and record the steps as interrupted.
package final class SignalForwarder {
    private var sources: [DispatchSourceSignal] = []
    private let queue = DispatchQueue(label: "imprint.signals")

    package init(signals: [Int32] = [SIGINT, SIGTERM, SIGHUP], handler: @escaping (Int32) -> Void) {
        for s in signals {
            signal(s, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: s, queue: queue)
            src.setEventHandler { handler(s) }
            src.resume()
            sources.append(src)
        }
    }

    deinit { for s in sources { s.cancel() } }
}
