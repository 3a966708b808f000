import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The members of an uncompressed tar file, indexed once by reading headers only (seeking over data), so that
/// members can later be read in place with `pread` instead of being extracted to disk.
package final class TarArchiveIndex {
    /// A regular-file member: where its data starts and how long it is.
    package struct Member: Sendable {
        package var path: String
        package var offset: UInt64
        package var size: UInt64
    }

    package let path: String
    /// Members in archive order (regular files only; a later duplicate replaces an earlier one in `byPath`).
    package private(set) var members: [Member] = []
    private var byPath: [String: Int] = [:]
    package let fd: Int32

    /// Indexes `path`.
    /// - Throws: `badInput` when it is not a tar archive (bad checksum) or truncated.
    package init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw ImprintError.posix("open", path) }
        self.fd = fd
        do {
            let source = FileDescriptorSource(sharedFD: fd, name: path, offset: 0, length: UInt64.max / 2)
            let reader = TarReader(SeekingSource(source, path: path), name: path, bufferSize: 16 << 10)
            while let e = try reader.next() {
                guard e.kind == .file else { continue }
                // A sparse member's bytes are not where its data starts; archives imprint reads never hold one.
                if e.isSparse { throw ImprintError(.unsupported, "\(path): member \(e.path.lossyString) is a sparse file, which image archives do not hold") }
                let name = TarArchiveIndex.normalise(e.path)
                byPath[name] = members.count
                members.append(Member(path: name, offset: e.dataOffset, size: e.size))
            }
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    /// The member at `path` (leading `./` and `/` ignored), or nil.
    package func member(_ path: String) -> Member? {
        byPath[TarArchiveIndex.normalise(Array(path.utf8))].map { members[$0] }
    }

    /// A source reading the data of `member` in place.
    package func source(_ member: Member) -> ByteSource {
        FileDescriptorSource(sharedFD: fd, name: "\(path):\(member.path)", offset: member.offset, length: member.size)
    }

    /// Reads a small member whole.
    package func read(_ member: Member, limit: Int = 64 << 20) throws -> [UInt8] {
        guard member.size <= UInt64(limit) else {
            throw ImprintError.badInput("\(path): member \(member.path) is larger than \(formatBytes(UInt64(limit)))")
        }
        return try source(member).readAll(limit: limit, what: "\(path):\(member.path)")
    }

    package static func normalise(_ p: Bytes) -> String {
        var comps = p.pathComponents.filter { $0 != [0x2E] }
        if comps.isEmpty { comps = [] }
        return String(decoding: comps.joinedPath, as: UTF8.self)
    }

    /// True when the first block of `path` is a valid tar header (used to tell archives from other files).
    package static func looksLikeTar(_ head: [UInt8]) -> Bool {
        guard head.count >= 512 else { return false }
        var sum = 0
        for i in 0..<512 { sum += (148..<156).contains(i) ? 32 : Int(head[i]) }
        let field = head[148..<156].filter { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }
        guard let v = Int(String(decoding: field, as: UTF8.self), radix: 8) else { return false }
        return v == sum
    }
}

/// Wraps a positional file source so that `skip` seeks (a pread offset change) instead of reading,
/// and the end of the file is a normal end of stream.
package final class SeekingSource: ByteSource {
    private let inner: FileDescriptorSource
    private let path: String
    private var position: UInt64 = 0
    private let fileSize: UInt64

    package init(_ inner: FileDescriptorSource, path: String) {
        self.inner = inner
        self.path = path
        var st = stat()
        fileSize = fstat(inner.fd, &st) == 0 ? UInt64(st.st_size) : 0
    }

    package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let left = fileSize > position ? fileSize - position : 0
        let want = Int(min(UInt64(buffer.count), left))
        if want == 0 { return 0 }
        let n = Syscall.pread(inner.fd, buffer.baseAddress, want, off_t(position))
        if n < 0 { throw ImprintError.posix("read", path) }
        position += UInt64(n)
        return n
    }

    package func skip(_ count: UInt64) throws {
        if position + count > fileSize { throw ImprintError.badInput("\(path): unexpected end of archive") }
        position += count
    }
}
