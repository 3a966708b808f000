import Foundation

/// One entry of a tar archive after PAX and GNU extension headers have been applied.
public struct TarEntry: Sendable {
    /// The kind of entry, from the ustar type flag.
    public enum Kind: Sendable, Equatable {
        case file, hardlink, symlink, characterDevice, blockDevice, directory, fifo
        /// A type flag imprint does not model (GNU sparse `S`, vendor extensions); its data is skipped.
        case other(UInt8)

        init(flag: UInt8) {
            switch flag {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): self = .file
            case UInt8(ascii: "1"): self = .hardlink
            case UInt8(ascii: "2"): self = .symlink
            case UInt8(ascii: "3"): self = .characterDevice
            case UInt8(ascii: "4"): self = .blockDevice
            case UInt8(ascii: "5"): self = .directory
            case UInt8(ascii: "6"): self = .fifo
            default: self = .other(flag)
            }
        }

        var flag: UInt8 {
            switch self {
            case .file: return UInt8(ascii: "0")
            case .hardlink: return UInt8(ascii: "1")
            case .symlink: return UInt8(ascii: "2")
            case .characterDevice: return UInt8(ascii: "3")
            case .blockDevice: return UInt8(ascii: "4")
            case .directory: return UInt8(ascii: "5")
            case .fifo: return UInt8(ascii: "6")
            case .other(let f): return f
            }
        }
    }

    public var path: Bytes
    public var kind: Kind
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var size: UInt64
    public var mtime: Int64
    /// Target of a symlink or hard link.
    public var linkName: Bytes
    public var uname: String
    public var gname: String
    public var devMajor: UInt32
    public var devMinor: UInt32
    /// `SCHILY.xattr.*` PAX records, keyed by attribute name.
    public var xattrs: [String: Bytes]
    /// Offset of this entry's data from the start of the archive (for reading members of an archive file).
    public var dataOffset: UInt64

    public init(path: Bytes, kind: Kind, mode: UInt32 = 0o644, uid: UInt32 = 0, gid: UInt32 = 0, size: UInt64 = 0,
                mtime: Int64 = 0, linkName: Bytes = [], uname: String = "", gname: String = "",
                devMajor: UInt32 = 0, devMinor: UInt32 = 0, xattrs: [String: Bytes] = [:], dataOffset: UInt64 = 0) {
        self.path = path; self.kind = kind; self.mode = mode; self.uid = uid; self.gid = gid; self.size = size
        self.mtime = mtime; self.linkName = linkName; self.uname = uname; self.gname = gname
        self.devMajor = devMajor; self.devMinor = devMinor; self.xattrs = xattrs; self.dataOffset = dataOffset
    }
}

/// A streaming tar reader: ustar, PAX (per-file and global), GNU long names (`L`/`K`), base-256 numbers.
///
/// Call `next()` for each header, then optionally `readContent`/`forEachContentChunk` for its data; unread data
/// is skipped by the next `next()`. Only one buffer is held, never a whole archive. An archive that ends without
/// the two zero blocks (or after one) is accepted.
public final class TarReader {
    private let source: ByteSource
    /// Name used in error messages (a file, a layer digest).
    public let name: String
    private let buffer: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    /// Bytes of the archive consumed so far.
    public private(set) var offset: UInt64 = 0
    private var remaining: UInt64 = 0
    private var padding: UInt64 = 0
    private var globalPAX: [String: Bytes] = [:]
    private var done = false

    public init(_ source: ByteSource, name: String, bufferSize: Int = 1 << 20) {
        self.source = source
        self.name = name
        buffer = .allocate(byteCount: max(bufferSize, 4096), alignment: 16)
    }

    deinit { buffer.deallocate() }

    // MARK: Buffer

    private var buffered: Int { end - start }

    /// Ensures at least `count` bytes are buffered; returns false at end of stream.
    private func ensure(_ count: Int) throws -> Bool {
        if buffered >= count { return true }
        if start > 0 {
            if buffered > 0 { buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: buffered) }
            end = buffered
            start = 0
        }
        while end < count {
            let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[end...]))
            if n == 0 { return false }
            end += n
        }
        return true
    }

    private func consume(_ n: Int) {
        start += n
        offset += UInt64(n)
    }

    private func skipBytes(_ count: UInt64) throws {
        var left = count
        let fromBuffer = Int(min(UInt64(buffered), left))
        consume(fromBuffer)
        left -= UInt64(fromBuffer)
        if left > 0 {
            do { try source.skip(left) } catch let e as ImprintError where e.code == .badInput {
                throw truncated()
            }
            offset += left
        }
    }

    private func truncated() -> ImprintError {
        ImprintError.badInput("cannot read \(name): tar archive truncated at offset \(offset)")
    }

    // MARK: Entries

    /// Reads the next entry's header (skipping the rest of the previous entry's data).
    /// - Returns: nil at the end of the archive.
    /// - Throws: `badInput` for a bad header checksum, a malformed PAX record or a truncated archive.
    public func next() throws -> TarEntry? {
        if done { return nil }
        try skipBytes(remaining + padding)
        remaining = 0
        padding = 0
        var pax: [String: Bytes] = [:]
        var longName: Bytes?
        var longLink: Bytes?
        while true {
            guard try ensure(512) else {
                if buffered == 0 && pax.isEmpty && longName == nil && longLink == nil { done = true; return nil }
                throw truncated()
            }
            let header = UnsafeRawBufferPointer(rebasing: buffer[start..<(start + 512)])
            if header.allSatisfy({ $0 == 0 }) {
                // End of archive: one or two zero blocks. Do not insist on the second.
                done = true
                consume(512)
                return nil
            }
            let headerOffset = offset
            try verifyChecksum(header, at: headerOffset)
            let flag = header[156]
            let size = try TarReader.checkedSize(try numeric(header, 124, 12, field: "size", at: headerOffset), name: name, at: headerOffset)
            var entry = TarEntry(path: [], kind: TarEntry.Kind(flag: flag))
            entry.size = size
            entry.mode = UInt32(truncatingIfNeeded: try numeric(header, 100, 8, field: "mode", at: headerOffset)) & 0o7777
            entry.uid = UInt32(truncatingIfNeeded: try numeric(header, 108, 8, field: "uid", at: headerOffset))
            entry.gid = UInt32(truncatingIfNeeded: try numeric(header, 116, 8, field: "gid", at: headerOffset))
            entry.mtime = Int64(truncatingIfNeeded: try numeric(header, 136, 12, field: "mtime", at: headerOffset))
            entry.linkName = cString(header, 157, 100)
            let magic = Array(header[257..<263])
            let isUstar = magic.starts(with: Array("ustar".utf8))
            var path = cString(header, 0, 100)
            if isUstar {
                entry.uname = String(decoding: cString(header, 265, 32), as: UTF8.self)
                entry.gname = String(decoding: cString(header, 297, 32), as: UTF8.self)
                entry.devMajor = UInt32(truncatingIfNeeded: (try? numeric(header, 329, 8, field: "devmajor", at: headerOffset)) ?? 0)
                entry.devMinor = UInt32(truncatingIfNeeded: (try? numeric(header, 337, 8, field: "devminor", at: headerOffset)) ?? 0)
                // POSIX ustar prefix; GNU tar's magic ("ustar  \0") uses those bytes for atime/ctime instead.
                if magic == Array("ustar\0".utf8) {
                    let prefix = cString(header, 345, 155)
                    if !prefix.isEmpty { path = prefix + [UInt8(ascii: "/")] + path }
                }
            }
            entry.path = path
            consume(512)
            let dataPadding = (512 - size % 512) % 512
            switch flag {
            case UInt8(ascii: "x"), UInt8(ascii: "g"):
                let data = try readSmall(size, what: "PAX header", at: headerOffset)
                try skipBytes(dataPadding)
                let records = try parsePAX(data, at: headerOffset)
                if flag == UInt8(ascii: "g") {
                    for (k, v) in records { globalPAX[k] = v }
                } else {
                    for (k, v) in records { pax[k] = v }
                }
                continue
            case UInt8(ascii: "L"), UInt8(ascii: "K"):
                var data = try readSmall(size, what: "GNU long name", at: headerOffset)
                try skipBytes(dataPadding)
                if let z = data.firstIndex(of: 0) { data.removeSubrange(z...) }
                if flag == UInt8(ascii: "L") { longName = data } else { longLink = data }
                continue
            default:
                break
            }
            if let longName { entry.path = longName }
            if let longLink { entry.linkName = longLink }
            try apply(globalPAX, to: &entry, at: headerOffset)
            try apply(pax, to: &entry, at: headerOffset)
            // Hard links, symlinks and directories carry no data in practice; honour an explicit size for files only.
            switch entry.kind {
            case .file, .other: break
            default:
                remaining = 0
                padding = 0
                // The size field of a link may be non-zero in odd archives; the data still follows and must be skipped.
                if entry.size > 0 {
                    remaining = entry.size
                    padding = (512 - entry.size % 512) % 512
                    entry.size = 0
                }
                entry.dataOffset = offset
                ProgressMeter.shared.add(items: 1)
                return entry
            }
            entry.dataOffset = offset
            remaining = entry.size
            padding = (512 - entry.size % 512) % 512
            ProgressMeter.shared.add(items: 1)
            return entry
        }
    }

    /// Reads up to `out.count` bytes of the current entry's data; returns 0 at the end of the entry.
    public func readContent(into out: UnsafeMutableRawBufferPointer) throws -> Int {
        if remaining == 0 { return 0 }
        if buffered == 0 {
            // Large reads bypass the buffer.
            if out.count >= buffer.count / 2 {
                let want = Int(min(UInt64(out.count), remaining))
                let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: out[0..<want]))
                if n == 0 { throw truncated() }
                remaining -= UInt64(n)
                offset += UInt64(n)
                ProgressMeter.shared.add(bytes: UInt64(n))
                return n
            }
            guard try ensure(1) else { throw truncated() }
        }
        let n = Int(min(UInt64(min(out.count, buffered)), remaining))
        out.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: n)
        consume(n)
        remaining -= UInt64(n)
        ProgressMeter.shared.add(bytes: UInt64(n))
        return n
    }

    /// Calls `body` with the current entry's data in chunks straight out of the read buffer (no copy).
    public func forEachContentChunk(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        while remaining > 0 {
            if buffered == 0 {
                start = 0; end = 0
                let n = try source.read(into: buffer)
                if n == 0 { throw truncated() }
                end = n
            }
            let n = Int(min(UInt64(buffered), remaining))
            try body(UnsafeRawBufferPointer(rebasing: buffer[start..<(start + n)]))
            consume(n)
            remaining -= UInt64(n)
            ProgressMeter.shared.add(bytes: UInt64(n))
        }
    }

    /// Reads the whole current entry into memory (for small members: JSON documents, manifests).
    public func readContent(limit: Int) throws -> [UInt8] {
        guard remaining <= UInt64(limit) else {
            throw ImprintError.badInput("cannot read \(name): entry of \(formatBytes(remaining)) is larger than \(formatBytes(UInt64(limit)))")
        }
        var out: [UInt8] = []
        out.reserveCapacity(Int(min(remaining, 1 << 20)))  // what arrives, not what the header claims
        try forEachContentChunk { out.append(contentsOf: $0) }
        return out
    }

    private func readSmall(_ size: UInt64, what: String, at headerOffset: UInt64) throws -> [UInt8] {
        guard size <= 16 << 20 else {
            throw ImprintError.badInput("cannot read \(name): \(what) at offset \(headerOffset) is implausibly large (\(size) bytes)")
        }
        remaining = size
        let data = try readContent(limit: Int(size))
        remaining = 0
        return data
    }

    // MARK: Header fields

    private func verifyChecksum(_ header: UnsafeRawBufferPointer, at headerOffset: UInt64) throws {
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for i in 0..<512 {
            let b = (148..<156).contains(i) ? UInt8(ascii: " ") : header[i]
            unsigned += Int64(b)
            signed += Int64(Int8(bitPattern: b))
        }
        let stored = cString(header, 148, 8)
        let digits = stored.filter { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }
        guard !digits.isEmpty, let value = Int64(String(decoding: digits, as: UTF8.self), radix: 8),
              value == unsigned || value == signed else {
            throw ImprintError.badInput("cannot read \(name): bad tar header checksum at offset \(headerOffset) (not a tar archive, or corrupt)")
        }
    }

    private func numeric(_ h: UnsafeRawBufferPointer, _ off: Int, _ len: Int, field: String, at headerOffset: UInt64) throws -> UInt64 {
        if h[off] & 0x80 != 0 {
            // Base-256: big-endian two's complement with the high bit of the first byte as the marker.
            if h[off] == 0xff { throw ImprintError.badInput("cannot read \(name): negative \(field) at offset \(headerOffset)") }
            var v: UInt64 = UInt64(h[off] & 0x7f)
            for i in (off + 1)..<(off + len) {
                guard v >> 56 == 0 else { throw ImprintError.badInput("cannot read \(name): \(field) overflows at offset \(headerOffset)") }
                v = v << 8 | UInt64(h[i])
            }
            return v
        }
        var v: UInt64 = 0
        var seen = false
        for i in off..<(off + len) {
            let c = h[i]
            if c == 0 { break }
            if c == UInt8(ascii: " ") { if seen { break } else { continue } }
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "7") else {
                throw ImprintError.badInput("cannot read \(name): invalid \(field) field at offset \(headerOffset)")
            }
            seen = true
            v = v << 3 | UInt64(c - UInt8(ascii: "0"))
        }
        return v
    }

    /// The largest entry size accepted: far beyond any real file, and small enough that offsets, padding and
    /// sums of sizes never overflow.
    public static let maxEntrySize: UInt64 = 1 << 56

    static func checkedSize(_ size: UInt64, name: String, at offset: UInt64) throws -> UInt64 {
        guard size <= maxEntrySize else {
            throw ImprintError.badInput("cannot read \(name): entry at offset \(offset) claims an implausible size (\(size) bytes)")
        }
        return size
    }

    private func cString(_ h: UnsafeRawBufferPointer, _ off: Int, _ len: Int) -> Bytes {
        var out: Bytes = []
        for i in off..<(off + len) {
            if h[i] == 0 { break }
            out.append(h[i])
        }
        return out
    }

    private func parsePAX(_ data: [UInt8], at headerOffset: UInt64) throws -> [(String, Bytes)] {
        var out: [(String, Bytes)] = []
        var i = 0
        func bad() -> ImprintError { ImprintError.badInput("cannot read \(name): malformed PAX header at offset \(headerOffset)") }
        while i < data.count {
            if data[i] == 0 { break }
            guard let sp = data[i...].firstIndex(of: UInt8(ascii: " ")),
                  sp - i <= 20, let len = Int(String(decoding: data[i..<sp], as: UTF8.self)), len > sp - i, len <= data.count - i,
                  data[i + len - 1] == 0x0A,
                  let eq = data[(sp + 1)..<(i + len)].firstIndex(of: UInt8(ascii: "=")) else { throw bad() }
            let key = String(decoding: data[(sp + 1)..<eq], as: UTF8.self)
            let value = Array(data[(eq + 1)..<(i + len - 1)])
            out.append((key, value))
            i += len
        }
        return out
    }

    private func apply(_ records: [String: Bytes], to entry: inout TarEntry, at headerOffset: UInt64) throws {
        func number(_ v: Bytes, _ key: String) throws -> UInt64 {
            guard let n = UInt64(String(decoding: v, as: UTF8.self)) else {
                throw ImprintError.badInput("cannot read \(name): invalid PAX \(key) at offset \(headerOffset)")
            }
            return n
        }
        for (key, value) in records {
            switch key {
            case "path": entry.path = value
            case "linkpath": entry.linkName = value
            case "size": entry.size = try TarReader.checkedSize(try number(value, key), name: name, at: headerOffset)
            case "uid": entry.uid = UInt32(truncatingIfNeeded: try number(value, key))
            case "gid": entry.gid = UInt32(truncatingIfNeeded: try number(value, key))
            case "uname": entry.uname = String(decoding: value, as: UTF8.self)
            case "gname": entry.gname = String(decoding: value, as: UTF8.self)
            case "mtime":
                // Fractional seconds are allowed; keep the whole seconds.
                let s = String(decoding: value, as: UTF8.self)
                let whole = s.split(separator: ".", maxSplits: 1).first.map(String.init) ?? s
                guard let t = Int64(whole) else { throw ImprintError.badInput("cannot read \(name): invalid PAX mtime at offset \(headerOffset)") }
                entry.mtime = t
            default:
                if key.hasPrefix("SCHILY.xattr.") {
                    entry.xattrs[String(key.dropFirst("SCHILY.xattr.".count))] = value
                }
            }
        }
    }
}
