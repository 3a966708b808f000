import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes a file so that readers see either the old file or the complete new one, never a partial one:
/// a temporary file in the same directory, `fsync`, then `rename`.
package enum AtomicFile {
    package static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
        try write(to: path, mode: mode) { fd in try writeAll(fd, bytes, path: path) }
    }

    /// Calls `body` with a descriptor on a temporary file; renames it over `path` only if `body` succeeds.
    package static func write(to path: String, mode: mode_t = 0o644, _ body: (Int32) throws -> Void) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let base = (path as NSString).lastPathComponent
        // Created with the final mode, so the kernel applies the process's umask: no umask is read or set (that
        // would race with other threads creating files).
        var fd: Int32 = -1
        var tmp = ""
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<100 {
            tmp = (dir.isEmpty ? "." : dir) + "/.\(base).tmp-" + String(rng.next() & 0xFFFF_FFFF_FFFF, radix: 36)
            fd = Syscall.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
            if fd >= 0 || errno != EEXIST { break }
        }
        if fd < 0 { throw ImprintError.posix("create a temporary file for", path) }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        do {
            try body(fd)
            if fsync(fd) != 0 { throw ImprintError.posix("sync", path) }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        if rename(tmp, path) != 0 { throw ImprintError.posix("write", path) }
        ok = true
    }

    /// Appends `bytes` to `path` (created when missing), as a log or a CI step summary is written; an error names it.
    package static func append(_ bytes: [UInt8], to path: String) throws {
        let fd = Syscall.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw ImprintError.posix("append to", path) }
        defer { close(fd) }
        try writeAll(fd, bytes, path: path)
    }

    package static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        try bytes.withUnsafeBytes { try writeAll(fd, $0, path: path) }
    }

    package static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, path: String) throws {
        if let e = Syscall.writeAll(fd, buffer) { throw ImprintError.posix("write", path, errno: e) }
    }
}

/// `mkdir -p`, with a one-line error.
package func makeDirectories(_ path: String) throws {
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw ImprintError(.io, "cannot create directory \(path): \((error as NSError).localizedDescription)")
    }
}
