import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Walks a directory the way Docker's builder reads a build context and returns its tree.
///
/// - Symlinks are recorded with their target text and never followed.
/// - Empty directories are recorded.
/// - FIFOs and device nodes are recorded as entries (type, mode, device numbers) without content, as BuildKit
///   and buildah send them. A socket is sent by BuildKit as an empty regular file (fsutil clears the socket bit and
///   then fails to open it); the legacy builder skips it. Both are reported.
/// - With exceptions in the ignore file, BuildKit's sender checks each listed file again when it opens it
///   (`MatchesOrParentMatches`); a file that check excludes arrives empty, and is recorded empty and reported.
/// - With an ignore file, excluded entries are left out; an excluded directory is entered only when an
///   exception could re-include something below it, and it appears only if something below it is included.
///
/// The walk runs on all cores: workers take directories from a shared queue, hash small files on the spot
/// through `openat` (no path lookups), and queue large files as jobs of their own so big files spread over
/// the cores too. While a worker waits for work, the worker listing a directory hands it small files it has
/// opened, so one directory of many files (a flat tree, a `locale-data/`) is hashed on all cores as well.
package struct ContextWalker {
    package var ignore: DockerIgnore
    /// Context-relative paths left out of the walk (the manifest imprint writes into the context itself).
    /// A directory that ends up empty only because of them is left out as well.
    package var excludedPaths: Set<Bytes>
    /// Record uid, gid and mtime (for plain directory sources; never part of a digest).
    package var recordOwnership: Bool
    /// Record each file's modification time in nanoseconds (`TreeNode.mtimeNanos`).
    package var recordFileTimes = false
    package var workers: Int
    package var progress: ((Int, UInt64) -> Void)?
    /// Digests of files seen before (same device, inode, size, mtime and ctime): those are not read again.
    package var digestCache: DigestCache?

    /// What the walk skipped or noticed, for hygiene reporting.
    package struct Notes {
        package var sockets: [Bytes] = []
        /// Files BuildKit lists but then refuses to open through its filter, so it sends them empty.
        package var sentEmpty: [Bytes] = []
    }

    package init(ignore: DockerIgnore = .empty, excludedPaths: Set<Bytes> = [], recordOwnership: Bool = false,
                workers: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.ignore = ignore
        self.excludedPaths = excludedPaths
        self.recordOwnership = recordOwnership
        self.workers = workers
    }

    /// Walks `root` and hashes every included regular file.
    /// - Throws: `ImprintError` naming the path when the root is missing or not a directory, or when a
    ///   directory or file cannot be read.
    package func walk(_ root: String) throws -> (tree: Tree, notes: Notes) {
        var st = stat()
        if stat(root, &st) != 0 { throw ImprintError.posix("read context", root) }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw ImprintError(.badInput, "cannot read context \(root): not a directory")
        }
        let base = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
        if LegacyContext.applies(ignore) { try LegacyContext.validate(base, ignore: ignore) }
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw ImprintError.posix("open directory", root) }
        let tree = Tree(root: .directory(mode: UInt32(st.st_mode) & 0o7777))
        if recordOwnership { tree.root.uid = st.st_uid; tree.root.gid = st.st_gid; tree.root.mtime = Int64(st.st_mtim.tv_sec) }
        let state = WalkState(self)
        WalkState.heldDirectories.add(1, ordering: .relaxed)
        state.rootLength = base.utf8.count
        // Without exclusions nothing is pruned after the walk, so the workers can finish each directory's digest
        // as soon as everything below it is hashed (bottom-up, on all cores). Otherwise pruning may still drop
        // directories, and digests are computed once the tree is final.
        let digestsInWalk = excludedPaths.isEmpty && !ignore.hasExceptions
        let rootTask = digestsInWalk ? DirTask(node: tree.root, parent: nil) : nil
        state.queue.append(.directory(DirJob(fd: fd, relative: [], absolute: Array(base.utf8), node: tree.root, parentInfo: nil, task: rootTask)))
        state.run(workers: max(1, workers))
        if let e = state.error { throw e }
        if !digestsInWalk || state.cut != nil {
            if let cut = state.cut { LegacyContext.cut(tree, at: cut, provisional: state.provisional) }
            ContextWalker.prune(tree.root, relative: [], provisional: state.provisional, excludedPaths: excludedPaths)
            tree.computeDigests()
        }
        return (tree, Notes(sockets: state.sockets.sorted { $0.lexicographicallyPrecedes($1) },
                            sentEmpty: state.sentEmpty.sorted { $0.lexicographicallyPrecedes($1) }))
    }

    /// Drops directories that exist only as a way down (excluded but entered) when nothing below was included,
    /// and directories left empty only by `excludedPaths`. Returns whether `dir` keeps any child.
    @discardableResult
    private static func prune(_ dir: TreeNode, relative: Bytes, provisional: Set<ObjectIdentifier>,
                              excludedPaths: Set<Bytes>) -> Bool {
        let children = dir.sortedChildren
        var dropped = Set<ObjectIdentifier>()
        for (name, child) in children where child.type == .directory {
            let rel = relative.appendingPath(name)
            let keeps = prune(child, relative: rel, provisional: provisional, excludedPaths: excludedPaths)
            if !keeps {
                if provisional.contains(ObjectIdentifier(child))
                    || (!excludedPaths.isEmpty && excludedPaths.contains(where: { $0.isPath(under: rel) && $0 != rel })) {
                    dropped.insert(ObjectIdentifier(child))
                }
            }
        }
        if !dropped.isEmpty { dir.setSortedChildren(children.filter { !dropped.contains(ObjectIdentifier($0.node)) }) }
        return dir.childCount > 0
    }

    /// A directory whose digest the workers compute once all its children are final.
    // why @unchecked Sendable: `pending` is atomic; the node is finished by the one worker that drops it to zero.
    package final class DirTask: @unchecked Sendable {
        // why @unchecked: `node` (and the children it lists) is written by the worker that lists the directory
        // and by those hashing its large files, handed-off files and subdirectories, each before a releasing
        // decrement of `pending`; only the worker whose decrement reaches zero reads them, after that (acquiring)
        // decrement.
        package let node: TreeNode
        package let parent: DirTask?
        /// Children not final yet, plus one for the listing of the directory itself.
        package let pending = Atomic<Int>(1)

        package init(node: TreeNode, parent: DirTask?) { self.node = node; self.parent = parent }
    }

    package struct DirJob {
        /// The directory, opened when it was found; -1 when it is opened by its path when listed (past
        /// `WalkState.heldDirectoryBudget`).
        package var fd: Int32
        package var relative: Bytes
        package var absolute: Bytes
        package var node: TreeNode
        package var parentInfo: DockerIgnore.MatchInfo?
        package var task: DirTask?
    }

    /// A small file opened by the worker listing its directory, handed to another worker to hash.
    package struct OpenFile {
        package var fd: Int32
        /// The directory's absolute path and the file's name, joined only for a message.
        package var directory: Bytes
        package var name: Bytes
        package var node: TreeNode
        /// The file's stat, for the digest cache.
        package var fileStat: stat
        package var task: DirTask?

        package init(fd: Int32, directory: Bytes, name: Bytes, node: TreeNode, fileStat: stat, task: DirTask?) {
            self.fd = fd; self.directory = directory; self.name = name; self.node = node; self.fileStat = fileStat; self.task = task
        }
    }

    package enum Job {
        case directory(DirJob)
        case largeFile(path: Bytes, node: TreeNode, task: DirTask?)
        case openFile(OpenFile)
    }

    /// Shared state of one walk. Every node is mutated by one worker at a time: the one processing its parent, and
    /// for a handed-off file, after that worker's last write, the one it was handed to.
    package final class WalkState: @unchecked Sendable {  // why: shared fields are atomics or guarded by `cond`
        package let walker: ContextWalker
        package let cond = NSCondition()
        package var queue: [Job] = []
        /// Files handed off (`handOff`): taken before any other job, since each holds a descriptor.
        package var files: [OpenFile] = []
        /// The walk's worker count, set before the workers start.
        package var workerCount = 1
        package var busy = 0
        package var error: ImprintError?
        package var sockets: [Bytes] = []
        package var sentEmpty: [Bytes] = []
        package var provisional = Set<ObjectIdentifier>()
        /// Where the legacy builder's walk ends (a pattern that fails), the earliest in walk order.
        package var cut: Bytes?
        package var filesDone = 0
        package var bytesDone: UInt64 = 0
        /// The byte length of the walked root's path, set before the workers start.
        package var rootLength = 0
        /// Queued directories holding a descriptor, in every walk of the process (a fleet round walks many
        /// containers at once). Past the budget a directory is opened again by its path when it is listed, so a wide
        /// tree (thousands of sibling directories) or many walks stay far below the descriptor limit (1,024 by
        /// default) instead of failing with "Too many open files".
        package static let heldDirectories = Atomic<Int>(0)
        package static let heldDirectoryBudget = 256
        /// Open files handed to other workers and not hashed yet, in every walk of the process (each holds a
        /// descriptor), and how many there may be.
        package static let heldFiles = Atomic<Int>(0)
        package static let heldFileBudget = 128
        /// Workers of this walk waiting for a job, and handed-off files of this walk in its queue.
        package let idle = Atomic<Int>(0)
        package let queuedFiles = Atomic<Int>(0)

        package init(_ walker: ContextWalker) { self.walker = walker }

        package func run(workers: Int) {
            workerCount = workers
            concurrentWorkers(workers) { _ in
                let hasher = SHA256()
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: FileHasher.bufferSize, alignment: 64)
                defer { buffer.deallocate() }
                var scratch = Scratch()
                while let job = take() {
                    do {
                        switch job {
                        case .directory(let d): try process(d, hasher: hasher, buffer: buffer, scratch: &scratch)
                        case .largeFile(let path, let node, let task):
                            try FileHasher.hashFile(FileHasher.Job(path: path, node: node), hasher: hasher, buffer: buffer, cache: walker.digestCache)
                            report(files: 1, bytes: node.size)
                            if let task { complete(task, hasher: hasher, record: &scratch.record) }
                        case .openFile(let file):
                            try hash(file, hasher: hasher, buffer: buffer)
                            if let task = file.task { complete(task, hasher: hasher, record: &scratch.record) }
                        }
                    } catch let e as ImprintError {
                        fail(e)
                    } catch {
                        fail(ImprintError(.io, "\(error)"))
                    }
                    finish()
                }
            }
            // Close directories and files left in the queues after a failure.
            for case .directory(let d) in queue where d.fd >= 0 {
                close(d.fd)
                Self.heldDirectories.subtract(1, ordering: .relaxed)
            }
            for file in files {
                close(file.fd)
                Self.heldFiles.subtract(1, ordering: .relaxed)
            }
        }

        /// Hashes a file another worker opened and handed over (`handOff`), and closes it.
        private func hash(_ file: OpenFile, hasher: SHA256, buffer: UnsafeMutableRawBufferPointer) throws {
            queuedFiles.subtract(1, ordering: .relaxed)
            defer {
                close(file.fd)
                Self.heldFiles.subtract(1, ordering: .relaxed)
            }
            try FileHasher.hashSmallFile(fd: file.fd, display: file.directory.appendingPath(file.name), node: file.node,
                                         hasher: hasher, buffer: buffer)
            walker.digestCache?.store(file.fileStat, file.node.digest)
            report(files: 1, bytes: file.node.size)
        }

        /// Gives an opened small file to another worker instead of hashing it here, when one waits for work (or
        /// handed-off files are being taken: a few are kept ready, two per worker): so the worker listing a
        /// directory of many files is not the only one hashing them. Within a budget of open descriptors for the
        /// whole process. False when the file stays here (an empty one always does).
        private func handOff(_ fd: Int32, _ name: Bytes, in job: DirJob, node: TreeNode, _ st: stat) -> Bool {
            let queued = queuedFiles.load(ordering: .relaxed)
            guard node.size > 0, queued < 2 * workerCount, idle.load(ordering: .relaxed) > 0 || queued > 0 else { return false }
            if Self.heldFiles.add(1, ordering: .relaxed).newValue > Self.heldFileBudget {
                Self.heldFiles.subtract(1, ordering: .relaxed)
                return false
            }
            queuedFiles.add(1, ordering: .relaxed)
            // Counted before the job is queued: the listing's own count keeps the directory open until it ends.
            job.task?.pending.add(1, ordering: .relaxed)
            let file = OpenFile(fd: fd, directory: job.absolute, name: name, node: node, fileStat: st, task: job.task)
            cond.lock(); files.append(file); cond.signal(); cond.unlock()
            return true
        }

        private func take() -> Job? {
            cond.lock(); defer { cond.unlock() }
            while true {
                if error != nil { return nil }
                if let f = files.popLast() { busy += 1; return .openFile(f) }
                if let j = queue.popLast() { busy += 1; return j }
                if busy == 0 { cond.broadcast(); return nil }
                idle.add(1, ordering: .relaxed)
                cond.wait()
                idle.subtract(1, ordering: .relaxed)
            }
        }

        private func finish() {
            cond.lock(); busy -= 1; cond.broadcast(); cond.unlock()
        }

        private func push(_ jobs: [Job]) {
            guard !jobs.isEmpty else { return }
            cond.lock(); queue.append(contentsOf: jobs); cond.broadcast(); cond.unlock()
        }

        private func fail(_ e: ImprintError) {
            cond.lock(); if error == nil { error = e }; cond.broadcast(); cond.unlock()
        }

        private func report(files: Int, bytes: UInt64) {
            guard let progress = walker.progress else { return }
            cond.lock(); filesDone += files; bytesDone += bytes; let (f, b) = (filesDone, bytesDone); cond.unlock()
            progress(f, b)
        }

        /// Per-worker buffers reused for every directory.
        package struct Scratch {
            package var record: [UInt8] = []
            /// The entry name as a C string (NAME_MAX is 255).
            package var cname = [CChar](repeating: 0, count: 512)
        }

        /// One child of `task` is final: finishes the digests of the directories this completes, bottom-up.
        private func complete(_ task: DirTask, hasher: SHA256, record: inout [UInt8]) {
            var t: DirTask? = task
            while let cur = t {
                if cur.pending.subtract(1, ordering: .acquiringAndReleasing).newValue != 0 { return }
                Tree.digestDirectory(cur.node, hasher: hasher, record: &record)
                t = cur.parent
            }
        }

        /// What one directory's entries add up to, as `process` goes through them.
        private struct DirectoryBatch {
            var entries: [(name: Bytes, node: TreeNode)] = []
            var newJobs: [Job] = []
            /// Files hashed here, and their bytes (for the progress report).
            var files = 0
            var bytes: UInt64 = 0
            /// Children finished by jobs of their own (subdirectories, large files): the directory's digest waits.
            var asyncChildren = 0

            mutating func hashed(_ node: TreeNode) { files += 1; bytes += node.size }
            mutating func queue(_ job: Job) { asyncChildren += 1; newJobs.append(job) }
        }

        /// What every entry of a directory is checked against, decided once per directory.
        private struct EntryRules {
            /// The context-relative path is built only when something looks at it (most walks have no patterns).
            var needsRelative: Bool
            /// The sender's second look when it opens a file (only exceptions can make it disagree with the walk).
            var checkOnOpen: Bool
            /// A pattern error ends the legacy builder's walk instead of failing it (`LegacyContext`).
            var legacyCut: Bool
        }

        /// Lists one directory: each entry is left out, hashed here, or queued as a job of its own; then the
        /// directory's children are set and, when nothing waits, its digest finished.
        private func process(_ job: DirJob, hasher: SHA256, buffer: UnsafeMutableRawBufferPointer,
                             scratch: inout Scratch) throws {
            let fd: Int32
            if job.fd >= 0 {
                fd = job.fd
                Self.heldDirectories.subtract(1, ordering: .relaxed)
            } else {
                fd = ContextListing.withCString(job.absolute) { open($0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                if fd < 0 { throw ImprintError.posix("open directory", job.absolute.lossyString) }
            }
            guard let dir = fdopendir(fd) else {
                let e = errno
                close(fd)
                throw ImprintError.posix("read directory", job.absolute.lossyString, errno: e)
            }
            defer { closedir(dir) }
            let dfd = dirfd(dir)
            let names = try sortedNames(dir, job)
            let ignore = walker.ignore
            let needsRelative = !walker.excludedPaths.isEmpty || !ignore.patterns.isEmpty
            let rules = EntryRules(needsRelative: needsRelative,
                                   checkOnOpen: ignore.semantics.checksAgainOnOpen && ignore.hasExceptions,
                                   legacyCut: LegacyContext.applies(ignore))
            var batch = DirectoryBatch()
            batch.entries.reserveCapacity(names.count)
            do {
                for (name, dtype) in names {
                    let goOn = try visit(name, dtype, in: job, dfd: dfd, rules: rules, batch: &batch,
                                         hasher: hasher, buffer: buffer, scratch: &scratch)
                    if !goOn { break }
                }
            } catch {
                // The subdirectories opened for jobs that will never be queued.
                for case .directory(let d) in batch.newJobs where d.fd >= 0 {
                    close(d.fd)
                    Self.heldDirectories.subtract(1, ordering: .relaxed)
                }
                throw error
            }
            finishListing(job, batch, hasher: hasher, scratch: &scratch)
        }

        /// The directory's entry names and readdir types, without `.` and `..`, sorted by their bytes once here so
        /// the tree never needs a dictionary or a sort of its own.
        private func sortedNames(_ dir: OpaquePointer, _ job: DirJob) throws -> [(name: Bytes, type: UInt8)] {
            var names: [(name: Bytes, type: UInt8)] = []
            while true {
                errno = 0
                guard let ent = readdir(dir) else {
                    if errno != 0 { throw ImprintError.posix("read directory", job.absolute.lossyString) }
                    break
                }
                let raw = Syscall.entryName(ent)
                if raw.first == 0x2E && (raw.count == 1 || (raw.count == 2 && raw[1] == 0x2E)) { continue }  // . and ..
                names.append((Bytes(raw), ent.pointee.d_type))
            }
            names.sort { a, b in
                a.name.withUnsafeBufferPointer { pa in
                    b.name.withUnsafeBufferPointer { pb in
                        let c = memcmp(pa.baseAddress!, pb.baseAddress!, min(pa.count, pb.count))
                        return c != 0 ? c < 0 : pa.count < pb.count
                    }
                }
            }
            return names
        }

        /// One entry: whether the builder sends it (the ignore rules, the sender's second look), then its node.
        /// Returns false when the walk of this directory ends here (the legacy builder's pattern error).
        private func visit(_ name: Bytes, _ dtype: UInt8, in job: DirJob, dfd: Int32, rules: EntryRules,
                           batch: inout DirectoryBatch, hasher: SHA256, buffer: UnsafeMutableRawBufferPointer,
                           scratch: inout Scratch) throws -> Bool {
            // Paths longer than the kernel's PATH_MAX cannot be sent by a builder, and would make a manifest
            // no reader accepts.
            if job.absolute.count + 1 + name.count - rootLength > 4095 {
                throw ImprintError.badInput("cannot read context: \(Array(job.absolute.appendingPath(name).prefix(120)).lossyString)…: a path longer than the kernel's PATH_MAX (4096)")
            }
            let rel = rules.needsRelative ? job.relative.appendingPath(name) : []
            if rules.needsRelative && walker.excludedPaths.contains(rel) { return true }
            name.withUnsafeBufferPointer { src in
                scratch.cname.withUnsafeMutableBufferPointer { dst in
                    // why: names come from readdir, so they are at most NAME_MAX (255) bytes and fit with the NUL.
                    UnsafeMutableRawPointer(dst.baseAddress!).copyMemory(from: src.baseAddress!, byteCount: src.count)
                    dst[src.count] = 0
                }
            }
            let cname = scratch.cname
            let ignore = walker.ignore
            let isExcluded: Bool, info: DockerIgnore.MatchInfo
            do {
                (isExcluded, info) = rules.needsRelative ? try ignore.matches(rel, parent: job.parentInfo) : (false, [])
            } catch where rules.legacyCut {
                // The legacy builder logs the pattern error and ends its walk here (`LegacyContext`).
                cond.lock()
                if cut.map({ LegacyContext.precedes(rel, $0) }) ?? true { cut = rel }
                cond.unlock()
                return false
            }
            if !isExcluded && rules.checkOnOpen && dtype != UInt8(DT_DIR) && dtype != UInt8(DT_LNK),
               try ignore.excludedOnOpen(rel), let child = try emptyFile(dfd, cname, job.absolute.appendingPath(name)) {
                cond.lock(); sentEmpty.append(rel); cond.unlock()
                batch.entries.append((name, child))
                return true
            }
            if dtype == UInt8(DT_REG) && !isExcluded,
               let child = try regularFile(name, cname, in: job, dfd: dfd, batch: &batch, hasher: hasher, buffer: buffer) {
                batch.entries.append((name, child))
                return true
            }
            var st = stat()
            if fstatat(dfd, cname, &st, AT_SYMLINK_NOFOLLOW) != 0 {
                if errno == ENOENT { return true }  // vanished between readdir and stat
                throw ImprintError.posix("stat", job.absolute.appendingPath(name).lossyString)
            }
            if isExcluded {
                if let child = excludedDirectory(name, cname, rel: rel, info: info, st, in: job, dfd: dfd, batch: &batch) {
                    batch.entries.append((name, child))
                }
                return true
            }
            if let child = try node(name, cname, rel: rel, info: info, st, in: job, dfd: dfd, rules: rules,
                                    batch: &batch, hasher: hasher, buffer: buffer) {
                fill(child, st)
                batch.entries.append((name, child))
            }
            return true
        }

        /// The short way for what readdir calls a regular file: with a digest cache a stat, and no open when its
        /// identity is known; else one open and a stat of the fd (one path lookup instead of two), hashed here when
        /// small. Nil when the general way must decide (an error, or not a regular file after all).
        private func regularFile(_ name: Bytes, _ cname: [CChar], in job: DirJob, dfd: Int32, batch: inout DirectoryBatch,
                                 hasher: SHA256, buffer: UnsafeMutableRawBufferPointer) throws -> TreeNode? {
            var st = stat()
            if let cache = walker.digestCache, fstatat(dfd, cname, &st, AT_SYMLINK_NOFOLLOW) == 0,
               (st.st_mode & S_IFMT) == S_IFREG, let known = cache.digest(st) {
                let child = TreeNode(type: .file, mode: UInt32(st.st_mode), size: UInt64(st.st_size), digest: known)
                fill(child, st)
                return child
            }
            let fd = openat(dfd, cname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
            guard fd >= 0 else { return nil }
            guard fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG else {
                close(fd)
                return nil
            }
            let child = TreeNode(type: .file, mode: UInt32(st.st_mode), size: UInt64(st.st_size))
            fill(child, st)  // before a hand-off: from then on another worker writes the node
            if let cache = walker.digestCache, let known = cache.digest(st) {
                close(fd)
                child.digest = known
            } else if child.size > UInt64(FileHasher.bufferSize) {
                close(fd)
                batch.queue(.largeFile(path: job.absolute.appendingPath(name), node: child, task: job.task))
            } else if !handOff(fd, name, in: job, node: child, st) {
                defer { close(fd) }
                try FileHasher.hashSmallFile(fd: fd, display: job.absolute.appendingPath(name), node: child, hasher: hasher, buffer: buffer)
                walker.digestCache?.store(st, child.digest)
                batch.hashed(child)
            }
            return child
        }

        /// An excluded entry: left out, unless it is a directory that an exception may reach below it; that one is
        /// walked for the exceptions (provisionally: dropped again when nothing in it is sent), as BuildKit does.
        private func excludedDirectory(_ name: Bytes, _ cname: [CChar], rel: Bytes, info: DockerIgnore.MatchInfo, _ st: stat,
                                       in job: DirJob, dfd: Int32, batch: inout DirectoryBatch) -> TreeNode? {
            let ignore = walker.ignore
            guard st.st_mode & S_IFMT == S_IFDIR, ignore.mustDescend(intoExcluded: rel) else { return nil }
            // BuildKit ignores permission errors below excluded directories
            guard let cfd = openQueuedDirectory(dfd, cname, path: job.absolute.count + 1 + name.count) else { return nil }
            let child = TreeNode.directory(mode: ignore.semantics.sendsEnteredDirectories ? UInt32(st.st_mode) : UInt32(S_IFDIR) | 0o755)
            fill(child, st)
            cond.lock(); provisional.insert(ObjectIdentifier(child)); cond.unlock()
            // (Never with `task`: provisional directories exist only with exceptions, which disable them.)
            batch.newJobs.append(.directory(DirJob(fd: cfd, relative: rel, absolute: job.absolute.appendingPath(name), node: child, parentInfo: info, task: nil)))
            return child
        }

        /// The node of an entry that is sent, by its type: directories and large files are queued as jobs of their
        /// own; a socket is sent as an empty file, or not at all, as the builder does. Nil when it is not sent.
        private func node(_ name: Bytes, _ cname: [CChar], rel: Bytes, info: DockerIgnore.MatchInfo, _ st: stat, in job: DirJob,
                          dfd: Int32, rules: EntryRules, batch: inout DirectoryBatch, hasher: SHA256,
                          buffer: UnsafeMutableRawBufferPointer) throws -> TreeNode? {
            let fmt = st.st_mode & S_IFMT
            switch fmt {
            case S_IFDIR:
                let child = TreeNode.directory(mode: UInt32(st.st_mode))
                guard let cfd = openQueuedDirectory(dfd, cname, path: job.absolute.count + 1 + name.count) else {
                    throw ImprintError.posix("open directory", job.absolute.appendingPath(name).lossyString)
                }
                let task = job.task.map { DirTask(node: child, parent: $0) }
                batch.queue(.directory(DirJob(fd: cfd, relative: rules.needsRelative ? rel : job.relative.appendingPath(name),
                                              absolute: job.absolute.appendingPath(name), node: child, parentInfo: info, task: task)))
                return child
            case S_IFREG:
                let child = TreeNode(type: .file, mode: UInt32(st.st_mode), size: UInt64(st.st_size))
                if child.size > UInt64(FileHasher.bufferSize) {
                    batch.queue(.largeFile(path: job.absolute.appendingPath(name), node: child, task: job.task))
                } else {
                    try FileHasher.hashSmallFile(dirfd: dfd, name: cname, display: job.absolute.appendingPath(name),
                                                 node: child, hasher: hasher, buffer: buffer)
                    batch.hashed(child)
                }
                return child
            case S_IFLNK:
                return TreeNode.symlink(try readLink(dfd, cname, job.absolute.appendingPath(name)))
            case S_IFIFO:
                return TreeNode(type: .fifo, mode: UInt32(st.st_mode))
            case S_IFCHR, S_IFBLK:
                return TreeNode.device(fmt == S_IFCHR ? .charDevice : .blockDevice, mode: UInt32(st.st_mode),
                                       major: devMajor(UInt64(st.st_rdev)), minor: devMinor(UInt64(st.st_rdev)))
            default:
                cond.lock(); sockets.append(job.relative.appendingPath(name)); cond.unlock()
                guard walker.ignore.semantics.sendsSocketsEmpty else { return nil }
                return TreeNode(type: .file, mode: UInt32(st.st_mode))
            }
        }

        /// The directory is listed: its children are set (in `names`' order, which was sorted), its jobs queued, and
        /// its digest finished when nothing waits for a job.
        private func finishListing(_ job: DirJob, _ batch: DirectoryBatch, hasher: SHA256, scratch: inout Scratch) {
            job.node.setSortedChildren(batch.entries)
            if let task = job.task {
                // Counted before the jobs are queued, so no child can bring the count to zero early.
                if batch.asyncChildren > 0 { task.pending.add(batch.asyncChildren, ordering: .relaxed) }
                push(batch.newJobs)
                complete(task, hasher: hasher, record: &scratch.record)
            } else {
                push(batch.newJobs)
            }
            if batch.files > 0 { report(files: batch.files, bytes: batch.bytes) }
        }

        /// Opens subdirectory `cname` of `dfd` for a job: its descriptor within the budget, else -1 (the job opens
        /// it by path; opened here all the same, so a directory that cannot be opened is found now, as before).
        /// A directory whose absolute path (`path` bytes) is too long to open by path keeps its descriptor.
        /// Nil when it cannot be opened, with `errno` set.
        private func openQueuedDirectory(_ dfd: Int32, _ cname: [CChar], path: Int) -> Int32? {
            let cfd = openat(dfd, cname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if cfd < 0 { return nil }
            if Self.heldDirectories.add(1, ordering: .relaxed).newValue <= Self.heldDirectoryBudget || path >= Int(PATH_MAX) {
                return cfd
            }
            Self.heldDirectories.subtract(1, ordering: .relaxed)
            close(cfd)
            return -1
        }

        /// An entry BuildKit sends as an empty regular file: a regular file it refuses to open, or a socket.
        /// Nil for a directory or a symlink (the sender never opens those) or an entry that vanished.
        private func emptyFile(_ dfd: Int32, _ cname: [CChar], _ abs: Bytes) throws -> TreeNode? {
            var st = stat()
            if fstatat(dfd, cname, &st, AT_SYMLINK_NOFOLLOW) != 0 {
                if errno == ENOENT { return nil }
                throw ImprintError.posix("stat", abs.lossyString)
            }
            let fmt = st.st_mode & S_IFMT
            guard fmt == S_IFREG || fmt == S_IFSOCK else { return nil }
            let node = TreeNode(type: .file, mode: UInt32(st.st_mode))
            fill(node, st)
            return node
        }

        private func fill(_ node: TreeNode, _ st: stat) {
            if walker.recordFileTimes { node.mtimeNanos = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec) }
            guard walker.recordOwnership else { return }
            node.uid = st.st_uid
            node.gid = st.st_gid
            node.mtime = Int64(st.st_mtim.tv_sec)
            let m = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
            let c = Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec)
            node.changedNanos = max(m, c)
        }

        private func readLink(_ dfd: Int32, _ cname: [CChar], _ abs: Bytes) throws -> Bytes {
            var buf = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = buf.withUnsafeMutableBufferPointer {
                readlinkat(dfd, cname, UnsafeMutableRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), $0.count)
            }
            if n < 0 { throw ImprintError.posix("read symlink", abs.lossyString) }
            return Array(buf[0..<n])
        }
    }
}
