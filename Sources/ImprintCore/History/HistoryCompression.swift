internal import CZlib

/// zlib streams (RFC 1950) for history objects; export archives are gzip through `GzipWriter`/`Compression`.
enum HistoryCompression {
    /// A zlib stream (RFC 1950) of `bytes` at level 9 (objects are written once and read often).
    static func compress(_ bytes: [UInt8]) throws -> [UInt8] {
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
    static func uncompress(_ bytes: ArraySlice<UInt8>, expectedLength: Int) throws -> [UInt8] {
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
