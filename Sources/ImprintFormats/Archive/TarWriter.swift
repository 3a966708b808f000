import Foundation

/// A streaming tar writer producing POSIX ustar headers, with a PAX header whenever a value does not fit.
///
/// Output is deterministic: the same entries in the same order give the same bytes. Paths that are absolute or
/// contain `..` are refused.
package final class TarWriter {
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    /// Bytes written so far.
    package private(set) var offset: UInt64 = 0
    private var pendingData: UInt64 = 0
    private var finished = false

    /// - Parameter sink: receives the archive bytes in order.
    package init(sink: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        self.sink = sink
    }

    private func emit(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try sink($0) }
        offset += UInt64(bytes.count)
    }

    /// Writes a header for `entry`; a file's `entry.size` bytes must follow through `writeContent`.
    /// - Throws: `badInput` for an unsafe path; `failure` when the previous entry's data is incomplete.
    package func writeHeader(_ entry: TarEntry) throws {
        guard pendingData == 0 else { throw ImprintError(.failure, "tar writer: previous entry is missing \(pendingData) bytes of data") }
        try TarWriter.checkSafe(entry.path)
        var pax: [(String, Bytes)] = []
        var path = entry.path
        if entry.kind == .directory, path.last != UInt8(ascii: "/") { path.append(UInt8(ascii: "/")) }
        let ascii = { (b: Bytes) in b.allSatisfy { $0 < 0x80 && $0 != 0 } }
        var name = path
        var prefix: Bytes = []
        if path.count > 100 || !ascii(path) {
            if ascii(path), let split = TarWriter.ustarSplit(path) {
                (prefix, name) = split
            } else {
                pax.append(("path", path))
                name = Array(path.prefix(100))
            }
        }
        var link = entry.linkName
        if link.count > 100 || !ascii(link) {
            pax.append(("linkpath", link))
            link = Array(link.prefix(100))
        }
        let size = entry.kind == .file ? entry.size : 0
        if size > 0o77777777777 { pax.append(("size", Array(String(size).utf8))) }
        if entry.uid > 0o7777777 { pax.append(("uid", Array(String(entry.uid).utf8))) }
        if entry.gid > 0o7777777 { pax.append(("gid", Array(String(entry.gid).utf8))) }
        if entry.mtime < 0 || entry.mtime > 0o77777777777 { pax.append(("mtime", Array(String(entry.mtime).utf8))) }
        for key in entry.xattrs.keys.sorted() { pax.append(("SCHILY.xattr." + key, entry.xattrs[key]!)) }
        if !pax.isEmpty {
            var data: [UInt8] = []
            for (k, v) in pax { data.append(contentsOf: TarWriter.paxRecord(k, v)) }
            var paxName = Array("PaxHeaders/".utf8) + Array(name.prefix(80))
            if !ascii(paxName) { paxName = Array("PaxHeaders/entry".utf8) }
            let header = TarWriter.header(name: paxName, prefix: [], mode: 0o644, uid: 0, gid: 0, size: UInt64(data.count),
                                          mtime: 0, flag: UInt8(ascii: "x"), link: [], uname: "", gname: "", major: 0, minor: 0)
            try emit(header)
            try emit(data)
            try pad(UInt64(data.count))
        }
        let header = TarWriter.header(name: name, prefix: prefix, mode: entry.mode, uid: min(entry.uid, 0o7777777),
                                      gid: min(entry.gid, 0o7777777), size: min(size, 0o77777777777),
                                      mtime: max(0, min(entry.mtime, 0o77777777777)), flag: entry.kind.flag, link: link,
                                      uname: entry.uname, gname: entry.gname, major: entry.devMajor, minor: entry.devMinor)
        try emit(header)
        pendingData = size
        if size == 0 { pendingData = 0 }
        currentSize = size
    }

    private var currentSize: UInt64 = 0

    /// Writes data of the current file entry.
    package func writeContent(_ buffer: UnsafeRawBufferPointer) throws {
        guard UInt64(buffer.count) <= pendingData else { throw ImprintError(.failure, "tar writer: more data than the entry's size") }
        try sink(buffer)
        offset += UInt64(buffer.count)
        pendingData -= UInt64(buffer.count)
        if pendingData == 0 { try pad(currentSize) }
    }

    /// Writes a whole file entry whose content is in memory.
    package func writeFile(_ entry: TarEntry, content: [UInt8]) throws {
        var e = entry
        e.kind = .file
        e.size = UInt64(content.count)
        try writeHeader(e)
        if !content.isEmpty { try content.withUnsafeBytes { try writeContent($0) } }
    }

    /// Writes the two zero blocks that end an archive.
    package func finish() throws {
        guard !finished else { return }
        guard pendingData == 0 else { throw ImprintError(.failure, "tar writer: last entry is missing \(pendingData) bytes of data") }
        finished = true
        try emit([UInt8](repeating: 0, count: 1024))
    }

    private func pad(_ size: UInt64) throws {
        let p = Int((512 - size % 512) % 512)
        if p > 0 { try emit([UInt8](repeating: 0, count: p)) }
    }

    /// Refuses absolute paths, `..` components and empty paths: a writer never produces an escaping entry.
    package static func checkSafe(_ path: Bytes) throws {
        let comps = path.pathComponents
        if path.first == UInt8(ascii: "/") || comps.isEmpty || comps.contains([0x2E, 0x2E]) || path.contains(0) {
            throw ImprintError.badInput("refusing to write tar entry \"\(path.lossyString)\": absolute or escaping path")
        }
    }

    package static func ustarSplit(_ path: Bytes) -> (Bytes, Bytes)? {
        guard path.count <= 256 else { return nil }
        var i = path.count - 1
        while i > 0 {
            if path[i] == UInt8(ascii: "/"), i <= 155, path.count - i - 1 <= 100, path.count - i - 1 > 0 {
                return (Array(path[..<i]), Array(path[(i + 1)...]))
            }
            i -= 1
        }
        return nil
    }

    package static func paxRecord(_ key: String, _ value: Bytes) -> [UInt8] {
        let body = Array(" \(key)=".utf8) + value + [0x0A]
        var len = body.count + 1
        while String(len).utf8.count + body.count != len { len = String(len).utf8.count + body.count }
        return Array(String(len).utf8) + body
    }

    package static func header(name: Bytes, prefix: Bytes, mode: UInt32, uid: UInt32, gid: UInt32, size: UInt64, mtime: Int64,
                       flag: UInt8, link: Bytes, uname: String, gname: String, major: UInt32, minor: UInt32) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ bytes: Bytes, _ off: Int, _ len: Int) {
            for (i, b) in bytes.prefix(len).enumerated() { h[off + i] = b }
        }
        func octal(_ v: UInt64, _ off: Int, _ len: Int) {
            let s = String(v, radix: 8)
            let padded = String(repeating: "0", count: max(0, len - 1 - s.count)) + s
            put(Array(padded.utf8), off, len - 1)
        }
        put(name, 0, 100)
        octal(UInt64(mode & 0o7777), 100, 8)
        octal(UInt64(uid), 108, 8)
        octal(UInt64(gid), 116, 8)
        octal(size, 124, 12)
        octal(UInt64(mtime), 136, 12)
        h[156] = flag
        put(link, 157, 100)
        put(Array("ustar\0".utf8), 257, 6)
        put(Array("00".utf8), 263, 2)
        put(Array(uname.utf8), 265, 32)
        put(Array(gname.utf8), 297, 32)
        if flag == UInt8(ascii: "3") || flag == UInt8(ascii: "4") {
            octal(UInt64(major), 329, 8)
            octal(UInt64(minor), 337, 8)
        }
        put(prefix, 345, 155)
        for i in 148..<156 { h[i] = UInt8(ascii: " ") }
        let sum = h.reduce(0) { $0 + Int($1) }
        let s = String(sum, radix: 8)
        put(Array((String(repeating: "0", count: max(0, 6 - s.count)) + s).utf8), 148, 6)
        h[154] = 0
        h[155] = UInt8(ascii: " ")
        return h
    }
}
