import Foundation
import Testing
@testable import ImprintCore

@Suite struct LayerFlattenerTests {
    static func file(_ p: String) -> TarEntry { TarEntry(path: Array(p.utf8), kind: .file, uid: 1000, gid: 1000, mtime: 42) }
    static func dir(_ p: String) -> TarEntry { TarEntry(path: Array(p.utf8), kind: .directory, mode: 0o755) }

    /// A header TarWriter would refuse to write (absolute or dotted paths), for reader-side tests.
    static func rawHeader(_ path: String, flag: Character, link: String = "", mode: UInt32 = 0o644) -> [UInt8] {
        TarWriter.header(name: Array(path.utf8), prefix: [], mode: mode, uid: 0, gid: 0, size: 0, mtime: 0,
                         flag: flag.asciiValue!, link: Array(link.utf8), uname: "", gname: "", major: 0, minor: 0)
    }

    static func apply(_ layers: [[UInt8]], whiteouts: Bool = true) throws -> LayerFlattener {
        let f = LayerFlattener()
        f.whiteouts = whiteouts
        for (i, l) in layers.enumerated() { try f.apply(TarReader(MemorySource(l), name: "layer \(i + 1)"), layer: i) }
        _ = f.finish()
        return f
    }

    @Test func whiteoutsOpaqueDirectoriesAndLayerAttribution() throws {
        let l0 = try ArchiveFixture.tar { w in
            try w.writeHeader(Self.dir("etc"))
            try w.writeFile(Self.file("etc/keep"), content: Array("k".utf8))
            try w.writeFile(Self.file("etc/gone"), content: Array("g".utf8))
            try w.writeHeader(Self.dir("opq"))
            try w.writeFile(Self.file("opq/old"), content: Array("o".utf8))
            try w.writeHeader(Self.dir("opq/sub"))
            try w.writeFile(Self.file("opq/sub/deep"), content: Array("d".utf8))
        }
        let l1 = try ArchiveFixture.tar { w in
            try w.writeFile(Self.file("etc/.wh.gone"), content: [])
            try w.writeFile(Self.file("opq/new"), content: Array("n".utf8))
            try w.writeFile(Self.file("opq/.wh..wh..opq"), content: [])
            try w.writeFile(Self.file("etc/keep"), content: Array("k2".utf8))
        }
        let f = try Self.apply([l0, l1])
        let t = f.tree
        #expect(t.node(at: Array("etc/gone".utf8)) == nil)
        #expect(t.node(at: Array("etc/keep".utf8))?.layer == 1)
        #expect(t.node(at: Array("etc/keep".utf8))?.digest == SHA256.hash(Array("k2".utf8)))
        #expect(t.node(at: Array("etc".utf8))?.layer == 0)
        #expect(t.node(at: Array("opq/old".utf8)) == nil)
        #expect(t.node(at: Array("opq/sub".utf8)) == nil)
        #expect(t.node(at: Array("opq/new".utf8))?.layer == 1)
        #expect(t.node(at: Array("etc/keep".utf8))?.uid == 1000)
        #expect(t.node(at: Array("etc/keep".utf8))?.mtime == 42)
        #expect(t.entries.allSatisfy { !$0.path.lossyString.contains(".wh.") })
    }

    @Test func hardLinksTakeTheTargetsDigestAndPycHeadersAreKept() throws {
        let pyc: [UInt8] = [0xa7, 0x0d, 0x0d, 0x0a] + [UInt8](repeating: 1, count: 20)
        let body = try ArchiveFixture.tar { w in try w.writeFile(Self.file("./app/m.pyc"), content: pyc) }
        let l0 = Array(body.dropLast(1024)) + Self.rawHeader("/app/link.pyc", flag: "1", link: "./app/m.pyc") + [UInt8](repeating: 0, count: 1024)
        let f = try Self.apply([l0])
        let link = try #require(f.tree.node(at: Array("app/link.pyc".utf8)))
        #expect(link.digest == SHA256.hash(pyc))
        #expect(link.size == UInt64(pyc.count))
        #expect(link.hardlink == Array("app/m.pyc".utf8))
        #expect(f.tree.node(at: Array("app/m.pyc".utf8))?.pycHeader == Array(pyc.prefix(16)))
        #expect(link.pycHeader == Array(pyc.prefix(16)))
    }

    /// containerd resolves names inside the root: `..` stops there, as the kernel's does at `/`.
    @Test(arguments: [("../../etc/passwd", "etc/passwd"), ("a/../../x", "x"), ("/../x", "x")])
    func dotDotStopsAtTheRootAsTheRuntimeResolvesIt(_ path: String, _ lands: String) throws {
        let archive = Self.rawHeader(path, flag: "0") + [UInt8](repeating: 0, count: 1024)
        let f = try Self.apply([archive])
        #expect(f.tree.entries.map { $0.path.lossyString } == (lands.contains("/") ? ["etc", lands] : [lands]))
    }

    @Test func rootEntriesAreSkippedAndLeadingSlashesAreTheRoot() throws {
        let l0 = Self.rawHeader("./", flag: "5", mode: 0o700) + Self.rawHeader("a/./b/../c", flag: "0") + [UInt8](repeating: 0, count: 1024)
        let l1 = Self.rawHeader("/abs/x", flag: "0") + [UInt8](repeating: 0, count: 1024)
        let f = try Self.apply([l0, l1])
        // The runtime never changes its root directory for a `./` entry.
        #expect(f.tree.root.mode == 0o755)
        #expect(f.tree.node(at: Array("a/c".utf8)) != nil)
        #expect(f.tree.node(at: Array("abs/x".utf8)) != nil)
    }

    @Test func capturesTheStampedManifestOnlyIfItSurvives() throws {
        let l0 = try ArchiveFixture.tar { w in try w.writeFile(Self.file(Imprint.defaultStampPath), content: Array("{}".utf8)) }
        #expect(try Self.apply([l0]).capturedFinal == Array("{}".utf8))
        let l1 = try ArchiveFixture.tar { w in try w.writeFile(Self.file(".imprint/.wh.manifest.json"), content: []) }
        #expect(try Self.apply([l0, l1]).capturedFinal == nil)
        // Without whiteout interpretation (a container filesystem tar) the marker is an ordinary file.
        #expect(try Self.apply([l1], whiteouts: false).tree.node(at: Array(".imprint/.wh.manifest.json".utf8)) != nil)
    }

    @Test func recordedLayersReplayAsAppliedAndSkipUnwantedContent() throws {
        let pyc: [UInt8] = [0xa7, 0x0d, 0x0d, 0x0a] + [UInt8](repeating: 1, count: 20)
        let big = [UInt8](repeating: 7, count: 300_000)
        let l0 = try ArchiveFixture.tar { w in
            try w.writeHeader(Self.dir("d"))
            try w.writeFile(Self.file("d/big"), content: big)
            try w.writeFile(Self.file("d/wanted"), content: Array("w".utf8))
            try w.writeFile(Self.file("d/m.pyc"), content: pyc)
            try w.writeFile(Self.file("d/m.py"), content: Array("x = 1\n".utf8))
        }
        let l1 = try ArchiveFixture.tar { w in
            try w.writeFile(Self.file("d/.wh.wanted"), content: [])
            try w.writeFile(Self.file("d/new"), content: Array("n".utf8))
        }
        let applied = try Self.apply([l0, l1])
        let recorder = LayerFlattener()
        recorder.hashContent = { $0 == Array("d/wanted".utf8) }
        let r0 = try recorder.record(TarReader(MemorySource(l0), name: "layer 1"), layer: 0)
        let r1 = try LayerFlattener().record(TarReader(MemorySource(l1), name: "layer 2"), layer: 1)
        #expect(r0.filesSkipped == 3 && r0.bytesSkipped == UInt64(big.count + pyc.count + 6))
        #expect(r0.filesHashed == 1 && r0.bytesHashed == 1)
        let replayed = LayerFlattener()
        try replayed.replay(r0, layer: 0, source: "layer 1")
        try replayed.replay(r1, layer: 1, source: "layer 2")
        _ = replayed.finish()
        #expect(replayed.skipped.filesSkipped == 3)
        let skipped = try #require(replayed.tree.node(at: Array("d/big".utf8)))
        #expect(skipped.digest == LayerFlattener.placeholderDigest(Array("d/big".utf8), layer: 0))
        #expect(replayed.placeholders.contains(skipped.digest))
        // Headers, source hashes and structure are as when every file is hashed.
        let pycNode = try #require(replayed.tree.node(at: Array("d/m.pyc".utf8)))
        #expect(pycNode.pycHeader == Array(pyc.prefix(16)))
        #expect(replayed.tree.node(at: Array("d/m.py".utf8))?.pySourceHashes == applied.tree.node(at: Array("d/m.py".utf8))?.pySourceHashes)
        #expect(replayed.tree.entries.map { "\($0.path.lossyString) \($0.node.layer ?? -1)" } ==
                applied.tree.entries.map { "\($0.path.lossyString) \($0.node.layer ?? -1)" })
        #expect(replayed.tree.node(at: Array("d/new".utf8))?.digest == SHA256.hash(Array("n".utf8)))
    }
}
