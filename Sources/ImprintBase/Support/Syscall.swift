#if canImport(Glibc)
import Glibc
#endif

/// The system-call layer: the one place an interrupted call (`EINTR`) is retried and a short write continued.
/// Every other file calls through here instead of writing its own loop (a test greps for strays).
package enum Syscall {
    /// Calls `call` again while it fails with `EINTR`; otherwise its result, with `errno` as the call left it.
    @inline(__always)
    package static func retrying<T: SignedInteger>(_ call: () -> T) -> T {
        while true {
            let r = call()
            if r == -1 && errno == EINTR { continue }
            return r
        }
    }

    /// `open(2)`, retried on `EINTR`.
    package static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0) -> Int32 {
        retrying { Glibc.open(path, flags, mode) }
    }

    /// `read(2)`, retried on `EINTR`.
    package static func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
        retrying { Glibc.read(fd, buffer, count) }
    }

    /// `pread(2)`, retried on `EINTR`.
    package static func pread(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int, _ offset: off_t) -> Int {
        retrying { Glibc.pread(fd, buffer, count, offset) }
    }

    /// Writes all of `buffer` to `fd`, continuing after short writes and `EINTR`.
    /// - Returns: nil, or the `errno` of the write that failed.
    package static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) -> Int32? {
        var off = 0
        while off < buffer.count {
            // why: off < buffer.count, so the buffer is not empty and has a base address.
            let n = retrying { Glibc.write(fd, buffer.baseAddress! + off, buffer.count - off) }
            if n < 0 { return errno }
            off += n
        }
        return nil
    }

    /// Writes all of `buffer` to `fd` at `offset` (`pwrite(2)`, the file offset untouched), continuing after short
    /// writes and `EINTR`.
    /// - Returns: nil, or the `errno` of the write that failed.
    package static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at offset: off_t) -> Int32? {
        var off = 0
        while off < buffer.count {
            // why: off < buffer.count, so the buffer is not empty and has a base address.
            let n = retrying { Glibc.pwrite(fd, buffer.baseAddress! + off, buffer.count - off, offset + off_t(off)) }
            if n < 0 { return errno }
            off += n
        }
        return nil
    }

    /// `poll(2)` until a descriptor is ready or `deadline` (monotonic nanoseconds, `remainingMs` gives what is
    /// left) passes; an interrupted wait resumes with the time that is left.
    /// - Returns: poll's result: > 0 ready, 0 timed out, -1 failed (`errno` set, never `EINTR`).
    package static func poll(_ fds: inout [pollfd], remainingMs: () -> Int32) -> Int32 {
        while true {
            let rc = fds.withUnsafeMutableBufferPointer { Glibc.poll($0.baseAddress, nfds_t($0.count), remainingMs()) }
            if rc == -1 && errno == EINTR { continue }
            return rc
        }
    }

    /// Whether a non-blocking socket call that failed with `e` is still under way (wait for the descriptor and
    /// call again), as opposed to failed.
    package static func inProgress(_ e: Int32) -> Bool { e == EINPROGRESS || e == EAGAIN || e == EWOULDBLOCK || e == EINTR }

    /// `waitpid(2)`, retried on `EINTR`.
    package static func waitpid(_ pid: pid_t, _ status: inout Int32, _ options: Int32) -> pid_t {
        retrying { Glibc.waitpid(pid, &status, options) }
    }

    /// `accept(2)`, retried on `EINTR`.
    package static func accept(_ fd: Int32) -> Int32 {
        retrying { Glibc.accept(fd, nil, nil) }
    }

    /// The name of the entry `readdir(3)` returned, read where it lies. `d_name` must never be copied out as a
    /// value: the record is only `d_reclen` bytes long, so the field's declared 256 bytes can run past the end of
    /// libc's buffer into an unmapped page, which crashes once a listing (a wide directory, a busy `/proc`, a
    /// process's open descriptors) fills that buffer. Every listing reads names through here (a test greps for
    /// strays).
    package static func entryName(_ entry: UnsafeMutablePointer<dirent>) -> UnsafeRawBufferPointer {
        // why: d_name is a field of the record readdir returned, NUL-terminated within d_reclen.
        let start = UnsafeRawPointer(entry) + nameOffset
        return UnsafeRawBufferPointer(start: start, count: strlen(start.assumingMemoryBound(to: CChar.self)))
    }

    /// Where `d_name` lies in a `dirent` (worked out once, not per entry).
    private static let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!

    /// `entryName` as a string (names under `/proc` are ASCII).
    package static func entryNameString(_ entry: UnsafeMutablePointer<dirent>) -> String {
        String(decoding: entryName(entry), as: UTF8.self)
    }
}
