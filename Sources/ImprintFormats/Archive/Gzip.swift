internal import CZlib
import Foundation

/// How a layer or archive is compressed, detected from its first bytes (never from a media type).
package enum Compression: String, Sendable {
    case none, gzip, zstd, bzip2, xz, lz4

    /// Detects compression from magic bytes: gzip `1f 8b`, zstd `28 b5 2f fd`, bzip2 `BZh`, xz `fd 37 7a 58 5a 00`,
    /// lz4 frames `04 22 4d 18`; otherwise none.
    package static func detect(_ head: [UInt8]) -> Compression {
        if head.starts(with: [0x1f, 0x8b]) { return .gzip }
        if head.starts(with: [0x28, 0xb5, 0x2f, 0xfd]) { return .zstd }
        if head.starts(with: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) { return .xz }
        if head.starts(with: [0x04, 0x22, 0x4d, 0x18]) { return .lz4 }
        if head.count >= 4, head.starts(with: Array("BZh".utf8)), (UInt8(ascii: "1")...UInt8(ascii: "9")).contains(head[3]) { return .bzip2 }
        return .none
    }

    /// Peeks at `source` and returns a source of the decompressed bytes.
    /// - Throws: `unsupported` for zstd, bzip2, xz and lz4, naming the format and how to feed it in.
    package static func decompressing(_ source: ByteSource, name: String) throws -> (ByteSource, Compression) {
        var head = [UInt8](repeating: 0, count: 6)
        let n = try head.withUnsafeMutableBytes { try source.readFully(into: $0) }
        head.removeSubrange(n...)
        let kind = detect(head)
        let restored = PrefixedSource(prefix: head, inner: source)
        switch kind {
        case .none: return (restored, .none)
        case .gzip: return (GzipDecoder(restored, name: name), .gzip)
        case .zstd:
            throw ImprintError(.unsupported, "\(name) is a zstd stream, which imprint does not read: decompress it first (zstd -dc FILE | imprint …), or for an image recompress its layers with gzip (skopeo copy --dest-compress-format gzip)")
        case .bzip2, .xz, .lz4:
            let tool = kind == .bzip2 ? "bzip2 -dc" : kind == .xz ? "xz -dc" : "lz4 -dc"
            throw ImprintError(.unsupported, "\(name) is a \(kind.rawValue) stream, not a tar archive: decompress it first (\(tool) FILE | imprint …)")
        }
    }
}

/// Streaming gzip decompression through zlib (RFC 1952, multi-member as `cat a.gz b.gz` makes; anything after a
/// member that is not another member is an error, as in Go's gzip reader that runtimes use).
package final class GzipDecoder: ByteSource {
    private let inner: ByteSource
    private let name: String
    // why: zlib keeps pointers into the z_stream it was initialised with, so it must never move; heap-allocate it.
    private let stream: UnsafeMutablePointer<z_stream>
    private let input: UnsafeMutableRawBufferPointer
    private var innerEOF = false
    private var finished = false
    private var memberEnded = false
    /// Decompressed bytes produced so far.
    package private(set) var produced: UInt64 = 0

    package init(_ inner: ByteSource, name: String, inputBufferSize: Int = 256 << 10) {
        self.inner = inner
        self.name = name
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        input = .allocate(byteCount: inputBufferSize, alignment: 16)
        // gzip only (15 + 16), as Go's gzip reader: a zlib stream after a member is an error, not a member.
        initFailed = CZlib_inflateInit2(stream, 15 + 16) != Z_OK
    }

    /// zlib could not allocate its state; reported on the first read.
    private let initFailed: Bool

    deinit {
        inflateEnd(stream)
        stream.deallocate()
        input.deallocate()
    }

    private func fill() throws {
        if stream.pointee.avail_in > 0 || innerEOF { return }
        let n = try inner.read(into: input)
        if n == 0 { innerEOF = true; return }
        stream.pointee.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_in = uInt(n)
    }

    package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if initFailed { throw ImprintError(.failure, "cannot decompress \(name): zlib could not initialise (out of memory)") }
        if finished || buffer.count == 0 { return 0 }
        while true {
            try fill()
            if memberEnded {
                // A gzip member ended; another may follow (multi-member gzip, as `cat a.gz b.gz` makes).
                if stream.pointee.avail_in == 0 && innerEOF { finished = true; return 0 }
                if stream.pointee.avail_in == 0 { continue }
                guard inflateReset(stream) == Z_OK else { throw ImprintError(.failure, "cannot decompress \(name): zlib could not start the next gzip member") }
                memberEnded = false
            }
            if stream.pointee.avail_in == 0 && innerEOF {
                throw ImprintError.badInput("cannot read \(name): gzip stream truncated after \(formatBytes(produced)) of decompressed data")
            }
            stream.pointee.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(min(buffer.count, Int(UInt32.max)))
            let before = stream.pointee.avail_out
            let rc = inflate(stream, Z_NO_FLUSH)
            let n = Int(before - stream.pointee.avail_out)
            produced += UInt64(n)
            switch rc {
            case Z_OK, Z_BUF_ERROR:
                break
            case Z_STREAM_END:
                memberEnded = true
            default:
                let msg = stream.pointee.msg.map { String(cString: $0) } ?? "error \(rc)"
                throw ImprintError.badInput("cannot read \(name): corrupt gzip data after \(formatBytes(produced)): \(msg)")
            }
            if n > 0 { return n }
        }
    }
}

/// Streaming deterministic gzip compression: fixed header (mtime 0, no name, OS byte 255), fixed level.
///
/// The same input always gives the same bytes with the same zlib, so a stamped layer has a stable digest.
package final class GzipEncoder {
    // why: as in GzipDecoder, the z_stream must stay at one address for its whole life.
    private let stream: UnsafeMutablePointer<z_stream>
    private let output: UnsafeMutableRawBufferPointer
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    private var crc: uLong = crc32(0, nil, 0)
    private var length: UInt32 = 0
    private var headerWritten = false

    /// `bytes` compressed whole (stamp layers and registry artifacts use level 9).
    package static func compress(_ bytes: [UInt8], level: Int32) throws -> [UInt8] {
        var out: [UInt8] = []
        let encoder = GzipEncoder(level: level) { out.append(contentsOf: $0) }
        try encoder.write(bytes)
        try encoder.finish()
        return out
    }

    /// - Parameters:
    ///   - level: zlib level 0–9 (default 6).
    ///   - sink: receives the compressed bytes in order.
    package init(level: Int32 = 6, sink: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        output = .allocate(byteCount: 256 << 10, alignment: 16)
        self.sink = sink
        // Raw deflate (negative window bits): we write the gzip header and trailer ourselves so every byte is fixed.
        initFailed = CZlib_deflateInit2(stream, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK
    }

    /// zlib could not allocate its state; reported on the first write.
    private let initFailed: Bool

    deinit {
        deflateEnd(stream)
        stream.deallocate()
        output.deallocate()
    }

    private func writeHeader() throws {
        if headerWritten { return }
        headerWritten = true
        let header: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]
        try header.withUnsafeBytes { try sink($0) }
    }

    package func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    package func write(_ buffer: UnsafeRawBufferPointer) throws {
        if initFailed { throw ImprintError(.failure, "cannot compress: zlib could not initialise (out of memory)") }
        try writeHeader()
        guard buffer.count > 0 else { return }
        crc = crc32(crc, buffer.baseAddress!.assumingMemoryBound(to: Bytef.self), uInt(buffer.count))
        length &+= UInt32(truncatingIfNeeded: buffer.count)
        stream.pointee.next_in = UnsafeMutablePointer(mutating: buffer.baseAddress!.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(buffer.count)
        try pump(flush: Z_NO_FLUSH)
    }

    /// Flushes the compressor and writes the gzip trailer (CRC-32 and length).
    package func finish() throws {
        try writeHeader()
        stream.pointee.next_in = nil
        stream.pointee.avail_in = 0
        try pump(flush: Z_FINISH)
        var trailer: [UInt8] = []
        let c = UInt32(truncatingIfNeeded: crc)
        for i in 0..<4 { trailer.append(UInt8(truncatingIfNeeded: c >> (8 * UInt32(i)))) }
        for i in 0..<4 { trailer.append(UInt8(truncatingIfNeeded: length >> (8 * UInt32(i)))) }
        try trailer.withUnsafeBytes { try sink($0) }
    }

    private func pump(flush: Int32) throws {
        while true {
            stream.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(output.count)
            let rc = deflate(stream, flush)
            if rc == Z_STREAM_ERROR { throw ImprintError(.failure, "gzip compression failed") }
            let n = output.count - Int(stream.pointee.avail_out)
            if n > 0 { try sink(UnsafeRawBufferPointer(rebasing: output[0..<n])) }
            if flush == Z_FINISH {
                if rc == Z_STREAM_END { return }
            } else if stream.pointee.avail_in == 0 && stream.pointee.avail_out != 0 {
                return
            }
        }
    }
}

/// zlib streams (RFC 1950), the form history objects and file-time tables are stored in: the same zlib, through the
/// same front end as gzip.
extension Compression {
    /// A zlib stream (RFC 1950) of `bytes` at level 9 (objects are written once and read often).
    package static func zlibCompress(_ bytes: [UInt8]) throws -> [UInt8] {
        var destLen = compressBound(uLong(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(destLen))
        let rc = out.withUnsafeMutableBufferPointer { o in
            bytes.withUnsafeBufferPointer { i in compress2(o.baseAddress, &destLen, i.baseAddress, uLong(i.count), 9) }
        }
        guard rc == Z_OK else { throw ImprintError(.failure, "zlib compress2 failed (\(rc))") }
        out.removeSubrange(Int(destLen)...)
        return out
    }

    /// Inflates a zlib stream that must decode to exactly `expectedLength` bytes. Memory grows with what the
    /// stream actually produces, never with the length a header claims.
    package static func zlibUncompress(_ bytes: ArraySlice<UInt8>, expectedLength: Int) throws -> [UInt8] {
        // why: zlib checks that the z_stream never moves, so it lives on the heap for the whole inflate.
        let strm = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        strm.initialize(to: z_stream())
        defer { inflateEnd(strm); strm.deinitialize(count: 1); strm.deallocate() }
        guard CZlib_inflateInit2(strm, 15) == Z_OK else { throw ImprintError(.failure, "zlib inflateInit2 failed (out of memory)") }
        var out: [UInt8] = []
        out.reserveCapacity(min(expectedLength, max(4096, bytes.count * 4)))
        var chunk = [UInt8](repeating: 0, count: min(max(expectedLength, 1) + 1, 256 << 10))
        try bytes.withUnsafeBufferPointer { i in
            strm.pointee.next_in = UnsafeMutablePointer(mutating: i.baseAddress)
            strm.pointee.avail_in = uInt(i.count)
            while true {
                let (rc, produced): (Int32, Int) = chunk.withUnsafeMutableBufferPointer { o in
                    strm.pointee.next_out = o.baseAddress
                    strm.pointee.avail_out = uInt(o.count)
                    let rc = inflate(strm, Z_NO_FLUSH)
                    return (rc, o.count - Int(strm.pointee.avail_out))
                }
                if out.count + produced > expectedLength {
                    throw ImprintError.badInput("zlib stream gives more than the \(expectedLength) bytes the header announces")
                }
                out.append(contentsOf: chunk[0..<produced])
                switch rc {
                case Z_STREAM_END:
                    guard strm.pointee.avail_in == 0 else { throw ImprintError.badInput("\(strm.pointee.avail_in) stray bytes after the zlib stream") }
                    guard out.count == expectedLength else {
                        throw ImprintError.badInput("zlib stream gives \(out.count) bytes, header announces \(expectedLength)")
                    }
                    return
                case Z_OK: continue
                case Z_BUF_ERROR where strm.pointee.avail_in == 0: throw ImprintError.badInput("zlib stream truncated")
                case Z_DATA_ERROR: throw ImprintError.badInput("zlib data error")
                default: throw ImprintError.badInput("zlib error \(rc)")
                }
            }
        }
        return out
    }
}
