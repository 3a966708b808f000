import Foundation
import Testing
@testable import ImprintCore

@Suite struct GzipTests {
    static func sample(_ n: Int) -> [UInt8] {
        (0..<n).map { UInt8(truncatingIfNeeded: ($0 * 7) ^ ($0 >> 9)) }
    }

    static func compress(_ data: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        let e = GzipEncoder { out.append(contentsOf: $0) }
        // Several writes, to exercise streaming.
        var i = 0
        while i < data.count {
            let j = min(data.count, i + 100_000)
            try e.write(Array(data[i..<j]))
            i = j
        }
        try e.finish()
        return out
    }

    static func decompress(_ data: [UInt8], name: String = "test") throws -> [UInt8] {
        let (s, _) = try Compression.decompressing(MemorySource(data), name: name)
        return try s.readAll(limit: 1 << 30, what: name)
    }

    @Test func encoderOutputPassesGzipAndIsDeterministic() throws {
        try ArchiveFixture.require("gzip")
        try ArchiveFixture.withTemp { dir in
            let data = GzipTests.sample(1_000_000)
            let gz = try GzipTests.compress(data)
            #expect(gz == (try GzipTests.compress(data)))
            #expect(Array(gz[4..<8]) == [0, 0, 0, 0])  // mtime 0
            try ArchiveFixture.write(dir + "/a.gz", gz)
            try ArchiveFixture.shell("gzip -t a.gz && gzip -dc a.gz > a", cwd: dir)
            #expect(try ArchiveFixture.bytes(dir + "/a") == data)
        }
    }

    @Test func decoderReadsGzipOutputAndMultipleMembers() throws {
        try ArchiveFixture.require("gzip")
        try ArchiveFixture.withTemp { dir in
            try ArchiveFixture.write(dir + "/a", GzipTests.sample(300_000))
            try ArchiveFixture.shell("gzip -c a > a.gz; printf 'second' | gzip -c > b.gz; cat a.gz b.gz > ab.gz", cwd: dir)
            #expect(try GzipTests.decompress(try ArchiveFixture.bytes(dir + "/a.gz")) == GzipTests.sample(300_000))
            #expect(try GzipTests.decompress(try ArchiveFixture.bytes(dir + "/ab.gz")) == GzipTests.sample(300_000) + Array("second".utf8))
        }
    }

    @Test func truncatedGzipIsAClearError() throws {
        let gz = try GzipTests.compress(GzipTests.sample(200_000))
        do {
            _ = try GzipTests.decompress(Array(gz.prefix(gz.count / 2)), name: "layer 3")
            Issue.record("no error")
        } catch let e as ImprintError {
            #expect(e.message.contains("layer 3"))
            #expect(e.message.contains("truncated"))
        }
    }

    @Test func zstdIsRefusedAndPlainPassesThrough() throws {
        do {
            _ = try GzipTests.decompress([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0], name: "layer 1")
            Issue.record("no error")
        } catch let e as ImprintError {
            #expect(e.message.contains("is a zstd stream, which imprint does not read"))
        }
        #expect(try GzipTests.decompress(Array("plain".utf8)) == Array("plain".utf8))
        #expect(try GzipTests.decompress([]) == [])
    }
}

extension GzipTests {
    /// Streams that are not tar are named by their compression, with the command that makes them readable; the
    /// magic numbers are the tools' own.
    @Test(arguments: [("bzip2", "bzip2 -dc"), ("xz", "xz -dc")])
    func otherCompressionsAreNamed(_ tool: String, _ remedy: String) throws {
        try ArchiveFixture.require(tool)
        let compressed = try ArchiveFixture.withTemp { dir in
            try ArchiveFixture.shell("printf 'hello' | \(tool) -c > out", cwd: dir)
            return Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/out")))
        }
        do {
            _ = try GzipTests.decompress(compressed, name: "stdin")
            Issue.record("no error")
        } catch let e as ImprintError {
            #expect(e.message.contains("stdin is a \(tool) stream") && e.message.contains(remedy), "\(e.message)")
        }
    }

    /// Go's gzip reader, which runtimes read layers with: members may follow each other, but anything else after a
    /// member (zeros, garbage, a zlib stream) is an error.
    @Test func onlyGzipMembersMayFollowAMember() throws {
        let member = try GzipEncoder.compress(Array("abc".utf8), level: 6)
        #expect(try GzipTests.decompress(member + member) == Array("abcabc".utf8))
        for tail: [UInt8] in [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0], Array("garbage!!!".utf8), [0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]] {
            #expect(throws: ImprintError.self) { _ = try GzipTests.decompress(member + tail) }
        }
    }
}
