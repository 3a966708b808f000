import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a history object holds.
package enum HistoryObjectKind: UInt8, Sendable {
    /// A directory's children (`DirectoryObject`); its id is the directory's Merkle digest.
    case directory = 0x64 // "d"
    /// A build record's JSON (`BuildRecord`); its id is the SHA-256 of that JSON.
    case record = 0x72 // "r"

    package var name: String { self == .directory ? "directory" : "record" }
}

/// One object, decompressed and verified.
package struct HistoryObject: Sendable {
    package var kind: HistoryObjectKind
    package var id: Digest
    /// The uncompressed bytes: the identified part followed by the attribute part.
    package var body: [UInt8]
    /// Length of the part of `body` whose SHA-256 is `id`. For records this is the whole body.
    package var identifiedLength: Int

    package var identified: ArraySlice<UInt8> { body[..<identifiedLength] }
    package var attributes: ArraySlice<UInt8> { body[identifiedLength...] }
    package init(kind: HistoryObjectKind, id: Digest, body: [UInt8], identifiedLength: Int) {
        self.kind = kind; self.id = id; self.body = body; self.identifiedLength = identifiedLength
    }
}

/// Content-addressed, zlib-compressed, immutable objects under `<store>/objects/<2 hex>/<62 hex>`.
///
/// Stored file layout (all integers big-endian):
/// ```
/// 0   4  magic "imo1"
/// 4   1  kind ("d" directory, "r" record)
/// 5   4  identified length I
/// 9   4  body length B
/// 13 32  SHA-256 of body[I..<B] (the attribute part)
/// 45  …  zlib stream (RFC 1950) of the B body bytes
/// ```
/// The object id is SHA-256 of `body[0..<I]`; for a directory that is exactly its canonical records, so the id is
/// the directory's Merkle digest. The attribute part (file sizes, symlink targets) is bound by its own SHA-256 in
/// the header. Every read checks both, so any changed byte of the file is detected.
// why @unchecked Sendable: immutable; objects are written to temporary files and renamed into place, so
// concurrent writers of the same object agree byte for byte.
package final class ObjectStore: @unchecked Sendable {
    // why @unchecked: only immutable state (a path); the file system provides the synchronisation.
    package let directory: String
    package static let magic: [UInt8] = Array("imo1".utf8)
    package static let headerLength = 45
    /// The largest object body accepted (a directory of about two million entries).
    package static let maxBodyLength = 256 << 20

    package init(directory: String) { self.directory = directory }

    package func path(for id: Digest) -> String {
        let hex = id.hex
        return directory + "/" + hex.prefix(2) + "/" + hex.dropFirst(2)
    }

    package func contains(_ id: Digest) -> Bool { access(path(for: id), F_OK) == 0 }

    /// Encodes an object's stored file bytes.
    package static func encode(kind: HistoryObjectKind, body: [UInt8], identifiedLength: Int) throws -> [UInt8] {
        var out = magic
        out.append(kind.rawValue)
        appendU32(UInt32(identifiedLength), to: &out)
        appendU32(UInt32(body.count), to: &out)
        out.append(contentsOf: SHA256.hash(Array(body[identifiedLength...])).bytes)
        out.append(contentsOf: try Compression.zlibCompress(body))
        return out
    }

    /// Decodes and verifies stored file bytes that should hold object `id`.
    package static func decode(_ file: [UInt8], id: Digest) throws -> HistoryObject {
        func corrupt(_ why: String) -> ImprintError {
            ImprintError.badInput("history object \(id) is corrupt: \(why)")
        }
        guard file.count >= headerLength, Array(file[0..<4]) == magic else { throw corrupt("bad header") }
        guard let kind = HistoryObjectKind(rawValue: file[4]) else { throw corrupt("unknown kind byte \(file[4])") }
        let ilen = Int(readU32(file, 5)), blen = Int(readU32(file, 9))
        guard ilen <= blen, blen <= maxBodyLength else { throw corrupt("bad lengths in header") }
        // zlib cannot expand by more than about 1032:1; a larger claim is a lie, refused before inflating.
        guard blen <= (file.count - headerLength) * 1100 + 64 else { throw corrupt("header claims \(blen) bytes from \(file.count - headerLength) compressed bytes") }
        let body: [UInt8]
        do {
            body = try Compression.zlibUncompress(file[headerLength...], expectedLength: blen)
        } catch let e as ImprintError {
            throw corrupt(e.message)
        }
        let actual = body.withUnsafeBytes { SHA256.hash(UnsafeRawBufferPointer(rebasing: $0[0..<ilen])) }
        guard actual == id else { throw corrupt("content hashes to \(actual)") }
        let attrs = body.withUnsafeBytes { SHA256.hash(UnsafeRawBufferPointer(rebasing: $0[ilen...])) }
        guard attrs.bytes == Array(file[13..<45]) else { throw corrupt("attribute section does not match its checksum") }
        return HistoryObject(kind: kind, id: id, body: body, identifiedLength: ilen)
    }

    /// Stores an object unless it is already present; returns its id.
    ///
    /// Written to a temporary file in the fan-out directory, synced, then renamed: concurrent writers of the same
    /// object both succeed and leave one complete file.
    @discardableResult
    package func write(kind: HistoryObjectKind, body: [UInt8], identifiedLength: Int? = nil) throws -> Digest {
        let ilen = identifiedLength ?? body.count
        let id = body.withUnsafeBytes { SHA256.hash(UnsafeRawBufferPointer(rebasing: $0[0..<ilen])) }
        if contains(id) { return id }
        try writeEncoded(try ObjectStore.encode(kind: kind, body: body, identifiedLength: ilen), id: id)
        return id
    }

    /// Stores already-encoded (and verified) file bytes as object `id`.
    package func writeEncoded(_ file: [UInt8], id: Digest) throws {
        let p = path(for: id)
        let dir = (p as NSString).deletingLastPathComponent
        if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw ImprintError.posix("create directory", dir) }
        try AtomicFile.write(file, to: p, mode: 0o444)
    }

    /// Reads and verifies object `id`.
    /// - Throws: `notFound` when absent, `badInput` naming the object when any byte of it is wrong.
    package func read(_ id: Digest) throws -> HistoryObject {
        let p = path(for: id)
        guard let file = try FileBytes.read(p) else {
            throw ImprintError(.notFound, "history object \(id) is missing (\(p))")
        }
        return try ObjectStore.decode(file, id: id)
    }

    /// Reads object `id` and checks it is of `kind`.
    package func read(_ id: Digest, kind: HistoryObjectKind) throws -> HistoryObject {
        let o = try read(id)
        guard o.kind == kind else { throw ImprintError.badInput("history object \(id) is a \(o.kind.name), expected a \(kind.name)") }
        return o
    }

    /// The raw stored file of `id`, unverified; nil when absent.
    package func storedFile(_ id: Digest) throws -> [UInt8]? { try FileBytes.read(path(for: id)) }

    /// Every object file present: (id, path). Temporary files are listed separately.
    package func enumerate() -> (objects: [(Digest, String)], temporary: [String]) {
        var objects: [(Digest, String)] = []
        var temporary: [String] = []
        let fm = FileManager.default
        guard let fans = try? fm.contentsOfDirectory(atPath: directory) else { return ([], []) }
        for fan in fans.sorted() {
            let fanPath = directory + "/" + fan
            guard fan.utf8.count == 2, let names = try? fm.contentsOfDirectory(atPath: fanPath) else { continue }
            for name in names {
                if name.hasPrefix(".") { temporary.append(fanPath + "/" + name); continue }
                if let id = Digest(hex: fan + name) { objects.append((id, fanPath + "/" + name)) }
            }
        }
        return (objects, temporary)
    }

    package func remove(_ id: Digest) { unlink(path(for: id)) }

    /// Moves object `id` from this store into `other` (same file system), keeping `other`'s copy if it has one.
    package func move(_ id: Digest, to other: ObjectStore) throws {
        let target = other.path(for: id)
        let dir = (target as NSString).deletingLastPathComponent
        if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw ImprintError.posix("create directory", dir) }
        if rename(path(for: id), target) != 0 { throw ImprintError.posix("move an object into", other.directory) }
    }

    // MARK: helpers

    package static func appendU32(_ v: UInt32, to out: inout [UInt8]) {
        out.append(UInt8(v >> 24)); out.append(UInt8((v >> 16) & 0xff)); out.append(UInt8((v >> 8) & 0xff)); out.append(UInt8(v & 0xff))
    }

    package static func readU32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }
}
