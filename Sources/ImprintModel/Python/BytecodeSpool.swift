import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The Python sources and timestamp pycs of a streamed source (a tar stream, an image's layers), kept on disk by
/// content digest while it is read, so that the bytecode-equivalence check — which compiles a source and compares
/// the code with its pyc — runs on every kind of target, not only on directories.
///
/// Only `.py` files and `__pycache__/*.pyc` files whose header says timestamp (the kind CPython trusts on size
/// and mtime alone) are kept, each once, up to 8 MiB each. The directory is removed when the spool is released.
package final class BytecodeSpool: Sendable {
    package let directory: String
    /// The digests kept (each file is written by one writer, then renamed in under this lock).
    private let stored = Mutex<Set<Digest>>([])
    package static let maxFileSize: UInt64 = 8 << 20

    /// Creates an empty spool in `$TMPDIR`.
    /// - Throws: when the directory cannot be made.
    package init() throws {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(base)/imprint-bytecode-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw ImprintError.posix("create a temporary directory in", base)
        }
        directory = String(cString: made)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// The file holding content `digest`, if it was kept.
    package func path(for digest: Digest) -> String? {
        stored.withLock { $0.contains(digest) } ? directory + "/" + digest.hex : nil
    }

    /// A new file being written; nil when one cannot be created (the check then reports the pair unverifiable).
    package func begin() -> Writer? {
        var template = Array("\(directory)/part-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { return nil }
        return Writer(spool: self, fd: fd, path: String(cString: template.withUnsafeBufferPointer { $0.baseAddress! }))
    }

    fileprivate func keep(_ temp: String, as digest: Digest) {
        stored.withLock { stored in
            if stored.contains(digest) || rename(temp, directory + "/" + digest.hex) != 0 {
                unlink(temp)
            } else {
                stored.insert(digest)
            }
        }
    }

    /// One file being written into the spool.
    package final class Writer {
        private let spool: BytecodeSpool
        private let fd: Int32
        private let path: String
        private var failed = false

        fileprivate init(spool: BytecodeSpool, fd: Int32, path: String) { self.spool = spool; self.fd = fd; self.path = path }

        package func write(_ chunk: UnsafeRawBufferPointer) {
            guard !failed, chunk.count > 0 else { return }
            do { try AtomicFile.writeAll(fd, chunk, path: path) } catch { failed = true }
        }

        /// Keeps the file as content `digest` (or drops it when writing failed).
        package func finish(_ digest: Digest) {
            close(fd)
            if failed { unlink(path) } else { spool.keep(path, as: digest) }
        }

        /// Drops the file.
        package func abandon() {
            close(fd)
            unlink(path)
        }
    }
}
