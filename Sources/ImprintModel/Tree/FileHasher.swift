import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Hashes many files on all cores: one worker per core, each with its own SHA-256 context and a reused 1 MiB
/// buffer, so memory does not grow with file size or count.
package enum FileHasher {
    package struct Job {
        /// The file's path as raw bytes (names need not be UTF-8).
        package let path: Bytes
        package let node: TreeNode
        package init(path: Bytes, node: TreeNode) { self.path = path; self.node = node }
        package var display: String { path.lossyString }
    }

    package static let bufferSize = 1 << 20

    /// Hashes every job's file into its node (`digest`, checked `size`).
    /// - Throws: the first failure, naming the file: unreadable, vanished, or changed size while hashed.
    package static func hash(_ jobs: [Job], workers: Int = ProcessInfo.processInfo.activeProcessorCount,
                            progress: ((Int, UInt64) -> Void)? = nil) throws {
        if jobs.isEmpty { return }
        let lock = NSLock()
        var next = 0
        var firstError: ImprintError?
        var doneFiles = 0
        var doneBytes: UInt64 = 0
        let workerCount = max(1, min(workers, jobs.count))
        // Small files dominate source trees: take them in batches to keep the lock cold.
        let batch = jobs.count > 4096 ? 32 : 1
        // Shared: next, firstError, doneFiles and doneBytes (under `lock`); each job's node is written by the one
        // worker that took the job, and read by the caller after every worker returned.
        concurrentWorkers(workerCount) { _ in
            let hasher = SHA256()
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 64)
            defer { buffer.deallocate() }
            while true {
                lock.lock()
                if firstError != nil || next >= jobs.count { lock.unlock(); return }
                let start = next
                next = min(jobs.count, next + batch)
                let end = next
                lock.unlock()
                var bytes: UInt64 = 0
                for i in start..<end {
                    do {
                        try hashFile(jobs[i], hasher: hasher, buffer: buffer)
                        bytes += jobs[i].node.size
                    } catch let e as ImprintError {
                        lock.lock(); if firstError == nil { firstError = e }; lock.unlock()
                        return
                    } catch {
                        lock.lock(); if firstError == nil { firstError = ImprintError(.io, "\(error)") }; lock.unlock()
                        return
                    }
                }
                if let progress {
                    lock.lock()
                    doneFiles += end - start
                    doneBytes += bytes
                    let (f, b) = (doneFiles, doneBytes)
                    lock.unlock()
                    progress(f, b)
                }
            }
        }
        if let firstError { throw firstError }
    }

    /// Hashes a file of at most one buffer, opened relative to its directory (no path lookup), into `node`.
    package static func hashSmallFile(dirfd: Int32, name: [CChar], display: @autoclosure () -> Bytes, node: TreeNode, hasher: SHA256,
                              buffer: UnsafeMutableRawBufferPointer) throws {
        // O_NONBLOCK: if the entry was swapped for a FIFO since the walk saw it, open must not hang.
        let fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 { throw ImprintError.posix("open", display().lossyString) }
        defer { close(fd) }
        try hashSmallFile(fd: fd, display: display(), node: node, hasher: hasher, buffer: buffer)
    }

    /// Hashes an open file of at most one buffer into `node` (whose `size` is what the file should hold).
    package static func hashSmallFile(fd: Int32, display: @autoclosure () -> Bytes, node: TreeNode, hasher: SHA256,
                              buffer: UnsafeMutableRawBufferPointer) throws {
        let expected = Int(node.size)
        var total = 0
        // One read normally returns the whole file; read one byte more than expected to notice growth.
        let want = min(buffer.count, expected + 1)
        while total < want {
            let n = Syscall.read(fd, buffer.baseAddress! + total, want - total)
            if n < 0 {
                if errno == EAGAIN { continue }
                throw ImprintError.posix("read", display().lossyString)
            }
            if n == 0 { break }
            total += n
            // A short read of a regular file is its end: skip the extra read() that would return 0.
            if total == expected && n < want - (total - n) { break }
        }
        if total != expected {
            throw ImprintError(.io, "cannot hash \(display().lossyString): it changed size while being read (\(expected) → \(total)\(total > expected ? "+" : "") bytes)")
        }
        hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<total]))
        node.digest = hasher.finish()
        ProgressMeter.shared.add(items: 1, bytes: UInt64(total))
    }

    package static func hashFile(_ job: Job, hasher: SHA256, buffer: UnsafeMutableRawBufferPointer, cache: DigestCache? = nil) throws {
        var cpath = job.path
        cpath.append(0)
        let fd = cpath.withUnsafeBufferPointer {
            open(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        }
        if fd < 0 { throw ImprintError.posix("open", job.display) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw ImprintError.posix("stat", job.display) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw ImprintError(.io, "cannot hash \(job.display): it is no longer a regular file")
        }
        let expected = job.node.size
        if UInt64(st.st_size) != expected {
            throw ImprintError(.io, "cannot hash \(job.display): it changed size while being read (\(expected) → \(st.st_size) bytes)")
        }
        if let cache, let known = cache.digest(st) {
            job.node.digest = known
            ProgressMeter.shared.add(items: 1)
            return
        }
        defer { if let cache, job.node.digest != .empty || expected == 0 { cache.store(st, job.node.digest) } }
        if expected > UInt64(bufferSize) { _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL) }
        let meter = ProgressMeter.shared
        meter.plan(bytes: expected)
        var total: UInt64 = 0
        defer { meter.add(items: 1) }
        while true {
            let n = Syscall.read(fd, buffer.baseAddress, buffer.count)
            if n < 0 { throw ImprintError.posix("read", job.display) }
            if n == 0 { break }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            total += UInt64(n)
            meter.addPlanned(bytes: UInt64(n))
            if total > expected { break }
        }
        let digest = hasher.finish()
        if total != expected {
            throw ImprintError(.io, "cannot hash \(job.display): it changed size while being read (\(expected) → \(total)+ bytes)")
        }
        job.node.digest = digest
    }
}
