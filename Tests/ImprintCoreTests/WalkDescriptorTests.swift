import Foundation
import Testing
@testable import ImprintCore

/// The walk's directory descriptors: none is left open when a walk is refused or fails part way (a long-running
/// agent would run out of them).
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
            let part = String(repeating: "p", count: 250)
            let out = try ArchiveFixture.shell("""
            mkdir deep && cd deep
            for i in $(seq 16); do mkdir \(part) && cd \(part); done
            mkdir a b c && touch \(String(repeating: "z", count: 255))
            stat -c '%d %i' a b c
            """, cwd: dir)
            let ids = Self.identities(out)
            #expect(ids.count == 3)
            #expect(throws: ImprintError.self) { try ContextWalker(ignore: DockerIgnore.empty).walk(dir + "/deep") }
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
