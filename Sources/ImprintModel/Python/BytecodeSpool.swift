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
/// and mtime alone) are kept, up to 8 MiB each. They go into one file, each at a range reserved when it begins
/// (its size is known from the tar header), so keeping a file costs one write per chunk read: no file created,
/// renamed and removed per source, which on a disk-backed `/tmp` cost more than reading the whole image. A file
/// is copied out to a path of its own only when the check asks for it. The directory is removed when the spool is
/// released.
package final class BytecodeSpool: Sendable {
    package let directory: String
    package static let maxFileSize: UInt64 = 8 << 20

    /// The file every kept file is written into.
    private let store: Int32
    private let storePath: String

    private struct State {
        /// Where the next file's range begins.
        var end: UInt64 = 0
        /// Each digest kept once: its range in the store.
        var kept: [Digest: (offset: UInt64, length: Int)] = [:]
        /// The files already copied out for the check.
        var copied: [Digest: String] = [:]
    }
    private let state = Mutex(State())

    /// Creates an empty spool in `$TMPDIR`.
    /// - Throws: when the directory or its store cannot be made.
    package init() throws {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(base)/imprint-bytecode-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw ImprintError.posix("create a temporary directory in", base)
        }
        directory = String(cString: made)
        storePath = directory + "/store"
        store = Syscall.open(storePath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if store < 0 {
            let e = errno
            rmdir(directory)
            throw ImprintError.posix("create", storePath, errno: e)
        }
    }

    deinit {
        close(store)
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A file holding content `digest`, if it was kept: copied out of the store on the first ask.
    package func path(for digest: Digest) -> String? {
        state.withLock { state in
            if let done = state.copied[digest] { return done }
            guard let range = state.kept[digest] else { return nil }
            let path = directory + "/" + digest.hex
            var bytes = [UInt8](repeating: 0, count: range.length)
            let got = bytes.withUnsafeMutableBytes { Syscall.pread(store, $0.baseAddress, range.length, off_t(range.offset)) }
            guard got == range.length else { return nil }
            guard (try? AtomicFile.write(bytes, to: path, mode: 0o600)) != nil else { return nil }
            state.copied[digest] = path
            return path
        }
    }

    /// A new file of `size` bytes being written; nil when it is larger than the spool keeps.
    package func begin(size: UInt64) -> Writer? {
        guard size <= BytecodeSpool.maxFileSize else { return nil }
        let offset = state.withLock { state in
            let at = state.end
            state.end += size
            return at
        }
        return Writer(spool: self, offset: offset, capacity: Int(size))
    }

    fileprivate func write(_ chunk: UnsafeRawBufferPointer, at offset: UInt64) -> Bool {
        Syscall.writeAll(store, chunk, at: off_t(offset)) == nil
    }

    fileprivate func keep(_ digest: Digest, offset: UInt64, length: Int) {
        state.withLock { state in
            if state.kept[digest] == nil { state.kept[digest] = (offset, length) }
        }
    }

    /// One file being written into its range of the store.
    package final class Writer {
        private let spool: BytecodeSpool
        private let offset: UInt64
        private let capacity: Int
        private var written = 0
        private var failed = false

        fileprivate init(spool: BytecodeSpool, offset: UInt64, capacity: Int) {
            self.spool = spool; self.offset = offset; self.capacity = capacity
        }

        /// Writes the next chunk; a file longer than its reserved range, or a failed write, is not kept.
        package func write(_ chunk: UnsafeRawBufferPointer) {
            guard !failed, chunk.count > 0 else { return }
            guard written + chunk.count <= capacity, spool.write(chunk, at: offset + UInt64(written)) else {
                failed = true
                return
            }
            written += chunk.count
        }

        /// Keeps the file as content `digest` (unless its writing failed).
        package func finish(_ digest: Digest) {
            if !failed { spool.keep(digest, offset: offset, length: written) }
        }
    }
}
