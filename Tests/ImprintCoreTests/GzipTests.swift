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
            #expect(e.message.contains("zstd layers are not supported"))
        }
        #expect(try GzipTests.decompress(Array("plain".utf8)) == Array("plain".utf8))
        #expect(try GzipTests.decompress([]) == [])
    }
}
