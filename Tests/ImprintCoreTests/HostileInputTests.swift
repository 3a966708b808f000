import Foundation
import Testing
@testable import ImprintCore

/// Inputs that once made imprint trap, hang or allocate by what they claimed, each built here from scratch.
/// Every one must now be a clean error (or a correct answer) — bounded in time and memory.
@Suite struct HostileInputTests {
    /// A tar header (ustar) for a regular file `name` whose size field is `sizeField` (12 bytes), checksum fixed up.
    static func header(_ name: String, sizeField: [UInt8], type: UInt8 = UInt8(ascii: "0")) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        for (i, c) in name.utf8.enumerated() { h[i] = c }
        for (i, c) in "0000644\0".utf8.enumerated() { h[100 + i] = c }
        for i in 0..<12 { h[124 + i] = sizeField[i] }
        h[156] = type
        for (i, c) in "ustar\0" .utf8.enumerated() { h[257 + i] = c }
        h[263] = UInt8(ascii: "0"); h[264] = UInt8(ascii: "0")
        for i in 148..<156 { h[i] = 0x20 }
        let sum = h.reduce(0) { $0 + Int($1) }
        let text = Array(String(format: "%06o\0 ", sum).utf8)
        for i in 0..<8 { h[148 + i] = text[i] }
        return h
    }

    static func octalSize(_ n: Int) -> [UInt8] { Array(String(format: "%011o\0", n).utf8) }

    static func readAll(_ bytes: [UInt8]) throws {
        let r = TarReader(MemorySource(bytes), name: "crafted.tar")
        while try r.next() != nil { try r.forEachContentChunk { _ in } }
    }

    @Test func base256SizeNearTwoToTheSixtyFour() {
        var field = [UInt8](repeating: 0xFF, count: 12)
        field[0] = 0x80
        for i in 1...3 { field[i] = 0 }  // eight bytes of 0xFF: 2^64-1
        let tar = Self.header("big", sizeField: field) + [UInt8](repeating: 0, count: 1024)
        let e = #expect(throws: ImprintError.self) { try Self.readAll(tar) }
        // Go's parseNumeric refuses a base-256 value that does not fit an int64.
        #expect(e?.message.contains("invalid size field") == true, "\(e?.message ?? "")")
    }

    @Test func paxSizeNearTwoToTheSixtyFour() {
        let record = "29 size=18446744073709551000\n"
        let pax = Self.header("./PaxHeaders/x", sizeField: Self.octalSize(record.utf8.count), type: UInt8(ascii: "x"))
            + Array(record.utf8) + [UInt8](repeating: 0, count: 512 - record.utf8.count)
        let tar = pax + Self.header("x", sizeField: Self.octalSize(0)) + [UInt8](repeating: 0, count: 1024)
        let e = #expect(throws: ImprintError.self) { try Self.readAll(tar) }
        #expect(e?.message.contains("invalid pax size record") == true, "\(e?.message ?? "")")
    }

    @Test func paxRecordLengthHuge() {
        let record = "9223372036854775807 path=x\n"
        let pax = Self.header("./PaxHeaders/x", sizeField: Self.octalSize(record.utf8.count), type: UInt8(ascii: "x"))
            + Array(record.utf8) + [UInt8](repeating: 0, count: 512 - record.utf8.count)
        let tar = pax + Self.header("x", sizeField: Self.octalSize(0)) + [UInt8](repeating: 0, count: 1024)
        let e = #expect(throws: ImprintError.self) { try Self.readAll(tar) }
        #expect(e?.message.contains("malformed pax header") == true, "\(e?.message ?? "")")
    }

    static func manifestJSON(entries: String) -> [UInt8] {
        Array(#"{"mediaType":"application/vnd.imprint.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","entries":[\#(entries)]}"#.utf8)
    }

    @Test(arguments: ["-1", "18446744073709551615", "1.5", "\"12\"", "true", "1e30"])
    func manifestSizeMustBeAWholeByteCount(_ size: String) {
        let m = Self.manifestJSON(entries: #"{"path":"a","type":"file","mode":"0644","size":\#(size),"sha256":"\#(String(repeating: "0", count: 64))"}"#)
        let e = #expect(throws: ImprintError.self) { try Manifest.parse(m, source: "m.json") }
        #expect(e?.message.contains("size is missing or not a whole number") == true, "\(e?.message ?? "")")
    }

    @Test func manifestSizesThatWouldOverflowTheirSum() throws {
        // Two legal maxima: the directory size saturates instead of overflowing.
        let big = TarReader.maxEntrySize
        let t = Tree()
        for name in ["a", "b", "c"] + (0..<300).map { "f\($0)" } {
            t.insert(Array(name.utf8), TreeNode(type: .file, mode: 0o644, size: big, digest: .empty))
        }
        t.computeDigests()
        #expect(t.root.size == .max)
        #expect(t.statistics.bytes == .max)
    }

    @Test func directoryObjectSymlinkLengthBeyondIntMax() throws {
        // One symlink child; its attribute claims a target of 2^63+ bytes. The id and checksum are valid.
        let target = Array("t".utf8)
        let child = TreeNode.symlink(target)
        var record: [UInt8] = []
        Tree.canonicalRecord(name: Array("l".utf8), node: child, into: &record)
        var attrs: [UInt8] = []
        DirectoryObject.appendVarint(UInt64(Int.max) + 5, to: &attrs)
        let body = record + attrs
        let id = SHA256.hash(record)
        let o = HistoryObject(kind: .directory, id: id, body: body, identifiedLength: record.count)
        let e = #expect(throws: ImprintError.self) { try DirectoryObject.decode(o) }
        #expect(e?.message.contains("truncated symlink target") == true)
        // And through the stored form, whose checksums hold.
        let stored = try ObjectStore.encode(kind: .directory, body: body, identifiedLength: record.count)
        let o2 = try ObjectStore.decode(stored, id: id)
        #expect(throws: ImprintError.self) { try DirectoryObject.decode(o2) }
    }

    @Test func objectHeaderClaimingAHugeBodyAllocatesNothing() {
        // 45-byte header claiming 200 MiB, then a few bytes of zlib.
        var file = ObjectStore.magic + [HistoryObjectKind.directory.rawValue]
        ObjectStore.appendU32(0, to: &file)
        ObjectStore.appendU32(200 << 20, to: &file)
        file += [UInt8](repeating: 0, count: 32)
        file += [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]
        let start = Deadline.now()
        let e = #expect(throws: ImprintError.self) { try ObjectStore.decode(file, id: .empty) }
        #expect(e?.message.contains("header claims") == true, "\(e?.message ?? "")")
        #expect(start.remaining > -1)
    }

    @Test(arguments: ["9999-01-01", "@99999999999", "@-99999999999", "1000-01-01", "2024-13-01", "2024-01-01T25:00:00Z"])
    func timesOutsideTheRangeAreRejected(_ text: String) {
        #expect(HistoryTime.parse(text) == nil)
    }

    @Test func extremeRecordTimesFormat() {
        #expect(HistoryTime.rfc3339(nanos: .min).hasPrefix("1677-09-21T00:12:43."))
        #expect(HistoryTime.rfc3339(nanos: .max).hasPrefix("2262-04-11T23:47:16."))
        #expect(HistoryTime.parse(HistoryTime.rfc3339(nanos: 1_700_000_000_123_456_789)) == 1_700_000_000_123_456_789)
    }

    /// Patterns that backtracking matchers take exponential time on; RE2 is linear.
    @Test(arguments: [("*a*a*a*a*a*a*a*a*a*a*a*a*b", String(repeating: "a", count: 40)),
                      ("**/**/**/**/**/**/**/**/**/**/**/**/x", Array(repeating: "d", count: 30).joined(separator: "/")),
                      (String(repeating: "*a", count: 500) + "b", String(repeating: "a", count: 4000))])
    func backtrackingPatternsMatchInLinearTime(_ pattern: String, _ path: String) throws {
        let ig = try DockerIgnore.parse(Array(pattern.utf8), file: ".dockerignore")
        let start = Deadline.now()
        #expect(try !ig.matches(Array(path.utf8), parent: nil).excluded)
        #expect(start.remaining > -0.5, "matching took \(-start.remaining) s")
    }

    @Test func zlibBombInAnObjectIsCutAtTheClaimedLength() throws {
        // The stream inflates to 64 MiB of zeros; the header claims 1 KiB.
        let zeros = [UInt8](repeating: 0, count: 64 << 20)
        let compressed = try Compression.zlibCompress(zeros)
        let e = #expect(throws: ImprintError.self) { try Compression.zlibUncompress(compressed[...], expectedLength: 1024) }
        #expect(e?.message.contains("more than the 1024 bytes") == true)
    }
}
