import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Walks a directory the way Docker's builder reads a build context and returns its tree.
///
/// - Symlinks are recorded with their target text and never followed.
/// - Empty directories are recorded.
/// - FIFOs and device nodes are recorded as entries (type, mode, device numbers) without content, as BuildKit
///   sends them; sockets are skipped, as both BuildKit and the legacy builder skip them, and reported.
/// - With an ignore file, excluded entries are left out; an excluded directory is entered only when an
///   exception could re-include something below it, and it appears only if something below it is included.
public struct ContextWalker {
    public var ignore: DockerIgnore
    /// Context-relative paths left out of the walk (the manifest imprint writes into the context itself).
    public var excludedPaths: Set<Bytes>
    /// Record uid, gid and mtime (for plain directory sources; never part of a digest).
    public var recordOwnership: Bool
    public var workers: Int
    public var progress: ((Int, UInt64) -> Void)?

    /// What the walk skipped or noticed, for hygiene reporting.
    public struct Notes {
        public var sockets: [Bytes] = []
    }

    public init(ignore: DockerIgnore = .empty, excludedPaths: Set<Bytes> = [], recordOwnership: Bool = false,
                workers: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.ignore = ignore
        self.excludedPaths = excludedPaths
        self.recordOwnership = recordOwnership
        self.workers = workers
    }

    /// Walks `root` and hashes every included regular file.
    /// - Throws: `ImprintError` naming the path when the root is missing or not a directory, or when a
    ///   directory or file cannot be read.
    public func walk(_ root: String) throws -> (tree: Tree, notes: Notes) {
        var st = stat()
        if lstat(root, &st) != 0 { throw ImprintError.posix("read context", root) }
        if (st.st_mode & S_IFMT) == S_IFLNK {
            // The context argument may itself be a symlink to a directory; only entries inside are never followed.
            if stat(root, &st) != 0 { throw ImprintError.posix("read context", root) }
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw ImprintError(.badInput, "cannot read context \(root): not a directory")
        }
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw ImprintError.posix("open directory", root) }
        let tree = Tree(root: .directory(mode: UInt32(st.st_mode) & 0o7777))
        if recordOwnership { tree.root.uid = st.st_uid; tree.root.gid = st.st_gid; tree.root.mtime = Int64(st.st_mtim.tv_sec) }
        var jobs: [FileHasher.Job] = []
        var notes = Notes()
        let base = root.hasSuffix("/") ? String(root.dropLast()) : root
        _ = try walkDirectory(fd: fd, relative: [], absolute: Array(base.utf8), node: tree.root,
                              parentInfo: nil, excluded: false, jobs: &jobs, notes: &notes)
        try FileHasher.hash(jobs, workers: workers, progress: progress)
        tree.computeDigests()
        return (tree, notes)
    }

    /// Returns whether anything was included below this directory. Takes ownership of `fd`.
    private func walkDirectory(fd: Int32, relative: Bytes, absolute: Bytes, node: TreeNode,
                               parentInfo: DockerIgnore.MatchInfo?, excluded: Bool,
                               jobs: inout [FileHasher.Job], notes: inout Notes) throws -> Bool {
        guard let dir = fdopendir(fd) else {
            let e = errno
            close(fd)
            throw ImprintError.posix("read directory", absolute.lossyString, errno: e)
        }
        defer { closedir(dir) }
        var names: [Bytes] = []
        while true {
            errno = 0
            guard let ent = readdir(dir) else {
                if errno != 0 { throw ImprintError.posix("read directory", absolute.lossyString) }
                break
            }
            let name: Bytes = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                let p = raw.bindMemory(to: UInt8.self)
                let len = strnlen(raw.baseAddress!.assumingMemoryBound(to: CChar.self), p.count)
                return Array(p[0..<len])
            }
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            names.append(name)
        }
        names.sort { $0.lexicographicallyPrecedes($1) }
        let dfd = dirfd(dir)
        var includedAny = false
        for name in names {
            let rel = relative.appendingPath(name)
            if excludedPaths.contains(rel) { continue }
            let abs = absolute.appendingPath(name)
            var st = stat()
            let rc = name.withUnsafeBufferPointer { buf -> Int32 in
                var cname = Array(buf); cname.append(0)
                return cname.withUnsafeBufferPointer { fstatat(dfd, UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), &st, AT_SYMLINK_NOFOLLOW) }
            }
            if rc != 0 {
                if errno == ENOENT { continue }  // vanished between readdir and stat
                throw ImprintError.posix("stat", abs.lossyString)
            }
            let fmt = st.st_mode & S_IFMT
            let isDir = fmt == S_IFDIR
            let (isExcluded, info) = ignore.matches(rel, parent: parentInfo)
            if isExcluded {
                guard isDir, ignore.mustDescend(intoExcluded: rel) else { continue }
                let child = TreeNode.directory(mode: UInt32(st.st_mode))
                fillOwnership(child, st)
                let cfd = openChild(dfd, name)
                if cfd < 0 { continue }  // BuildKit ignores permission errors below excluded directories
                if try walkDirectory(fd: cfd, relative: rel, absolute: abs, node: child, parentInfo: info,
                                     excluded: true, jobs: &jobs, notes: &notes) {
                    node.children[name] = child
                    includedAny = true
                }
                continue
            }
            let child: TreeNode
            switch fmt {
            case S_IFDIR:
                child = TreeNode.directory(mode: UInt32(st.st_mode))
                let cfd = openChild(dfd, name)
                if cfd < 0 { throw ImprintError.posix("open directory", abs.lossyString) }
                _ = try walkDirectory(fd: cfd, relative: rel, absolute: abs, node: child, parentInfo: info,
                                      excluded: false, jobs: &jobs, notes: &notes)
                // A directory that holds nothing but what imprint wrote (`.imprint/` for --emit) is left out too.
                if child.children.isEmpty, excludedPaths.contains(where: { $0.isPath(under: rel) }) { continue }
            case S_IFREG:
                child = TreeNode(type: .file, mode: UInt32(st.st_mode), size: UInt64(st.st_size))
                jobs.append(FileHasher.Job(path: abs, node: child))
            case S_IFLNK:
                child = TreeNode.symlink(try readLink(dfd, name, abs))
            case S_IFIFO:
                child = TreeNode(type: .fifo, mode: UInt32(st.st_mode))
            case S_IFCHR, S_IFBLK:
                child = TreeNode.device(fmt == S_IFCHR ? .charDevice : .blockDevice, mode: UInt32(st.st_mode),
                                        major: devMajor(UInt64(st.st_rdev)), minor: devMinor(UInt64(st.st_rdev)))
            default:
                notes.sockets.append(rel)
                continue
            }
            fillOwnership(child, st)
            node.children[name] = child
            includedAny = true
        }
        return includedAny
    }

    private func fillOwnership(_ node: TreeNode, _ st: stat) {
        guard recordOwnership else { return }
        node.uid = st.st_uid
        node.gid = st.st_gid
        node.mtime = Int64(st.st_mtim.tv_sec)
    }

    private func openChild(_ dfd: Int32, _ name: Bytes) -> Int32 {
        var cname = name; cname.append(0)
        return cname.withUnsafeBufferPointer {
            openat(dfd, UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self),
                   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        }
    }

    private func readLink(_ dfd: Int32, _ name: Bytes, _ abs: Bytes) throws -> Bytes {
        var cname = name; cname.append(0)
        var buf = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = cname.withUnsafeBufferPointer { c in
            buf.withUnsafeMutableBufferPointer {
                readlinkat(dfd, UnsafeRawPointer(c.baseAddress!).assumingMemoryBound(to: CChar.self),
                           UnsafeMutableRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), $0.count)
            }
        }
        if n < 0 { throw ImprintError.posix("read symlink", abs.lossyString) }
        return Array(buf[0..<n])
    }
}

/// glibc's gnu_dev_major/minor are macros Swift cannot see; the same bit layout.
func devMajor(_ dev: UInt64) -> UInt32 { UInt32(((dev >> 32) & 0xFFFF_F000) | ((dev >> 8) & 0x0000_0FFF)) }
func devMinor(_ dev: UInt64) -> UInt32 { UInt32(((dev >> 12) & 0xFFFF_FF00) | (dev & 0x0000_00FF)) }
