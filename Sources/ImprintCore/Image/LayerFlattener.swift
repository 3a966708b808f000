import Foundation

/// Applies tar layers in order into one `Tree`, the way a container runtime's overlay filesystem would show
/// them, while streaming: file contents are hashed as they pass and never written to disk.
///
/// - Whiteouts: `dir/.wh.name` removes `dir/name` from lower layers; `dir/.wh..wh..opq` hides everything in
///   `dir` that lower layers put there (entries of the same layer stay).
/// - `node.layer` is the index of the layer that last wrote each path.
/// - Hard links take their target's content digest and record the target in `node.hardlink`.
/// - The first 16 bytes of every `.pyc` are kept in `node.pycHeader`.
/// - The content of the file at `capturePath` is kept (the embedded imprint manifest), and so is the content of
///   every `…/.imprint/manifest.json` and `…/.imprint/manifest.sig` (`node.capturedContent`).
/// - Every `.py` gets its CPython source hashes (`node.pySourceHashes`) for the bytecode checks.
public final class LayerFlattener {
    public let tree: Tree
    /// Interpret whiteout entries (true for image layers, false for a container filesystem tar).
    public var whiteouts = true
    /// The path whose content is captured (normally `Imprint.defaultStampPath`).
    public var capturePath: Bytes?
    /// The captured content of `capturePath`, as last written.
    public private(set) var captured: [UInt8]?
    private static let pySuffix = Array(".py".utf8)
    private static let imprintDir = Array(".imprint".utf8)
    private static let whiteoutPrefix = Array(".wh.".utf8)
    private static let opaqueMarker = Array(".wh..wh..opq".utf8)
    private static let pycSuffix = Array(".pyc".utf8)
    private let captureLimit = 64 << 20

    /// Decides, per file path, whether its content is hashed; nil hashes everything. A file not hashed gets
    /// `placeholderDigest` (and is counted in `skipped`); `.pyc` headers, `.py` source hashes and captured files
    /// are still taken.
    public var hashContent: ((Bytes) -> Bool)?

    /// - Parameters:
    ///   - capturePath: the path whose content is captured.
    ///   - tree: the tree to apply layers onto (a fresh one by default; pass a copy of a flattened base to
    ///     continue from it).
    ///   - captured: what was captured at `capturePath` while `tree` was built.
    public init(capturePath: Bytes? = Array(Imprint.defaultStampPath.utf8), tree: Tree = Tree(), captured: [UInt8]? = nil) {
        self.capturePath = capturePath.map { TreePath($0).bytes }
        self.tree = tree
        self.captured = captured
    }

    /// Applies every entry of `reader` as layer `layer` (nil for a plain filesystem tar).
    /// - Throws: `badInput` for escaping paths, dangling hard links, or anything the reader rejects.
    public func apply(_ reader: TarReader, layer: Int?) throws {
        var stats = LayerRecording()
        try read(reader, layer: layer, stats: &stats) { try self.apply($0, layer: layer, source: reader.name) }
        placeholders.formUnion(stats.placeholders)
        skipped.add(stats)
    }

    /// Reads every entry of `reader` as the changes layer `layer` makes, without touching `tree`: file contents
    /// are hashed (or skipped, see `hashContent`) now; hard links, whiteouts and opaque directories are resolved
    /// when the recording is replayed. Safe to call from several threads at once on one flattener, as long as its
    /// settings do not change meanwhile.
    public func record(_ reader: TarReader, layer: Int?) throws -> LayerRecording {
        var rec = LayerRecording()
        var changes: [LayerChange] = []
        try read(reader, layer: layer, stats: &rec) { changes.append($0) }
        rec.changes = changes
        return rec
    }

    /// Applies a recording made by `record` (of any flattener with the same settings) as layer `layer`.
    public func replay(_ recording: LayerRecording, layer: Int?, source: String) throws {
        for c in recording.changes { try apply(c, layer: layer, source: source) }
        placeholders.formUnion(recording.placeholders)
        skipped.add(recording)
    }

    /// Digests given to files whose content was not hashed (`hashContent` returned false), so a caller can tell
    /// when such a file reached a result that needs its real digest.
    public private(set) var placeholders: Set<Digest> = []
    /// What `hashContent` skipped, over every layer applied or replayed.
    public private(set) var skipped = LayerRecording()

    /// The digest standing for the unhashed content of the file at `path` written by `layer`: SHA-256 of a
    /// text no file content can be confused with in practice, distinct per path and layer.
    public static func placeholderDigest(_ path: Bytes, layer: Int?) -> Digest {
        SHA256.hash(Array("imprint:unhashed-content\u{0}\(layer ?? -1)\u{0}".utf8) + path)
    }

    private func read(_ reader: TarReader, layer: Int?, stats: inout LayerRecording, _ emit: (LayerChange) throws -> Void) throws {
        let source = reader.name
        let hasher = SHA256()
        while let e = try reader.next() {
            let path = try TreePath(tarEntry: e.path, source: source).bytes
            let comps = path.pathComponents
            if whiteouts, let base = comps.last, base.starts(with: LayerFlattener.whiteoutPrefix) {
                let parent = Array(comps.dropLast()).joinedPath
                if base == LayerFlattener.opaqueMarker {
                    try emit(.opaque(parent))
                } else if !base.starts(with: Array(".wh..wh.".utf8)) {
                    try emit(.whiteout(parent.appendingPath(Array(base.dropFirst(4)))))
                }
                continue
            }
            let node: TreeNode
            var captured: [UInt8]?
            switch e.kind {
            case .directory:
                node = .directory(mode: e.mode)
            case .file:
                node = TreeNode(type: .file, mode: e.mode, size: e.size)
                let isPyc = path.count >= 4 && path.suffix(4).elementsEqual(LayerFlattener.pycSuffix)
                let isImprintFile = comps.count >= 2 && comps[comps.count - 2] == LayerFlattener.imprintDir && e.size <= 16 << 20
                let capture = (capturePath == path || isImprintFile) && e.size <= UInt64(captureLimit)
                let isPy = path.count >= 3 && path.suffix(3).elementsEqual(LayerFlattener.pySuffix)
                // Captured files are always hashed: their digest is checked against what was captured.
                let hash = capture || isImprintFile || capturePath == path || hashContent?(path) != false
                var pyHasher = isPy ? PycSourceHasher() : nil
                var header: [UInt8] = []
                var content: [UInt8] = []
                if hash || isPy {
                    try reader.forEachContentChunk { chunk in
                        if hash { hasher.update(chunk) }
                        if isPyc && header.count < 16 { header.append(contentsOf: chunk.prefix(16 - header.count)) }
                        if capture { content.append(contentsOf: chunk) }
                        if isPy { pyHasher!.update(chunk) }
                    }
                } else if isPyc {
                    // Only the header is needed; the rest of the entry is skipped by the next `next()`.
                    var buf = [UInt8](repeating: 0, count: 16)
                    var got = 0
                    while got < 16 {
                        let n = try buf.withUnsafeMutableBytes { try reader.readContent(into: UnsafeMutableRawBufferPointer(rebasing: $0[got...])) }
                        if n == 0 { break }
                        got += n
                    }
                    header = Array(buf[..<got])
                }
                if hash {
                    node.digest = hasher.finish()
                    stats.filesHashed += 1
                    stats.bytesHashed += e.size
                } else {
                    node.digest = LayerFlattener.placeholderDigest(path, layer: layer)
                    stats.placeholders.insert(node.digest)
                    stats.filesSkipped += 1
                    stats.bytesSkipped += e.size
                }
                if isPyc { node.pycHeader = header }
                if capturePath == path && capture { captured = content }
                if isImprintFile { node.capturedContent = content }
                if isPy { node.pySourceHashes = pyHasher!.finalize() }
            case .symlink:
                node = .symlink(e.linkName)
            case .hardlink:
                let target = try TreePath(tarEntry: e.linkName, source: source).bytes
                try emit(.hardlink(path, target: target, rawPath: e.path, rawTarget: e.linkName))
                continue
            case .characterDevice:
                node = .device(.charDevice, mode: e.mode, major: e.devMajor, minor: e.devMinor)
            case .blockDevice:
                node = .device(.blockDevice, mode: e.mode, major: e.devMajor, minor: e.devMinor)
            case .fifo:
                node = TreeNode(type: .fifo, mode: e.mode)
            case .other(let flag):
                if flag == UInt8(ascii: "S") {
                    throw ImprintError(.unsupported, "\(source): GNU sparse entry \"\(e.path.lossyString)\" is not supported")
                }
                continue
            }
            node.uid = e.uid
            node.gid = e.gid
            node.mtime = e.mtime
            node.xattrs = e.xattrs.isEmpty ? nil : e.xattrs
            node.layer = layer
            try emit(.entry(path, node, captured: captured))
        }
    }

    /// Applies one change as layer `layer`.
    private func apply(_ change: LayerChange, layer: Int?, source: String) throws {
        let path: Bytes
        let node: TreeNode
        switch change {
        case .opaque(let dir):
            if let d = tree.node(at: dir), d.type == .directory { prune(d, keeping: layer) }
            return
        case .whiteout(let p):
            tree.remove(p)
            return
        case .hardlink(let p, let target, let rawPath, let rawTarget):
            guard let t = tree.node(at: target), t.type != .directory else {
                throw ImprintError.badInput("\(source): hard link \"\(rawPath.lossyString)\" points to \"\(rawTarget.lossyString)\", which is not an earlier file")
            }
            node = t.shallowCopy()
            node.hardlink = target
            node.pycHeader = t.pycHeader
            node.layer = layer
            path = p
        case .entry(let p, let n, let c):
            if let c { captured = c }
            path = p
            node = n
        }
        if path.isEmpty {
            if node.type == .directory {
                tree.root.mode = node.mode; tree.root.uid = node.uid; tree.root.gid = node.gid
                tree.root.mtime = node.mtime; tree.root.layer = layer; tree.root.xattrs = node.xattrs
                tree.root.implicit = false
            }
            return
        }
        tree.insert(path, node)
    }

    /// Removes everything below `dir` that a lower layer put there; subdirectories this layer re-created stay,
    /// pruned the same way.
    private func prune(_ dir: TreeNode, keeping layer: Int?) {
        for (name, child) in dir.children {
            if child.layer != layer {
                dir.children.removeValue(forKey: name)
            } else if child.type == .directory {
                prune(child, keeping: layer)
            }
        }
    }

    /// Computes the Merkle digests and returns the tree.
    public func finish() -> Tree {
        tree.computeDigests()
        return tree
    }

    /// The captured content, if the file at `capturePath` in the final tree is exactly what was captured.
    public var capturedFinal: [UInt8]? {
        guard let capturePath, let captured, let n = tree.node(at: capturePath), n.type == .file,
              n.digest == SHA256.hash(captured) else { return nil }
        return captured
    }
}

/// One change a layer makes to the tree below it (see `LayerFlattener.record`).
public enum LayerChange {
    /// `dir/.wh.name`: the path is removed.
    case whiteout(Bytes)
    /// `dir/.wh..wh..opq`: what lower layers put in the directory is hidden.
    case opaque(Bytes)
    /// An entry written at a path, content already hashed; `captured` is the content of the capture path.
    case entry(Bytes, TreeNode, captured: [UInt8]?)
    /// A hard link to an earlier path, resolved when applied (the raw names are for the error message).
    case hardlink(Bytes, target: Bytes, rawPath: Bytes, rawTarget: Bytes)
}

/// The changes of one layer as `LayerFlattener.record` read them, with what was hashed and what was skipped.
public struct LayerRecording {
    public var changes: [LayerChange] = []
    public var filesHashed = 0
    public var bytesHashed: UInt64 = 0
    public var filesSkipped = 0
    public var bytesSkipped: UInt64 = 0
    /// The placeholder digests given to skipped files.
    public var placeholders: Set<Digest> = []

    public init() {}

    mutating func add(_ other: LayerRecording) {
        filesHashed += other.filesHashed; bytesHashed += other.bytesHashed
        filesSkipped += other.filesSkipped; bytesSkipped += other.bytesSkipped
    }
}
