internal import CZlib

/// zlib for the history store: one-shot zlib streams for objects, gzip (RFC 1952) for export archives.
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

    /// A gzip member (RFC 1952) of `bytes`, readable by `gzip -dc`.
    static func gzip(_ bytes: [UInt8], level: Int32 = 9) throws -> [UInt8] {
        // why: zlib requires the z_stream not to move while in use; heap-allocate it once.
        let strm = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        strm.initialize(to: z_stream())
        defer { deflateEnd(strm); strm.deinitialize(count: 1); strm.deallocate() }
        guard CZlib_deflateInit2(strm, level, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) == Z_OK else {
            throw ImprintError(.failure, "zlib deflateInit2 failed")
        }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(strm, uLong(bytes.count))) + 64)
        let rc: Int32 = bytes.withUnsafeBufferPointer { i in
            out.withUnsafeMutableBufferPointer { o in
                strm.pointee.next_in = UnsafeMutablePointer(mutating: i.baseAddress)
                strm.pointee.avail_in = uInt(i.count)
                strm.pointee.next_out = o.baseAddress
                strm.pointee.avail_out = uInt(o.count)
                return deflate(strm, Z_FINISH)
            }
        }
        guard rc == Z_STREAM_END else { throw ImprintError(.failure, "zlib deflate failed (\(rc))") }
        out.removeSubrange(Int(strm.pointee.total_out)...)
        return out
    }

    /// Inflates a gzip (or zlib) stream; `what` names the input in errors.
    static func gunzip(_ bytes: [UInt8], what: String, limit: Int = 1 << 34) throws -> [UInt8] {
        let strm = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        strm.initialize(to: z_stream())
        defer { inflateEnd(strm); strm.deinitialize(count: 1); strm.deallocate() }
        guard CZlib_inflateInit2(strm, 15 + 32) == Z_OK else { throw ImprintError(.failure, "zlib inflateInit2 failed") }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
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
                out.append(contentsOf: chunk[0..<produced])
                if out.count > limit { throw ImprintError.badInput("\(what): decompresses to more than \(limit) bytes") }
                if rc == Z_STREAM_END { break }
                if rc == Z_OK { continue }
                if rc == Z_BUF_ERROR && strm.pointee.avail_in == 0 { throw ImprintError.badInput("\(what): gzip stream truncated") }
                let msg = strm.pointee.msg.map { String(cString: $0) } ?? "error \(rc)"
                throw ImprintError.badInput("\(what): gzip stream is corrupt: \(msg)")
            }
        }
        return out
    }
}
