import Foundation

/// One entry of a tar archive after PAX and GNU extension headers have been applied, as Go's `archive/tar`
/// (which every container runtime reads layers with) hands it to its caller.
package struct TarEntry: Sendable {
    /// The kind of entry, from the type flag.
    package enum Kind: Sendable, Equatable {
        case file, hardlink, symlink, characterDevice, blockDevice, directory, fifo
        /// A pax global header (`g`). Go returns it as an entry of its own, named by its header (and by its own
        /// `path` record); runtimes create nothing for it, but still apply its name (see `LayerFlattener`).
        case globalHeader
        /// Any other type flag: GNU sparse `S`, contiguous `7`, vendor extensions. Go reads its data like a
        /// file's; container runtimes refuse the layer.
        case other(UInt8)

        package init(flag: UInt8) {
            switch flag {
            case 0, UInt8(ascii: "0"): self = .file
            case UInt8(ascii: "1"): self = .hardlink
            case UInt8(ascii: "2"): self = .symlink
            case UInt8(ascii: "3"): self = .characterDevice
            case UInt8(ascii: "4"): self = .blockDevice
            case UInt8(ascii: "5"): self = .directory
            case UInt8(ascii: "6"): self = .fifo
            case UInt8(ascii: "g"): self = .globalHeader
            default: self = .other(flag)
            }
        }

        package var flag: UInt8 {
            switch self {
            case .file: return UInt8(ascii: "0")
            case .hardlink: return UInt8(ascii: "1")
            case .symlink: return UInt8(ascii: "2")
            case .characterDevice: return UInt8(ascii: "3")
            case .blockDevice: return UInt8(ascii: "4")
            case .directory: return UInt8(ascii: "5")
            case .fifo: return UInt8(ascii: "6")
            case .globalHeader: return UInt8(ascii: "g")
            case .other(let f): return f
            }
        }
    }

    package var path: Bytes
    package var kind: Kind
    /// Permission bits with setuid, setgid and sticky (`mode & 0o7777`), as a runtime chmods them.
    package var mode: UInt32
    package var uid: UInt32
    package var gid: UInt32
    /// The size of the content (for a sparse file: its logical size, holes included).
    package var size: UInt64
    /// Seconds since the epoch; negative before 1970.
    package var mtime: Int64
    /// Target of a symlink or hard link.
    package var linkName: Bytes
    package var uname: String
    package var gname: String
    package var devMajor: UInt32
    package var devMinor: UInt32
    /// `SCHILY.xattr.*` PAX records, keyed by attribute name.
    package var xattrs: [String: Bytes]
    /// Offset of this entry's data from the start of the archive (for reading members of an archive file).
    package var dataOffset: UInt64
    /// True for a GNU sparse file (PAX formats 0.0, 0.1, 1.0, or the old GNU `S` header): its content is read
    /// with the holes filled with zeros, and `dataOffset` does not locate it.
    package var isSparse = false
    /// Where the header of this entry starts (its first extension header, if any), for messages.
    package var headerOffset: UInt64 = 0

    package init(path: Bytes, kind: Kind, mode: UInt32 = 0o644, uid: UInt32 = 0, gid: UInt32 = 0, size: UInt64 = 0,
                mtime: Int64 = 0, linkName: Bytes = [], uname: String = "", gname: String = "",
                devMajor: UInt32 = 0, devMinor: UInt32 = 0, xattrs: [String: Bytes] = [:], dataOffset: UInt64 = 0) {
        self.path = path; self.kind = kind; self.mode = mode; self.uid = uid; self.gid = gid; self.size = size
        self.mtime = mtime; self.linkName = linkName; self.uname = uname; self.gname = gname
        self.devMajor = devMajor; self.devMinor = devMinor; self.xattrs = xattrs; self.dataOffset = dataOffset
    }
}

/// A streaming tar reader that reads every header exactly as Go's `archive/tar` does (Go 1.19; containerd,
/// podman, umoci, skopeo and BuildKit all read layers and archives with it), so that what imprint sees in a layer
/// is what a runtime unpacks:
///
/// - ustar, pax, GNU and v7 headers; a bad checksum or a malformed number is an error.
/// - Header-only types (hard link, symlink, character and block device, directory, FIFO) carry no data whatever
///   their size field says: the next header follows at once.
/// - Of several pax `x` headers before one entry only the last counts; a record with an empty value keeps the
///   header's own field; a pax global header `g` is returned as an entry of its own, named by its header and its
///   own `path` record, and changes nothing else. GNU long names (`L`/`K`) override pax names.
/// - A v7 entry with type flag NUL and a name ending in `/` is a directory.
/// - GNU sparse files (pax formats 0.0, 0.1 and 1.0, old GNU `S` headers) are read with their holes as zeros;
///   a map that does not cover the stored data exactly is an error when the content is read.
/// - The archive ends at end of input, at one zero block followed by end of input, or at two zero blocks; a zero
///   block followed by anything else, or a header or data cut short, is an error. Padding cut short at the very
///   end is not (Go treats it as the end).
///
/// Call `next()` for each entry, then optionally `readContent`/`forEachContentChunk` for its data; unread data is
/// skipped by the next `next()`. Only one buffer is held, never a whole archive. Errors name the archive, the
/// offset and the reason; after one, the reader is done.
package final class TarReader {
    private let source: ByteSource
    /// Name used in error messages (a file, a layer digest).
    package let name: String
    private let buffer: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    /// Bytes of the archive consumed so far.
    package private(set) var offset: UInt64 = 0
    /// Stored bytes of the current entry's data not read yet.
    private var remaining: UInt64 = 0
    private var padding: UInt64 = 0
    /// The current entry's logical layout when it is sparse.
    private var sparse: SparseLayout?
    private var done = false

    /// Go's limit on pax and GNU long-name data (`maxSpecialFileSize`).
    package static let maxSpecialFileSize = 1 << 20

    package init(_ source: ByteSource, name: String, bufferSize: Int = 1 << 20) {
        self.source = source
        self.name = name
        buffer = .allocate(byteCount: max(bufferSize, 4096), alignment: 16)
    }

    deinit { buffer.deallocate() }

    // MARK: Buffer

    private var buffered: Int { end - start }

    /// Buffers up to `count` bytes; returns how many are buffered (fewer only at the end of the stream).
    private func fill(_ count: Int) throws -> Int {
        if buffered >= count { return count }
        if start > 0 {
            if buffered > 0 { buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: buffered) }
            end = buffered
            start = 0
        }
        while end < count {
            let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[end...]))
            if n == 0 { break }
            end += n
        }
        return min(buffered, count)
    }

    private func consume(_ n: Int) {
        start += n
        offset += UInt64(n)
    }

    /// Skips `count` bytes (seeking where the source can); false when the stream ended first.
    private func skip(_ count: UInt64) throws -> Bool {
        var left = count
        let fromBuffer = Int(min(UInt64(buffered), left))
        consume(fromBuffer)
        left -= UInt64(fromBuffer)
        if left == 0 { return true }
        do { try source.skip(left) } catch let e as ImprintError where e.code == .badInput { return false }
        offset += left
        return true
    }

    private func failure(_ why: String, at headerOffset: UInt64? = nil) -> ImprintError {
        done = true
        let at = headerOffset.map { " at offset \($0)" } ?? ""
        return ImprintError.badInput("cannot read \(name): \(why)\(at)")
    }

    private func truncated() -> ImprintError {
        failure("tar archive truncated at offset \(offset)")
    }

    // MARK: Entries

    /// Reads the next entry's header (skipping the rest of the previous entry's data).
    /// - Returns: nil at the end of the archive.
    /// - Throws: `badInput` naming the offset and the reason, wherever Go's reader fails.
    package func next() throws -> TarEntry? {
        if done { return nil }
        sparse = nil
        var pax: [String: Bytes]?
        var paxOffset: UInt64?
        var longName: Bytes = []
        var longLink: Bytes = []
        while true {
            // The rest of the previous entry (or extension header) must be there; its padding may be cut short at
            // the very end, which Go takes as the end of the archive.
            guard try skip(remaining) else { throw truncated() }
            remaining = 0
            if !(try skip(padding)) { done = true; return nil }
            padding = 0
            let headerOffset = offset
            guard let raw = try readHeader() else { done = true; return nil }
            // Go sets up the data reader from the header's own size first (a negative size fails here).
            try setData(flag: raw.flag, size: raw.size, at: headerOffset)
            switch raw.flag {
            case UInt8(ascii: "x"), UInt8(ascii: "g"):
                let records = try parsePAX(try readSpecial(what: "pax header", at: headerOffset), at: headerOffset)
                if raw.flag == UInt8(ascii: "g") {
                    var h = raw
                    try mergePAX(records, into: &h, at: headerOffset)
                    var entry = TarEntry(path: h.name, kind: .globalHeader, mode: 0)
                    entry.xattrs = h.xattrs
                    entry.headerOffset = headerOffset
                    entry.dataOffset = offset
                    return entry
                }
                pax = records
                if paxOffset == nil { paxOffset = headerOffset }
                continue
            case UInt8(ascii: "L"), UInt8(ascii: "K"):
                var data = try readSpecial(what: "GNU long name", at: headerOffset)
                if let z = data.firstIndex(of: 0) { data.removeSubrange(z...) }
                if raw.flag == UInt8(ascii: "L") { longName = data } else { longLink = data }
                if paxOffset == nil { paxOffset = headerOffset }
                continue
            default:
                break
            }
            var h = raw
            if let pax { try mergePAX(pax, into: &h, at: headerOffset) }
            if !longName.isEmpty { h.name = longName }
            if !longLink.isEmpty { h.linkName = longLink }
            if h.flag == 0 { h.flag = h.name.last == UInt8(ascii: "/") ? UInt8(ascii: "5") : UInt8(ascii: "0") }
            // Pax records may have changed the size.
            try setData(flag: h.flag, size: h.size, at: headerOffset)
            var entry = TarEntry(path: h.name, kind: TarEntry.Kind(flag: h.flag))
            entry.mode = UInt32(truncatingIfNeeded: h.mode) & 0o7777
            entry.uid = UInt32(truncatingIfNeeded: h.uid)
            entry.gid = UInt32(truncatingIfNeeded: h.gid)
            entry.mtime = h.mtime
            entry.linkName = h.linkName
            entry.uname = String(decoding: h.uname, as: UTF8.self)
            entry.gname = String(decoding: h.gname, as: UTF8.self)
            entry.devMajor = UInt32(truncatingIfNeeded: h.devMajor)
            entry.devMinor = UInt32(truncatingIfNeeded: h.devMinor)
            entry.xattrs = h.xattrs
            entry.headerOffset = paxOffset ?? headerOffset
            // Sparse maps (the 1.0 map is read from the data section, the old GNU one from extension headers).
            if let map = try sparseMap(&h, at: headerOffset) {
                guard !TarReader.isHeaderOnly(h.flag), TarReader.validSparse(map, size: h.size) else {
                    throw failure("invalid sparse map for \"\(h.name.lossyString)\"", at: headerOffset)
                }
                sparse = SparseLayout(map, size: h.size)
                entry.isSparse = true
                entry.path = h.name
            }
            // Header-only entries have no content whatever their size says; the others' size is not negative here.
            entry.size = TarReader.isHeaderOnly(h.flag) ? 0 : UInt64(max(0, h.size))
            entry.dataOffset = offset
            ProgressMeter.shared.add(items: 1)
            return entry
        }
    }

    /// Go's `isHeaderOnlyType`: these entries never have a data section.
    package static func isHeaderOnly(_ flag: UInt8) -> Bool {
        switch flag {
        case UInt8(ascii: "1"), UInt8(ascii: "2"), UInt8(ascii: "3"), UInt8(ascii: "4"), UInt8(ascii: "5"), UInt8(ascii: "6"): return true
        default: return false
        }
    }

    /// Go's `handleRegularFile`: the data section of the entry whose header was just read.
    private func setData(flag: UInt8, size: Int64, at headerOffset: UInt64) throws {
        let stored: Int64 = TarReader.isHeaderOnly(flag) ? 0 : size
        guard stored >= 0 else { throw failure("negative size", at: headerOffset) }
        guard UInt64(stored) <= TarReader.maxEntrySize else {
            throw failure("entry claims an implausible size (\(stored) bytes)", at: headerOffset)
        }
        remaining = UInt64(stored)
        padding = (512 - remaining % 512) % 512
    }

    /// Go's `readSpecialFile`: the current entry's data, at most 1 MiB.
    private func readSpecial(what: String, at headerOffset: UInt64) throws -> [UInt8] {
        guard remaining <= UInt64(TarReader.maxSpecialFileSize) else {
            throw failure("\(what) is longer than 1 MiB (\(remaining) bytes)", at: headerOffset)
        }
        var out: [UInt8] = []
        out.reserveCapacity(Int(min(remaining, 1 << 16)))
        try forEachStoredChunk { out.append(contentsOf: $0) }
        return out
    }

    // MARK: Content

    /// Reads up to `out.count` bytes of the current entry's content; returns 0 at its end.
    package func readContent(into out: UnsafeMutableRawBufferPointer) throws -> Int {
        if sparse != nil { return try readSparse(into: out) }
        return try readStored(into: out)
    }

    /// Calls `body` with the current entry's content in chunks (straight out of the read buffer when not sparse).
    package func forEachContentChunk(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        if sparse != nil {
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
            defer { scratch.deallocate() }
            while true {
                let n = try readSparse(into: scratch)
                if n == 0 { return }
                try body(UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
            }
        }
        try forEachStoredChunk(body)
    }

    /// Reads the whole current entry into memory (for small members: JSON documents, manifests).
    package func readContent(limit: Int) throws -> [UInt8] {
        let size = sparse?.size ?? remaining
        guard size <= UInt64(limit) else {
            throw ImprintError.badInput("cannot read \(name): entry of \(formatBytes(size)) is larger than \(formatBytes(UInt64(limit)))")
        }
        var out: [UInt8] = []
        out.reserveCapacity(Int(min(size, 1 << 20)))  // what arrives, not what the header claims
        try forEachContentChunk { out.append(contentsOf: $0) }
        return out
    }

    private func readStored(into out: UnsafeMutableRawBufferPointer) throws -> Int {
        if remaining == 0 || out.count == 0 { return 0 }
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
            guard try fill(1) > 0 else { throw truncated() }
        }
        let n = Int(min(UInt64(min(out.count, buffered)), remaining))
        out.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: n)
        consume(n)
        remaining -= UInt64(n)
        ProgressMeter.shared.add(bytes: UInt64(n))
        return n
    }

    private func forEachStoredChunk(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
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

    // MARK: Sparse files

    /// A sparse file's content: data fragments read from the stored data, holes as zeros.
    package struct SparseLayout {
        /// (isData, length) in file order.
        package var segments: [(data: Bool, length: UInt64)]
        package var index = 0
        package var left: UInt64
        package let size: UInt64

        package init(_ map: [(offset: Int64, length: Int64)], size: Int64) {
            var segs: [(Bool, UInt64)] = []
            var pos: Int64 = 0
            for f in map where f.length > 0 {
                if f.offset > pos { segs.append((false, UInt64(f.offset - pos))) }
                segs.append((true, UInt64(f.length)))
                pos = f.offset + f.length
            }
            if size > pos { segs.append((false, UInt64(size - pos))) }
            segments = segs
            left = segs.first?.1 ?? 0
            self.size = UInt64(size)
        }
    }

    private func readSparse(into out: UnsafeMutableRawBufferPointer) throws -> Int {
        guard var layout = sparse else { return 0 }
        defer { sparse = layout }
        var n = 0
        while n < out.count {
            while layout.left == 0 && layout.index + 1 < layout.segments.count {
                layout.index += 1
                layout.left = layout.segments[layout.index].length
            }
            if layout.left == 0 { break }
            let want = Int(min(UInt64(out.count - n), layout.left))
            let piece = UnsafeMutableRawBufferPointer(rebasing: out[n..<(n + want)])
            if layout.segments[layout.index].data {
                guard remaining > 0 else { throw failure("sparse file \"\(name)\" has less data than its map describes (at offset \(offset))") }
                let got = try readStored(into: piece)
                n += got
                layout.left -= UInt64(got)
            } else {
                piece.initializeMemory(as: UInt8.self, repeating: 0)
                n += want
                layout.left -= UInt64(want)
            }
        }
        if layout.left == 0 && layout.index + 1 >= layout.segments.count && remaining > 0 {
            throw failure("sparse file has more data than its map describes (at offset \(offset))")
        }
        return n
    }

    /// Go's `validateSparseEntries`.
    package static func validSparse(_ map: [(offset: Int64, length: Int64)], size: Int64) -> Bool {
        if size < 0 { return false }
        var preEnd: Int64 = 0
        for cur in map {
            if cur.offset < 0 || cur.length < 0 { return false }
            if cur.offset > Int64.max - cur.length { return false }
            if cur.offset + cur.length > size { return false }
            if preEnd > cur.offset { return false }
            preEnd = cur.offset + cur.length
        }
        return true
    }

    /// Go's `handleSparseFile` up to the map: nil when the entry is not sparse. May rename and resize `h`.
    private func sparseMap(_ h: inout RawHeader, at headerOffset: UInt64) throws -> [(offset: Int64, length: Int64)]? {
        if h.flag == UInt8(ascii: "S") { return try oldGNUSparseMap(&h, at: headerOffset) }
        guard let records = h.pax else { return nil }
        let major = records["GNU.sparse.major"] ?? [], minor = records["GNU.sparse.minor"] ?? []
        let is1x0: Bool
        switch (String(decoding: major, as: UTF8.self), String(decoding: minor, as: UTF8.self)) {
        case ("0", "0"), ("0", "1"): is1x0 = false
        case ("1", "0"): is1x0 = true
        case (let a, let b) where !a.isEmpty || !b.isEmpty: return nil
        default:
            guard let map = records["GNU.sparse.map"], !map.isEmpty else { return nil }
            is1x0 = false
        }
        if let n = records["GNU.sparse.name"], !n.isEmpty { h.name = n }
        var sizeText = records["GNU.sparse.size"] ?? []
        if sizeText.isEmpty { sizeText = records["GNU.sparse.realsize"] ?? [] }
        if !sizeText.isEmpty {
            guard let n = TarReader.parseInt(sizeText) else { throw failure("invalid sparse size", at: headerOffset) }
            h.size = n
        }
        if is1x0 { return try sparseMap1x0(at: headerOffset) }
        // 0.0 and 0.1: the map is in the pax records.
        guard let count = TarReader.parseInt(records["GNU.sparse.numblocks"] ?? []), count >= 0, count <= Int64.max / 2 else {
            throw failure("invalid sparse map", at: headerOffset)
        }
        var fields = (records["GNU.sparse.map"] ?? []).split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
        if fields.count == 1 && fields[0].isEmpty { fields = [] }
        guard Int64(fields.count) == 2 * count else { throw failure("invalid sparse map", at: headerOffset) }
        var map: [(offset: Int64, length: Int64)] = []
        var i = 0
        while i + 1 < fields.count {
            guard let o = TarReader.parseInt(Array(fields[i])), let l = TarReader.parseInt(Array(fields[i + 1])) else {
                throw failure("invalid sparse map", at: headerOffset)
            }
            map.append((o, l))
            i += 2
        }
        return map
    }

    /// GNU pax sparse format 1.0: newline-separated decimal numbers in whole blocks at the start of the data.
    /// Blocks are read only as far as the numbers need (as Go does); memory follows what is read, never what
    /// the count claims.
    private func sparseMap1x0(at headerOffset: UInt64) throws -> [(offset: Int64, length: Int64)] {
        var block = [UInt8](repeating: 0, count: 512)
        var pending: [Bytes] = []  // complete lines of the blocks read so far, not consumed yet
        var pendingIndex = 0
        var current: Bytes = []
        func token() throws -> Int64 {
            while pendingIndex == pending.count {
                pending.removeAll(keepingCapacity: true); pendingIndex = 0
                guard remaining >= 512 else { throw failure("sparse map cut short", at: headerOffset) }
                var got = 0
                while got < 512 {
                    let n = try block.withUnsafeMutableBytes { try readStored(into: UnsafeMutableRawBufferPointer(rebasing: $0[got...])) }
                    if n == 0 { throw truncated() }
                    got += n
                }
                for c in block {
                    if c == 0x0A {
                        pending.append(current)
                        current = []
                    } else if current.count <= 64 {
                        // Longer than any number: kept short (it fails to parse, if it is ever needed).
                        current.append(c)
                    }
                }
            }
            pendingIndex += 1
            guard let n = TarReader.parseInt(pending[pendingIndex - 1]) else { throw failure("invalid sparse map", at: headerOffset) }
            return n
        }
        let count = try token()
        guard count >= 0, count <= Int64(Int.max / 2) else { throw failure("invalid sparse map", at: headerOffset) }
        var map: [(offset: Int64, length: Int64)] = []
        var i: Int64 = 0
        while i < count {
            let o = try token(), l = try token()
            map.append((o, l))
            i += 1
        }
        return map
    }

    /// The old GNU sparse header (`S`): up to four fragments in the header, more in 512-byte extension blocks.
    private func oldGNUSparseMap(_ h: inout RawHeader, at headerOffset: UInt64) throws -> [(offset: Int64, length: Int64)] {
        guard h.format == .gnu else { throw failure("GNU sparse entry in a non-GNU header", at: headerOffset) }
        var block = h.block
        h.size = try numeric(block, 483, 12, field: "sparse real size", at: headerOffset)
        var map: [(offset: Int64, length: Int64)] = []
        var base = 386, entries = 4, extendedAt = 482
        while true {
            for i in 0..<entries {
                let o = base + i * 24
                if block[o] == 0 { break }
                map.append((try numeric(block, o, 12, field: "sparse offset", at: headerOffset),
                            try numeric(block, o + 12, 12, field: "sparse length", at: headerOffset)))
            }
            guard block[extendedAt] > 0 else { return map }
            guard try fill(512) == 512 else { throw truncated() }
            block = Array(UnsafeRawBufferPointer(rebasing: buffer[start..<(start + 512)]))
            consume(512)
            base = 0; entries = 21; extendedAt = 504
        }
    }

    // MARK: Headers

    package enum Format { case v7, ustar, star, gnu }

    /// A header block's fields as Go's `readHeader` parses them, before extensions are applied.
    package struct RawHeader {
        package var flag: UInt8
        package var name: Bytes
        package var linkName: Bytes
        package var size: Int64
        package var mode: Int64
        package var uid: Int64
        package var gid: Int64
        package var mtime: Int64
        package var uname: Bytes = []
        package var gname: Bytes = []
        package var devMajor: Int64 = 0
        package var devMinor: Int64 = 0
        package var xattrs: [String: Bytes] = [:]
        package var pax: [String: Bytes]?
        package var format: Format
        package var block: [UInt8]
    }

    /// Go's `readHeader`: nil at the end of the archive.
    private func readHeader() throws -> RawHeader? {
        let got = try fill(512)
        if got == 0 { return nil }
        guard got == 512 else { throw truncated() }
        let headerOffset = offset
        let isZero = UnsafeRawBufferPointer(rebasing: buffer[start..<(start + 512)]).allSatisfy { $0 == 0 }
        if isZero {
            consume(512)
            let second = try fill(512)
            if second == 0 { return nil }
            guard second == 512 else { throw truncated() }
            guard UnsafeRawBufferPointer(rebasing: buffer[start..<(start + 512)]).allSatisfy({ $0 == 0 }) else {
                throw failure("a zero block is followed by a header (not a tar archive, or corrupt)", at: offset)
            }
            consume(512)
            return nil
        }
        let b = Array(UnsafeRawBufferPointer(rebasing: buffer[start..<(start + 512)]))
        consume(512)
        // Checksum: the stored octal value must equal the unsigned or the signed sum of the block.
        var unsigned: Int64 = 0, signed: Int64 = 0
        for i in 0..<512 {
            let c = (148..<156).contains(i) ? UInt8(ascii: " ") : b[i]
            unsigned += Int64(c)
            signed += Int64(Int8(bitPattern: c))
        }
        guard let stored = TarReader.parseOctal(b, 148, 8), stored == unsigned || stored == signed else {
            throw failure("bad tar header checksum (not a tar archive, or corrupt)", at: headerOffset)
        }
        let magic = b[257..<263], version = b[263..<265], trailer = b[508..<512]
        let format: Format
        if magic.elementsEqual("ustar\0".utf8) {
            format = trailer.elementsEqual("tar\0".utf8) ? .star : .ustar
        } else if magic.elementsEqual("ustar ".utf8) && version.elementsEqual(" \0".utf8) {
            format = .gnu
        } else {
            format = .v7
        }
        var h = RawHeader(flag: b[156], name: TarReader.cString(b, 0, 100), linkName: TarReader.cString(b, 157, 100),
                          size: try numeric(b, 124, 12, field: "size", at: headerOffset),
                          mode: try numeric(b, 100, 8, field: "mode", at: headerOffset),
                          uid: try numeric(b, 108, 8, field: "uid", at: headerOffset),
                          gid: try numeric(b, 116, 8, field: "gid", at: headerOffset),
                          mtime: try numeric(b, 136, 12, field: "mtime", at: headerOffset), format: format, block: b)
        guard format != .v7 else { return h }
        h.uname = TarReader.cString(b, 265, 32)
        h.gname = TarReader.cString(b, 297, 32)
        h.devMajor = try numeric(b, 329, 8, field: "devmajor", at: headerOffset)
        h.devMinor = try numeric(b, 337, 8, field: "devminor", at: headerOffset)
        var prefix: Bytes = []
        switch format {
        case .ustar:
            prefix = TarReader.cString(b, 345, 155)
        case .star:
            prefix = TarReader.cString(b, 345, 131)
            _ = try numeric(b, 476, 12, field: "atime", at: headerOffset)
            _ = try numeric(b, 488, 12, field: "ctime", at: headerOffset)
        case .gnu:
            // Go reads GNU atime/ctime skeptically: when they do not parse, the field is a pre-Go 1.8 ustar prefix.
            let timesParse = (b[345] == 0 || TarReader.numericValue(b, 345, 12) != nil) && (b[357] == 0 || TarReader.numericValue(b, 357, 12) != nil)
            if !timesParse {
                let p = TarReader.cString(b, 345, 155)
                if p.allSatisfy({ $0 < 0x80 }) { prefix = p }
            }
        case .v7:
            break
        }
        if !prefix.isEmpty { h.name = prefix + [UInt8(ascii: "/")] + h.name }
        return h
    }

    /// Go's `parseNumeric`: base-256 (two's complement, may be negative) or octal.
    private func numeric(_ b: [UInt8], _ off: Int, _ len: Int, field: String, at headerOffset: UInt64) throws -> Int64 {
        guard let v = TarReader.numericValue(b, off, len) else { throw failure("invalid \(field) field", at: headerOffset) }
        return v
    }

    package static func numericValue(_ b: [UInt8], _ off: Int, _ len: Int) -> Int64? {
        if b[off] & 0x80 != 0 {
            let inv: UInt8 = b[off] & 0x40 != 0 ? 0xff : 0
            var x: UInt64 = 0
            for i in off..<(off + len) {
                var c = b[i] ^ inv
                if i == off { c &= 0x7f }
                if x >> 56 > 0 { return nil }
                x = x << 8 | UInt64(c)
            }
            if x >> 63 > 0 { return nil }
            return inv == 0xff ? ~Int64(x) : Int64(x)
        }
        return parseOctal(b, off, len)
    }

    /// Go's `parseOctal`: surrounding spaces and NULs trimmed, then up to the first NUL, strictly octal.
    package static func parseOctal(_ b: [UInt8], _ off: Int, _ len: Int) -> Int64? {
        var lo = off, hi = off + len
        while lo < hi && (b[lo] == 0x20 || b[lo] == 0) { lo += 1 }
        while hi > lo && (b[hi - 1] == 0x20 || b[hi - 1] == 0) { hi -= 1 }
        if lo == hi { return 0 }
        if let z = b[lo..<hi].firstIndex(of: 0) { hi = z }
        if lo == hi { return nil }
        var x: UInt64 = 0
        for c in b[lo..<hi] {
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "7"), x >> 61 == 0 else { return nil }
            x = x << 3 | UInt64(c - UInt8(ascii: "0"))
        }
        return Int64(bitPattern: x)
    }

    /// Go's `strconv.ParseInt(s, 10, 64)`.
    package static func parseInt(_ s: Bytes) -> Int64? {
        guard !s.isEmpty else { return nil }
        var i = 0
        var negative = false
        if s[0] == UInt8(ascii: "+") || s[0] == UInt8(ascii: "-") { negative = s[0] == UInt8(ascii: "-"); i = 1 }
        guard i < s.count else { return nil }
        var x: UInt64 = 0
        while i < s.count {
            let c = s[i]
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
            let (m, o1) = x.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(c - UInt8(ascii: "0")))
            if o1 || o2 { return nil }
            x = a
            i += 1
        }
        if negative { return x <= UInt64(Int64.max) + 1 ? Int64(truncatingIfNeeded: 0 &- x) : nil }
        return x <= UInt64(Int64.max) ? Int64(x) : nil
    }

    package static func cString(_ b: [UInt8], _ off: Int, _ len: Int) -> Bytes {
        let field = b[off..<(off + len)]
        if let z = field.firstIndex(of: 0) { return Array(b[off..<z]) }
        return Array(field)
    }

    /// The largest entry size accepted: far beyond any real file, and small enough that offsets, padding and
    /// sums of sizes never overflow.
    package static let maxEntrySize: UInt64 = Limits.maxEntrySize

    /// Go's `parsePAX`: every record must parse, to the last byte; later records of a key replace earlier ones.
    private func parsePAX(_ data: [UInt8], at headerOffset: UInt64) throws -> [String: Bytes] {
        var out: [String: Bytes] = [:]
        var sparseMap: [Bytes] = []
        var i = 0
        func bad(_ why: String) -> ImprintError { failure("malformed pax header (\(why))", at: headerOffset) }
        while i < data.count {
            guard let sp = data[i...].firstIndex(of: UInt8(ascii: " ")) else { throw bad("no length") }
            guard let n = TarReader.parseInt(Array(data[i..<sp])), n >= 5, n <= Int64(data.count - i) else { throw bad("bad length") }
            let recordEnd = i + Int(n)
            guard recordEnd - (sp + 1) > 0, data[recordEnd - 1] == 0x0A else { throw bad("record not ended by a newline") }
            let record = data[(sp + 1)..<(recordEnd - 1)]
            guard let eq = record.firstIndex(of: UInt8(ascii: "=")) else { throw bad("record without =") }
            let keyBytes = Array(record[record.startIndex..<eq]), value = Array(record[(eq + 1)...])
            let key = String(decoding: keyBytes, as: UTF8.self)
            guard !keyBytes.isEmpty else { throw bad("empty key") }
            switch key {
            case "path", "linkpath", "uname", "gname":
                guard !value.contains(0) else { throw bad("NUL in \(key)") }
            default:
                guard !keyBytes.contains(0) else { throw bad("NUL in a key") }
            }
            switch key {
            case "GNU.sparse.offset", "GNU.sparse.numbytes":
                let expectOffset = sparseMap.count % 2 == 0
                guard (key == "GNU.sparse.offset") == expectOffset, !value.contains(UInt8(ascii: ",")) else { throw bad("sparse map out of order") }
                sparseMap.append(value)
            default:
                out[key] = value
            }
            i = recordEnd
        }
        if !sparseMap.isEmpty { out["GNU.sparse.map"] = Array(sparseMap.joined(separator: [UInt8(ascii: ",")])) }
        return out
    }

    /// Go's `mergePAX`: records with a value override the header's fields; malformed numbers are errors.
    private func mergePAX(_ records: [String: Bytes], into h: inout RawHeader, at headerOffset: UInt64) throws {
        for (key, value) in records where !value.isEmpty {
            func number() throws -> Int64 {
                guard let n = TarReader.parseInt(value) else { throw failure("invalid pax \(key) record", at: headerOffset) }
                return n
            }
            switch key {
            case "path": h.name = value
            case "linkpath": h.linkName = value
            case "uname": h.uname = value
            case "gname": h.gname = value
            case "uid": h.uid = try number()
            case "gid": h.gid = try number()
            case "size": h.size = try number()
            case "mtime": h.mtime = try paxTime(value, key: key, at: headerOffset)
            case "atime", "ctime": _ = try paxTime(value, key: key, at: headerOffset)
            default:
                if key.hasPrefix("SCHILY.xattr.") { h.xattrs[String(key.dropFirst("SCHILY.xattr.".count))] = value }
            }
        }
        h.pax = records
    }

    /// Go's `parsePAXTime`: whole seconds, optionally `.` and digits.
    private func paxTime(_ v: Bytes, key: String, at headerOffset: UInt64) throws -> Int64 {
        let dot = v.firstIndex(of: UInt8(ascii: ".")) ?? v.count
        guard let secs = TarReader.parseInt(Array(v[..<dot])),
              v[min(dot + 1, v.count)...].allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw failure("invalid pax \(key) record", at: headerOffset)
        }
        return secs
    }
}
