import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The one whole-file reader. It reads what the file holds, growing as it reads (a file whose size changes, or a
/// pipe that reports no size, costs what it actually holds), and retries interrupted calls.
package enum FileBytes {
    /// The file's bytes; nil when it does not exist or is not a regular file (a FIFO is not waited on: it is
    /// opened non-blocking and found not to be regular).
    package static func read(_ path: String) throws -> [UInt8]? {
        let fd = Syscall.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 {
            if errno == ENOENT || errno == ENOTDIR || errno == EISDIR { return nil }
            throw ImprintError.posix("open", path)
        }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw ImprintError.posix("stat", path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return try readAll(fd, sizeHint: Int64(st.st_size), path: path, what: "file")
    }

    /// Everything left to read on `fd`.
    package static func readAll(_ fd: Int32, sizeHint: Int64 = 0, path: String, what: String) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Int(clamping: max(0, min(sizeHint, 1 << 30))))
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { Syscall.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw ImprintError.posix("read \(what)", path) }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    /// The first `count` bytes of a file (fewer when it is shorter).
    package static func prefix(_ path: String, count: Int) throws -> [UInt8] {
        let fd = Syscall.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw ImprintError.posix("read", path) }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = buf.withUnsafeMutableBytes { Syscall.read(fd, $0.baseAddress! + got, count - got) } // trap-ok: a non-empty array has a base address
            if n < 0 { throw ImprintError.posix("read", path) }
            if n == 0 { break }
            got += n
        }
        return Array(buf[0..<got])
    }
}

/// Reads a whole file of any kind (a pipe such as `<(…)` too). Throws a one-line error naming it as `what`.
package func readFile(_ path: String, what: String = "file") throws -> [UInt8] {
    let fd = Syscall.open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw ImprintError.posix("read \(what)", path) }
    defer { close(fd) }
    return try FileBytes.readAll(fd, path: path, what: what)
}
