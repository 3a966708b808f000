import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A forward-only stream of bytes: a file, a pipe, a range of a file, a decompressor.
///
/// Archives and layers are always read through one of these so that nothing holds a whole archive in memory.
package protocol ByteSource: AnyObject {
    /// Reads up to `buffer.count` bytes; returns 0 only at the end of the stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Skips `count` bytes (seeking when the source can).
    /// - Throws: when the stream ends before `count` bytes were skipped.
    func skip(_ count: UInt64) throws
}

extension ByteSource {
    package func skip(_ count: UInt64) throws {
        try skipByReading(count)
    }

    /// Skips by reading into a scratch buffer (for sources that cannot seek).
    package func skipByReading(_ count: UInt64) throws {
        var left = count
        var scratch = [UInt8](repeating: 0, count: 64 << 10)
        while left > 0 {
            let want = Int(min(UInt64(scratch.count), left))
            let n = try scratch.withUnsafeMutableBytes { try read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want])) }
            if n == 0 { throw ImprintError.badInput("unexpected end of data (\(left) bytes missing)") }
            left -= UInt64(n)
        }
    }

    /// Reads until `buffer` is full or the stream ends; returns the number of bytes read.
    package func readFully(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var off = 0
        while off < buffer.count {
            let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[off...]))
            if n == 0 { break }
            off += n
        }
        return off
    }

    /// Reads the rest of the stream into memory, failing when it exceeds `limit` bytes.
    package func readAll(limit: Int, what: String) throws -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try read(into: $0) }
            if n == 0 { return out }
            out.append(contentsOf: chunk[0..<n])
            if out.count > limit { throw ImprintError.badInput("\(what) is larger than \(formatBytes(UInt64(limit)))") }
        }
    }

    /// Calls `body` with successive chunks until the stream ends.
    package func forEachChunk(bufferSize: Int = 1 << 20, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n = try read(into: buf)
            if n == 0 { return }
            try body(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
        }
    }
}

/// Reads a file descriptor (a file, a pipe, stdin), optionally only the byte range `[offset, offset+length)`.
///
/// With a range it uses `pread`, so several range sources may share one descriptor.
package final class FileDescriptorSource: ByteSource {
    package let fd: Int32
    package let name: String
    private let ownsDescriptor: Bool
    private var position: UInt64
    private let end: UInt64?
    private let positional: Bool
    /// Bytes consumed so far (relative to the start of the range).
    package private(set) var consumed: UInt64 = 0

    /// Wraps an open descriptor read sequentially from its current position (pipes, stdin).
    package init(fd: Int32, name: String, ownsDescriptor: Bool = false) {
        self.fd = fd
        self.name = name
        self.ownsDescriptor = ownsDescriptor
        self.position = 0
        self.end = nil
        self.positional = false
    }

    /// Opens `path` for reading; `offset`/`length` restrict it to a byte range.
    package init(path: String, offset: UInt64 = 0, length: UInt64? = nil) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw ImprintError.posix("open", path) }
        self.fd = fd
        self.name = path
        self.ownsDescriptor = true
        self.position = offset
        self.end = length.map { offset + $0 }
        self.positional = true
    }

    /// A range of a descriptor owned by someone else (members of an archive read by `pread`).
    package init(sharedFD fd: Int32, name: String, offset: UInt64, length: UInt64) {
        self.fd = fd
        self.name = name
        self.ownsDescriptor = false
        self.position = offset
        self.end = offset + length
        self.positional = true
    }

    deinit { if ownsDescriptor { close(fd) } }

    package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var want = buffer.count
        if let end { want = Int(min(UInt64(want), end - position)) }
        if want == 0 { return 0 }
        let n = positional ? Syscall.pread(fd, buffer.baseAddress, want, off_t(position)) : Syscall.read(fd, buffer.baseAddress, want)
        if n < 0 { throw ImprintError.posix("read", name) }
        if n == 0, end != nil {
            throw ImprintError.badInput("cannot read \(name): file ends before the expected end (truncated)")
        }
        position += UInt64(n)
        consumed += UInt64(n)
        return n
    }

    package func skip(_ count: UInt64) throws {
        if positional {
            if let end, position + count > end { throw ImprintError.badInput("cannot read \(name): unexpected end of data") }
            position += count
            consumed += count
        } else {
            try skipByReading(count)
            // skipByReading counted through read(into:)
        }
    }
}

/// A source that first yields `prefix`, then the rest of `inner` (used after peeking at magic bytes).
package final class PrefixedSource: ByteSource {
    private var prefix: [UInt8]
    private var offset = 0
    private let inner: ByteSource

    package init(prefix: [UInt8], inner: ByteSource) {
        self.prefix = prefix
        self.inner = inner
    }

    package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if offset < prefix.count {
            let n = min(buffer.count, prefix.count - offset)
            prefix.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
            offset += n
            return n
        }
        return try inner.read(into: buffer)
    }
}

/// A source of bytes held in memory (small blobs, tests).
package final class MemorySource: ByteSource {
    private let bytes: [UInt8]
    private var offset = 0
    package init(_ bytes: [UInt8]) { self.bytes = bytes }
    package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, bytes.count - offset)
        if n > 0 { bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) } }
        offset += n
        return n
    }
}

/// Passes bytes through while computing their SHA-256 and counting them; `verify` checks both at the end.
///
/// Every blob of an image is read through one of these, so a corrupted or substituted blob is an error.
package final class DigestVerifyingSource: ByteSource {
    private let inner: ByteSource
    private let hasher = SHA256()
    package private(set) var count: UInt64 = 0
    package let expectedDigest: Digest?
    package let expectedSize: UInt64?
    package let name: String

    package init(_ inner: ByteSource, digest: Digest?, size: UInt64?, name: String) {
        self.inner = inner
        self.expectedDigest = digest
        self.expectedSize = size
        self.name = name
    }

    package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = try inner.read(into: buffer)
        if n > 0 {
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            count += UInt64(n)
            if let expectedSize, count > expectedSize {
                throw ImprintError.badInput("blob \(name) is larger than its descriptor's size \(expectedSize)")
            }
        }
        return n
    }

    package func skip(_ count: UInt64) throws { try skipByReading(count) }

    /// Reads whatever is left, then checks size and digest.
    /// - Throws: `badInput` naming the blob on a size or digest mismatch.
    package func verify() throws {
        try forEachChunk(bufferSize: 256 << 10) { _ in }
        let actual = hasher.finish()
        if let expectedSize, count != expectedSize {
            throw ImprintError.badInput("blob \(name) has \(count) bytes but its descriptor says \(expectedSize)")
        }
        if let expectedDigest, actual != expectedDigest {
            throw ImprintError.badInput("blob \(name) does not match its digest: content hashes to \(actual)")
        }
    }

    /// The digest of what was read so far (call after the stream ended).
    package func finish() -> Digest { hasher.finish() }
}

/// Reads a `ByteSource` in pieces of a size the reader asks for: lines and exact byte counts. Memory follows
/// what has arrived: a length that the data claims is read in chunks, never allocated up front.
package final class ByteReader {
    private let source: ByteSource
    private let name: String
    private var buffer: [UInt8] = []
    private var start = 0
    private var chunk = [UInt8](repeating: 0, count: 256 << 10)
    /// Bytes handed out so far.
    package private(set) var consumed: UInt64 = 0

    package init(_ source: ByteSource, name: String) {
        self.source = source
        self.name = name
    }

    /// Reads more into the buffer; false at the end of the source.
    private func fill() throws -> Bool {
        if start > 0 { buffer.removeSubrange(0..<start); start = 0 }
        let n = try chunk.withUnsafeMutableBytes { try source.read(into: $0) }
        if n == 0 { return false }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    /// The bytes up to the next `\n` (without it).
    /// - Throws: `badInput` when the line is longer than `limit` or the source ends first.
    package func readLine(limit: Int, what: String) throws -> [UInt8] {
        var searched = start
        while true {
            if let nl = buffer[searched...].firstIndex(of: 0x0A) {
                let line = Array(buffer[start..<nl])
                consumed += UInt64(nl + 1 - start)
                start = nl + 1
                return line
            }
            searched = buffer.count
            if buffer.count - start > limit { throw ImprintError.badInput("\(name): \(what) is longer than \(formatBytes(UInt64(limit)))") }
            if try !fill() { throw ImprintError.badInput("\(name): ends inside the \(what)") }
        }
    }

    /// Exactly `count` bytes.
    /// - Throws: `badInput` when the source ends first, saying how many bytes arrived.
    package func read(exactly count: Int, what: String) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(min(count, 1 << 20))
        while out.count < count {
            if start == buffer.count, try !fill() {
                throw ImprintError.badInput("\(name): ends inside \(what) (\(out.count) of \(count) bytes)")
            }
            let n = min(count - out.count, buffer.count - start)
            out.append(contentsOf: buffer[start..<(start + n)])
            start += n
            consumed += UInt64(n)
        }
        return out
    }

    /// True when nothing is left.
    package func atEnd() throws -> Bool {
        if start < buffer.count { return false }
        return try !fill()
    }
}
