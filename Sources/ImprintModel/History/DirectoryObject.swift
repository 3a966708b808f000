/// A directory's children as a history object.
///
/// Identified part: the directory's canonical child records exactly as they enter its Merkle digest
/// (`Tree.canonicalRecord`, sorted by name), so `SHA-256(identified part)` is the directory's digest and
/// equal directories are stored once across all builds. Attribute part: what the records do not carry, one
/// item per child in the same order — a file's size (LEB128), a symlink's target (LEB128 length + bytes), a
/// device's major and minor (LEB128 each); nothing for directories, FIFOs and sockets.
package enum DirectoryObject {
    /// Encodes `dir`'s children. The children's digests must be current (`Tree.computeDigests()`).
    package static func encode(_ dir: TreeNode) -> (body: [UInt8], identifiedLength: Int) {
        let kids = dir.sortedChildren
        var body: [UInt8] = []
        body.reserveCapacity(kids.count * 100)
        var rec: [UInt8] = []
        for (name, child) in kids {
            Tree.canonicalRecord(name: name, node: child, into: &rec)
            body.append(contentsOf: rec)
        }
        let ilen = body.count
        for (_, child) in kids {
            switch child.type {
            case .file: appendVarint(child.size, to: &body)
            case .symlink:
                let t = child.target ?? []
                appendVarint(UInt64(t.count), to: &body)
                body.append(contentsOf: t)
            case .charDevice, .blockDevice:
                appendVarint(UInt64(child.devMajor), to: &body)
                appendVarint(UInt64(child.devMinor), to: &body)
            case .directory, .fifo, .socket: break
            }
        }
        return (body, ilen)
    }

    /// Decodes a verified directory object into its children, sorted by name. Child directories come back
    /// empty with their digest set: load them by that id.
    /// - Throws: `badInput` naming the object when the records are malformed or disagree with the attributes.
    package static func decode(_ object: HistoryObject) throws -> [(name: Bytes, node: TreeNode)] {
        func bad(_ why: String) -> ImprintError { ImprintError.badInput("history object \(object.id) is corrupt: \(why)") }
        let b = object.body
        let end = object.identifiedLength
        var i = 0
        var out: [(name: Bytes, node: TreeNode)] = []
        // First pass: the canonical records.
        while i < end {
            guard end - i >= 73 else { throw bad("truncated record") }
            guard let type = typeByLetter[b[i]] else { throw bad("unknown type letter") }
            guard b[i + 1] == 0x20, b[i + 6] == 0x20, b[i + 71] == 0x20 else { throw bad("malformed record") }
            guard let mode = octal4(b, i + 2), let digest = hexDigest(b, i + 7) else {
                throw bad("malformed mode or digest")
            }
            var j = i + 72
            while j < end && b[j] != 0 { j += 1 }
            guard j < end else { throw bad("unterminated name") }
            let name = Array(b[(i + 72)..<j])
            guard !name.isEmpty, !name.contains(UInt8(ascii: "/")), name != [0x2E], name != [0x2E, 0x2E] else {
                throw bad("invalid name \"\(name.lossyString)\"")
            }
            if let last = out.last, !last.name.lexicographicallyPrecedes(name) { throw bad("names out of order") }
            let node = TreeNode(type: type, mode: mode, digest: digest)
            out.append((name, node))
            i = j + 1
        }
        // Second pass: the attributes, in the same order.
        var k = end
        for (_, node) in out {
            switch node.type {
            case .file:
                node.size = try readVarint(b, &k, bad)
            case .symlink:
                let claimed = try readVarint(b, &k, bad)
                guard claimed <= UInt64(b.count - k) else { throw bad("truncated symlink target") }
                let n = Int(claimed)
                let t = Array(b[k..<(k + n)])
                k += n
                guard SHA256.hash(t) == node.digest else { throw bad("symlink target does not match its digest") }
                node.target = t
                node.size = UInt64(n)
            case .charDevice, .blockDevice:
                node.devMajor = UInt32(truncatingIfNeeded: try readVarint(b, &k, bad))
                node.devMinor = UInt32(truncatingIfNeeded: try readVarint(b, &k, bad))
            case .directory, .fifo, .socket: break
            }
        }
        guard k == b.count else { throw bad("\(b.count - k) stray bytes after the attributes") }
        return out
    }

    private static let typeByLetter: [UInt8: EntryType] = Dictionary(uniqueKeysWithValues: EntryType.allCases.map { ($0.letter, $0) })

    private static func octal4(_ b: [UInt8], _ at: Int) -> UInt32? {
        var v: UInt32 = 0
        for k in at..<(at + 4) {
            let c = b[k]
            guard c >= 0x30 && c <= 0x37 else { return nil }
            v = v << 3 | UInt32(c - 0x30)
        }
        return v
    }

    /// 64 lowercase hex digits at `at` (the canonical form never has upper case).
    private static func hexDigest(_ b: [UInt8], _ at: Int) -> Digest? {
        var raw = [UInt8](repeating: 0, count: 32)
        for k in 0..<32 {
            guard let hi = nibble(b[at + 2 * k]), let lo = nibble(b[at + 2 * k + 1]) else { return nil }
            raw[k] = hi << 4 | lo
        }
        return Digest(bytes: raw)
    }

    @inline(__always) private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }

    package static func appendVarint(_ v: UInt64, to out: inout [UInt8]) {
        var v = v
        while v >= 0x80 { out.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }

    package static func readVarint(_ b: [UInt8], _ k: inout Int, _ bad: (String) -> ImprintError) throws -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard k < b.count, shift < 64 else { throw bad("truncated attribute") }
            let c = b[k]
            k += 1
            v |= UInt64(c & 0x7f) << shift
            if c < 0x80 { return v }
            shift += 7
        }
    }
}
