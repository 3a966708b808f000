import Foundation
import Testing
@testable import ImprintCore

/// The walk's descriptors: none is left open when a walk is refused or fails part way (a long-running agent would
/// run out of them), also for files handed from the worker listing a directory to another; and those files are
/// hashed as one worker hashes them.
@Suite struct WalkDescriptorTests {
    /// How many of this process's descriptors are open on one of `inodes` (device and inode, through the
    /// `/proc/self/fd` links, which resolve even past PATH_MAX).
    static func openOn(_ inodes: Set<[UInt64]>) -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.filter { fd in
            var st = stat()
            return stat("/proc/self/fd/" + fd, &st) == 0 && inodes.contains([UInt64(st.st_dev), UInt64(st.st_ino)])
        }.count
    }

    /// Device and inode of each line's path as `stat -c '%d %i'` printed it.
    static func identities(_ text: String) -> Set<[UInt64]> {
        Set(text.split(separator: "\n").map { $0.split(separator: " ").compactMap { UInt64($0) } })
    }

    /// Runs `script` in `dir/deep/p…/p…` (16 levels of 250-byte names, made from the shell inside: their path is
    /// too long for most tools), and returns what it printed.
    static func deep(in dir: String, _ script: String) throws -> String {
        let part = String(repeating: "p", count: 250)
        return try ArchiveFixture.shell("""
        mkdir deep && cd deep
        for i in $(seq 16); do mkdir \(part) && cd \(part); done
        \(script)
        """, cwd: dir)
    }

    /// A name whose context path, there, passes PATH_MAX: the walk fails when it reaches it (last, in name order).
    static let tooLong = String(repeating: "z", count: 255)

    @Test func aRefusedLegacyWalkClosesTheRoot() throws {
        try ArchiveFixture.withTemp { dir in
            try Lib.write(dir + "/a/f", "x")
            let ignore = try DockerIgnore.parse(Array("z*[\n".utf8), file: ".dockerignore", semantics: .classic)
            #expect(throws: ImprintError.self) { try ContextWalker(ignore: ignore).walk(dir) }
            let ids = Self.identities(try ArchiveFixture.shell("stat -c '%d %i' . a", cwd: dir))
            #expect(ids.count == 2)
            #expect(Self.openOn(ids) == 0)
        }
    }

    /// A directory whose subdirectories are opened as they are found, followed (in name order) by an entry whose
    /// context path is longer than PATH_MAX: the walk fails there, and closes the subdirectories it had opened.
    @Test func aWalkFailingPartWayClosesTheDirectoriesItOpened() throws {
        try ArchiveFixture.withTemp { dir in
            defer { _ = try? ArchiveFixture.shell("rm -rf deep", cwd: dir) }
            let ids = Self.identities(try Self.deep(in: dir, """
            mkdir a b c && touch \(Self.tooLong)
            stat -c '%d %i' a b c
            """))
            #expect(ids.count == 3)
            #expect(throws: ImprintError.self) { try ContextWalker(ignore: DockerIgnore.empty).walk(dir + "/deep") }
            #expect(Self.openOn(ids) == 0)
        }
    }

    /// Makes a flat directory of many files in the shell's current directory: 3,000 files of 0 to 5,000 bytes, and
    /// one to ignore.
    static let flatFiles = """
        python3 -c 'for i in range(1, 3001): open("f%d" % i, "wb").write(bytes((j * 31 + i) % 256 for j in range(i * 7 % 5000)))'
        echo skipped > x.skip
        """

    /// Many workers on one directory of many files (the listing worker hands opened files to the others) find the
    /// tree one worker finds, with the digests of `sha256sum`; with the ignore file's exceptions too, where the
    /// directory digests are computed after the walk.
    @Test func aFlatDirectoryOnManyWorkersIsTheTreeOneWorkerFinds() throws {
        try ArchiveFixture.withTemp { dir in
            try ArchiveFixture.shell("mkdir flat && cd flat\n" + Self.flatFiles, cwd: dir)
            let sums = try ArchiveFixture.shell("sha256sum f*", cwd: dir + "/flat")
            var expected: [String: String] = [:]
            for line in sums.split(separator: "\n") {
                let parts = line.split(separator: " ", omittingEmptySubsequences: true)
                expected[String(parts[1])] = String(parts[0])
            }
            #expect(expected.count == 3000)
            for ignoreText in ["", "*.skip\n!f1\n"] {
                let ignore = try DockerIgnore.parse(Array(ignoreText.utf8), file: ".dockerignore", semantics: .buildkit)
                let one = try ContextWalker(ignore: ignore, workers: 1).walk(dir + "/flat").tree
                for _ in 0..<3 {
                    let many = try ContextWalker(ignore: ignore, workers: 4).walk(dir + "/flat").tree
                    #expect(many.rootDigest == one.rootDigest, "\(ignoreText.debugDescription)")
                    var checked = 0
                    many.walk { path, node in
                        guard node.type == .file, let want = expected[path.lossyString] else { return }
                        #expect(node.digest.hex == want, "\(path.lossyString)")
                        checked += 1
                    }
                    #expect(checked == 3000)
                }
            }
        }
    }

    /// A walk failing in a directory of many files (after the worker listing it handed files to others) leaves
    /// none of them open.
    @Test func aWalkFailingInAFlatDirectoryLeavesNoFileOpen() throws {
        try ArchiveFixture.withTemp { dir in
            defer { _ = try? ArchiveFixture.shell("rm -rf deep", cwd: dir) }
            let ids = Self.identities(try Self.deep(in: dir, """
            \(Self.flatFiles)
            touch \(Self.tooLong)
            stat -c '%d %i' f*
            """))
            #expect(ids.count == 3000)
            for _ in 0..<3 {
                #expect(throws: ImprintError.self) { try ContextWalker(ignore: DockerIgnore.empty, workers: 4).walk(dir + "/deep") }
                #expect(Self.openOn(ids) == 0)
            }
        }
    }

    /// Files handed to another worker and still queued when the walk fails are closed with the queue.
    @Test func filesStillQueuedWhenAWalkFailsAreClosed() throws {
        try ArchiveFixture.withTemp { dir in
            try ArchiveFixture.shell("mkdir flat && cd flat\n" + Self.flatFiles, cwd: dir)
            let ids = Self.identities(try ArchiveFixture.shell("stat -c '%d %i' f1 f2 f3 f4 f5", cwd: dir + "/flat"))
            #expect(ids.count == 5)
            let state = ContextWalker.WalkState(ContextWalker(ignore: DockerIgnore.empty))
            for i in 1...5 {
                let fd = open("\(dir)/flat/f\(i)", O_RDONLY | O_CLOEXEC)
                #expect(fd >= 0)
                ContextWalker.WalkState.heldFiles.add(1, ordering: .relaxed)
                state.files.append(ContextWalker.OpenFile(
                    fd: fd, directory: Array("\(dir)/flat".utf8), name: Array("f\(i)".utf8),
                    node: TreeNode(type: .file, mode: 0o100644, size: 0), fileStat: stat(), task: nil))
            }
            #expect(Self.openOn(ids) == 5)
            state.error = ImprintError(.io, "a failure elsewhere in the walk")
            state.run(workers: 2)
            #expect(Self.openOn(ids) == 0)
        }
    }

    /// More sibling directories than the budget, deep enough that their absolute paths pass PATH_MAX while the
    /// context paths stay within it: those are never put off to an open by path (which would fail), so every
    /// file is walked.
    @Test func directoriesTooDeepToOpenByPathKeepTheirDescriptor() throws {
        try ArchiveFixture.withTemp { dir in
            let top = String(repeating: "t", count: 150)
            defer { _ = try? ArchiveFixture.shell("rm -rf \(top)", cwd: dir) }
            let part = String(repeating: "p", count: 250)
            try ArchiveFixture.shell("""
            mkdir -p \(top)/root && cd \(top)/root
            for i in $(seq 16); do mkdir \(part) && cd \(part); done
            mkdir $(seq -f d%g 300) && for i in $(seq 300); do echo $i > d$i/f; done
            """, cwd: dir)
            let (tree, _) = try ContextWalker(ignore: DockerIgnore.empty).walk(dir + "/" + top + "/root")
            var files = 0
            tree.walk { _, node in if node.type == .file { files += 1 } }
            #expect(files == 300)
        }
    }
}
