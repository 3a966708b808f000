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
    public let tree = Tree()
    /// Interpret whiteout entries (true for image layers, false for a container filesystem tar).
    public var whiteouts = true
    /// The path whose content is captured (normally `Imprint.defaultStampPath`).
    public var capturePath: Bytes?
    /// The captured content of `capturePath`, as last written.
    public private(set) var captured: [UInt8]?
    private static let pySuffix = Array(".py".utf8)
    private static let imprintDir = Array(".imprint".utf8)
    private let hasher = SHA256()
    private static let whiteoutPrefix = Array(".wh.".utf8)
    private static let opaqueMarker = Array(".wh..wh..opq".utf8)
    private static let pycSuffix = Array(".pyc".utf8)
    private let captureLimit = 64 << 20

    public init(capturePath: Bytes? = Array(Imprint.defaultStampPath.utf8)) {
        self.capturePath = capturePath.map { $0.pathComponents.joinedPath }
    }

    /// Normalises an entry path as container runtimes do: leading `/` and `./` are the root, `.` is dropped,
    /// `..` goes up one level.
    /// - Throws: `badInput` naming the entry when `..` would leave the root.
    public static func normalise(_ path: Bytes, source: String) throws -> Bytes {
        var out: [Bytes] = []
        for c in path.pathComponents {
            if c == [0x2E] { continue }
            if c == [0x2E, 0x2E] {
                if out.isEmpty {
                    throw ImprintError.badInput("\(source): tar entry \"\(path.lossyString)\" escapes the root with ..")
                }
                out.removeLast()
                continue
            }
            out.append(c)
        }
        return out.joinedPath
    }

    /// Applies every entry of `reader` as layer `layer` (nil for a plain filesystem tar).
    /// - Throws: `badInput` for escaping paths, dangling hard links, or anything the reader rejects.
    public func apply(_ reader: TarReader, layer: Int?) throws {
        let source = reader.name
        while let e = try reader.next() {
            let path = try LayerFlattener.normalise(e.path, source: source)
            let comps = path.pathComponents
            if whiteouts, let base = comps.last, base.starts(with: LayerFlattener.whiteoutPrefix) {
                let parent = Array(comps.dropLast()).joinedPath
                if base == LayerFlattener.opaqueMarker {
                    if let dir = tree.node(at: parent), dir.type == .directory { prune(dir, keeping: layer) }
                } else if !base.starts(with: Array(".wh..wh.".utf8)) {
                    tree.remove(parent.appendingPath(Array(base.dropFirst(4))))
                }
                continue
            }
            let node: TreeNode
            switch e.kind {
            case .directory:
                node = .directory(mode: e.mode)
            case .file:
                node = TreeNode(type: .file, mode: e.mode, size: e.size)
                let isPyc = path.count >= 4 && path.suffix(4).elementsEqual(LayerFlattener.pycSuffix)
                let isImprintFile = comps.count >= 2 && comps[comps.count - 2] == LayerFlattener.imprintDir && e.size <= 16 << 20
                let capture = (capturePath == path || isImprintFile) && e.size <= UInt64(captureLimit)
                let isPy = path.count >= 3 && path.suffix(3).elementsEqual(LayerFlattener.pySuffix)
                var pyHasher = isPy ? PycSourceHasher() : nil
                var header: [UInt8] = []
                var content: [UInt8] = []
                try reader.forEachContentChunk { chunk in
                    hasher.update(chunk)
                    if isPyc && header.count < 16 { header.append(contentsOf: chunk.prefix(16 - header.count)) }
                    if capture { content.append(contentsOf: chunk) }
                    if isPy { pyHasher!.update(chunk) }
                }
                node.digest = hasher.finish()
                if isPyc { node.pycHeader = header }
                if capturePath == path && capture { captured = content }
                if isImprintFile { node.capturedContent = content }
                if isPy { node.pySourceHashes = pyHasher!.finalize() }
            case .symlink:
                node = .symlink(e.linkName)
            case .hardlink:
                let target = try LayerFlattener.normalise(e.linkName, source: source)
                guard let t = tree.node(at: target), t.type != .directory else {
                    throw ImprintError.badInput("\(source): hard link \"\(e.path.lossyString)\" points to \"\(e.linkName.lossyString)\", which is not an earlier file")
                }
                node = t.shallowCopy()
                node.hardlink = target
                node.pycHeader = t.pycHeader
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
            if e.kind != .hardlink {
                node.uid = e.uid
                node.gid = e.gid
                node.mtime = e.mtime
                node.xattrs = e.xattrs.isEmpty ? nil : e.xattrs
            }
            node.layer = layer
            if path.isEmpty {
                if node.type == .directory {
                    tree.root.mode = node.mode; tree.root.uid = node.uid; tree.root.gid = node.gid
                    tree.root.mtime = node.mtime; tree.root.layer = layer; tree.root.xattrs = node.xattrs
                    tree.root.implicit = false
                }
                continue
            }
            tree.insert(path, node)
        }
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
