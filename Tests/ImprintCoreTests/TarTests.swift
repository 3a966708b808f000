import Foundation
import Testing
@testable import ImprintCore

@Suite struct TarTests {
    static let longDir = String(repeating: "d", count: 120)
    static let longName = "\(longDir)/\(String(repeating: "f", count: 110)).txt"
    static let unicodeName = "dir/naïve-файл-文件.txt"

    /// A directory with a long name, non-ASCII names, a long symlink target, a hard link, a FIFO.
    static func makeTree(_ dir: String) throws {
        try ArchiveFixture.shell("""
        mkdir -p src/\(longDir) src/dir
        printf 'long' > src/\(longName)
        printf 'unicode' > 'src/\(unicodeName)'
        printf 'target' > src/dir/target
        ln src/dir/target src/dir/hard
        ln -s ../\(longName) src/dir/longlink
        mkfifo src/dir/fifo
        head -c 70000 /dev/urandom > src/dir/big.bin
        """, cwd: dir)
    }

    static func check(_ entries: [(TarEntry, Digest)], _ dir: String) throws {
        let byPath = Dictionary(entries.map { (String(decoding: $0.0.path, as: UTF8.self).replacingOccurrences(of: "./", with: ""), $0) }, uniquingKeysWith: { $1 })
        let long = try #require(byPath["src/\(longName)"])
        #expect(long.0.kind == .file && long.1 == SHA256.hash(Array("long".utf8)))
        let uni = try #require(byPath["src/\(unicodeName)"])
        #expect(uni.1 == SHA256.hash(Array("unicode".utf8)))
        let link = try #require(byPath["src/dir/longlink"])
        #expect(link.0.kind == .symlink && String(decoding: link.0.linkName, as: UTF8.self) == "../\(longName)")
        let hard = byPath["src/dir/hard"] ?? byPath["src/dir/target"]!
        let target = byPath["src/dir/target"]!
        #expect(hard.0.kind == .hardlink || target.0.kind == .hardlink)
        #expect(byPath["src/dir/fifo"]?.0.kind == .fifo)
        let big = try #require(byPath["src/dir/big.bin"])
        #expect(big.0.size == 70000)
        #expect(big.1 == SHA256.hash(try ArchiveFixture.bytes(dir + "/src/dir/big.bin")))
    }

    @Test(arguments: ["tar --format=gnu -cf a.tar src", "tar --format=pax -cf a.tar src", "bsdtar --format pax -cf a.tar src",
                      "bsdtar --format gnutar -cf a.tar src"])
    func readsArchivesOtherToolsWrote(_ command: String) throws {
        try ArchiveFixture.require("tar")
        try ArchiveFixture.require("bsdtar")
        try ArchiveFixture.withTemp { dir in
            try TarTests.makeTree(dir)
            try ArchiveFixture.shell(command, cwd: dir)
            let entries = try ArchiveFixture.entries(try FileDescriptorSource(path: dir + "/a.tar"))
            try TarTests.check(entries, dir)
        }
    }

    @Test func readsFromAPipe() throws {
        try ArchiveFixture.require("tar")
        try ArchiveFixture.withTemp { dir in
            try TarTests.makeTree(dir)
            let tar = Process()
            tar.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            tar.arguments = ["tar", "--format=pax", "-cf", "-", "src"]
            tar.currentDirectoryURL = URL(fileURLWithPath: dir)
            let pipe = Pipe()
            tar.standardOutput = pipe
            try tar.run()
            let entries = try ArchiveFixture.entries(FileDescriptorSource(fd: pipe.fileHandleForReading.fileDescriptor, name: "pipe"))
            tar.waitUntilExit()
            try TarTests.check(entries, dir)
        }
    }

    @Test func acceptsArchiveWithoutEndBlocks() throws {
        try ArchiveFixture.require("tar")
        try ArchiveFixture.withTemp { dir in
            try ArchiveFixture.shell("echo hi > f; tar --format=ustar -cf a.tar f", cwd: dir)
            let full = try ArchiveFixture.bytes(dir + "/a.tar")
            // Header + one data block, no zero blocks at all; and with just one zero block.
            for cut in [1024, 1536] {
                let entries = try ArchiveFixture.entries(MemorySource(Array(full.prefix(cut))))
                #expect(entries.count == 1)
                #expect(entries.first?.1 == SHA256.hash(Array("hi\n".utf8)))
            }
        }
    }

    @Test func rejectsBadChecksum() throws {
        var archive = try ArchiveFixture.tar { try $0.writeFile(TarEntry(path: Array("a".utf8), kind: .file), content: [1, 2, 3]) }
        archive[1] = UInt8(ascii: "x")
        #expect(throws: ImprintError.self) { try ArchiveFixture.entries(MemorySource(archive)) }
        do { _ = try ArchiveFixture.entries(MemorySource(archive)); Issue.record("no error") } catch let e as ImprintError {
            #expect(e.message.contains("checksum"))
        }
    }

    @Test func rejectsTruncatedData() throws {
        let archive = try ArchiveFixture.tar { try $0.writeFile(TarEntry(path: Array("a".utf8), kind: .file), content: [UInt8](repeating: 7, count: 5000)) }
        do { _ = try ArchiveFixture.entries(MemorySource(Array(archive.prefix(2048)))); Issue.record("no error") } catch let e as ImprintError {
            #expect(e.message.contains("truncated"))
        }
    }

    @Test func paxOverridesSizeAndBase256IsRead() throws {
        // A PAX size record overrides the header; a base-256 uid is decoded.
        var pax = TarWriter.paxRecord("size", Array("600".utf8)) + TarWriter.paxRecord("path", Array("über/long".utf8))
        pax += TarWriter.paxRecord("SCHILY.xattr.user.k", Array("v".utf8))
        var out = TarWriter.header(name: Array("PaxHeaders/x".utf8), prefix: [], mode: 0o644, uid: 0, gid: 0, size: UInt64(pax.count),
                                   mtime: 0, flag: UInt8(ascii: "x"), link: [], uname: "", gname: "", major: 0, minor: 0)
        out += pax + [UInt8](repeating: 0, count: (512 - pax.count % 512) % 512)
        var h = TarWriter.header(name: Array("x".utf8), prefix: [], mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0,
                                 flag: UInt8(ascii: "0"), link: [], uname: "", gname: "", major: 0, minor: 0)
        // uid field as base-256: 0x80 marker then 2^40.
        for i in 108..<116 { h[i] = 0 }
        h[108] = 0x80; h[110] = 1
        for i in 148..<156 { h[i] = 0x20 }
        let sum = h.reduce(0) { $0 + Int($1) }
        let s = Array(String(format: "%06o", sum).utf8)
        for i in 0..<6 { h[148 + i] = s[i] }
        h[154] = 0
        out += h + [UInt8](repeating: 9, count: 600) + [UInt8](repeating: 0, count: 424)
        let entries = try ArchiveFixture.entries(MemorySource(out))
        #expect(entries.count == 1)
        #expect(entries[0].0.size == 600)
        #expect(entries[0].0.path == Array("über/long".utf8))
        #expect(entries[0].0.uid == UInt32(truncatingIfNeeded: UInt64(1) << 40))
        #expect(entries[0].0.xattrs["user.k"] == Array("v".utf8))
        #expect(entries[0].1 == SHA256.hash([UInt8](repeating: 9, count: 600)))
    }

    @Test func writerOutputIsListedAndExtractedByGNUTar() throws {
        try ArchiveFixture.require("tar")
        try ArchiveFixture.withTemp { dir in
            let archive = try ArchiveFixture.tar { w in
                try w.writeHeader(TarEntry(path: Array("d".utf8), kind: .directory, mode: 0o755))
                try w.writeFile(TarEntry(path: Array("d/\(TarTests.longName)".utf8), kind: .file, mode: 0o600), content: Array("L".utf8))
                try w.writeFile(TarEntry(path: Array("d/\(TarTests.unicodeName)".utf8), kind: .file, xattrs: ["user.a": Array("b".utf8)]), content: Array("U".utf8))
                try w.writeHeader(TarEntry(path: Array("d/ln".utf8), kind: .symlink, mode: 0o777, linkName: Array(String(repeating: "t", count: 150).utf8)))
                try w.writeHeader(TarEntry(path: Array("d/hard".utf8), kind: .hardlink, linkName: Array("d/\(TarTests.longName)".utf8)))
                try w.writeHeader(TarEntry(path: Array("d/p".utf8), kind: .fifo))
            }
            try ArchiveFixture.write(dir + "/w.tar", archive)
            let listing = try ArchiveFixture.shell("tar -tvf w.tar", cwd: dir)
            #expect(listing.contains(TarTests.longName))
            #expect(listing.contains("naïve-файл-文件.txt"))
            #expect(listing.contains("d/ln -> " + String(repeating: "t", count: 150)))
            #expect(listing.contains("d/hard link to d/\(TarTests.longName)"))
            let content = try ArchiveFixture.shell("mkdir x; tar -xf w.tar -C x; cat 'x/d/\(TarTests.longName)' 'x/d/\(TarTests.unicodeName)'", cwd: dir)
            #expect(content == "LU")
            // Deterministic and read back identically.
            #expect(try ArchiveFixture.entries(MemorySource(archive)).count == 6)
        }
    }

    @Test func writerRefusesEscapingPaths() throws {
        for p in ["/etc/passwd", "../x", "a/../../b", ""] {
            #expect(throws: ImprintError.self) {
                _ = try ArchiveFixture.tar { try $0.writeFile(TarEntry(path: Array(p.utf8), kind: .file), content: []) }
            }
        }
    }
}
