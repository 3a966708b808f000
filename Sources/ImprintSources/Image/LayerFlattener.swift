import Foundation

/// Applies tar layers in order into one `Tree` exactly as a container runtime unpacks them, while streaming: file
/// contents are hashed as they pass and never written to disk.
///
/// The rules are containerd's `archive.Apply` (the naive applier every snapshotter's result equals), run on the
/// tree instead of a disk (`RuntimeFilesystem`): names cleaned and resolved inside the root (`..` stops at the
/// root, parent symlinks are followed within it), missing parents created 0755, an existing entry replaced unless
/// a directory meets a directory, whiteouts `.wh.NAME` and opaque markers `.wh..wh..opq`, hard links sharing one
/// inode, pax global headers applying their name, and the errors that make a runtime refuse the layer (unknown
/// type flags, GNU `S` sparse entries, hard links to nothing, parents that are files). Differences between
/// runtimes are listed in `schemas/LAYERS.md`.
///
/// What the tree carries beyond the runtime's view:
/// - `node.layer` is the index of the layer that last wrote each path.
/// - Hard links take their target's content digest and record the target in `node.hardlink`.
/// - The first 16 bytes of every `.pyc` are kept in `node.pycHeader`.
/// - The content of the file at `capturePath` is kept (the embedded imprint manifest), and so is the content of
///   every `…/.imprint/manifest.json` and `…/.imprint/manifest.sig` (`node.capturedContent`).
/// - Every `.py` gets its CPython source hashes (`node.pySourceHashes`) for the bytecode checks.
package final class LayerFlattener {
    package let tree: Tree
    /// Interpret whiteout entries (true for image layers, false for a container filesystem tar).
    package var whiteouts = true
    /// The path whose content is captured (normally `Imprint.defaultStampPath`).
    package var capturePath: Bytes?
    /// The captured content of `capturePath`, as last written.
    package private(set) var captured: [UInt8]?
    private static let pySuffix = Array(".py".utf8)
    private static let imprintDir = Array(".imprint".utf8)
    private static let pycSuffix = Array(".pyc".utf8)
    private let captureLimit = 64 << 20
    private let filesystem: RuntimeFilesystem

    /// Decides, per file path, whether its content is hashed; nil hashes everything. A file not hashed gets
    /// `placeholderDigest` (and is counted in `skipped`); `.pyc` headers, `.py` source hashes and captured files
    /// are still taken.
    package var hashContent: ((Bytes) -> Bool)?

    /// Where `.py` sources and timestamp `__pycache__` pycs are kept for the bytecode-equivalence check (nil: not
    /// kept).
    package var spool: BytecodeSpool?
    private static let pycacheDir = Array("__pycache__".utf8)

    /// - Parameters:
    ///   - capturePath: the path whose content is captured.
    ///   - tree: the tree to apply layers onto (a fresh one by default; pass a copy of a flattened base to
    ///     continue from it).
    ///   - captured: what was captured at `capturePath` while `tree` was built.
    package init(capturePath: Bytes? = Array(Imprint.defaultStampPath.utf8), tree: Tree = Tree(), captured: [UInt8]? = nil) {
        self.capturePath = capturePath.map { TreePath($0).bytes }
        self.tree = tree
        self.captured = captured
        filesystem = RuntimeFilesystem(tree)
    }

    /// Applies every entry of `reader` as layer `layer` (nil for a plain filesystem tar).
    /// - Throws: `badInput` naming the entry wherever a runtime refuses the layer, or the reader fails.
    package func apply(_ reader: TarReader, layer: Int?) throws {
        var stats = LayerRecording()
        filesystem.beginLayer(layer, whiteouts: whiteouts, source: reader.name)
        try read(reader, layer: layer, stats: &stats) { try self.apply($0) }
        try filesystem.endLayer()
        placeholders.formUnion(stats.placeholders)
        skipped.add(stats)
    }

    /// Reads every entry of `reader` as the changes layer `layer` makes, without touching `tree`: file contents
    /// are hashed (or skipped, see `hashContent`) now; names are resolved when the recording is replayed. Safe to
    /// call from several threads at once on one flattener, as long as its settings do not change meanwhile.
    package func record(_ reader: TarReader, layer: Int?) throws -> LayerRecording {
        var rec = LayerRecording()
        var changes: [LayerChange] = []
        try read(reader, layer: layer, stats: &rec) { changes.append($0) }
        rec.changes = changes
        return rec
    }

    /// Applies a recording made by `record` (of any flattener with the same settings) as layer `layer`.
    package func replay(_ recording: LayerRecording, layer: Int?, source: String) throws {
        filesystem.beginLayer(layer, whiteouts: whiteouts, source: source)
        for c in recording.changes { try apply(c) }
        try filesystem.endLayer()
        placeholders.formUnion(recording.placeholders)
        skipped.add(recording)
    }

    /// Digests given to files whose content was not hashed (`hashContent` returned false), so a caller can tell
    /// when such a file reached a result that needs its real digest.
    package private(set) var placeholders: Set<Digest> = []
    /// What `hashContent` skipped, over every layer applied or replayed.
    package private(set) var skipped = LayerRecording()

    /// The digest standing for the unhashed content of the file at `path` written by `layer`: SHA-256 of a
    /// text no file content can be confused with in practice, distinct per path and layer.
    package static func placeholderDigest(_ path: Bytes, layer: Int?) -> Digest {
        SHA256.hash(Array("imprint:unhashed-content\u{0}\(layer ?? -1)\u{0}".utf8) + path)
    }

    private func read(_ reader: TarReader, layer: Int?, stats: inout LayerRecording, _ emit: (LayerChange) throws -> Void) throws {
        let source = reader.name
        let hasher = SHA256()
        while let e = try reader.next() {
            let name = GoPath.clean(e.path)
            try RuntimeFilesystem.checkLength(name, what: "entry", raw: e.path, source: source, offset: e.headerOffset)
            // Where the entry lands when no symlink is in the way: what the content decisions below go by.
            let path = TreePath(name).bytes
            let comps = path.pathComponents
            let node: TreeNode
            var captured: [UInt8]?
            // The runtime never reads the content of a whiteout or of an entry naming the root (so a sparse map
            // that does not fit their data is no error there either).
            let base = comps.last ?? []
            let contentUnused = path.isEmpty || (whiteouts && base.starts(with: RuntimeFilesystem.whiteoutPrefix))
            switch e.kind {
            case .file where contentUnused:
                node = TreeNode(type: .file, mode: e.mode, size: e.size)
            case .directory:
                node = .directory(mode: e.mode)
            case .file:
                (node, captured) = try fileNode(e, path: path, comps: comps, layer: layer, reader: reader, hasher: hasher,
                                                stats: &stats)
            case .symlink:
                try RuntimeFilesystem.checkLength(e.linkName, what: "symlink target", raw: e.path, source: source, offset: e.headerOffset)
                node = .symlink(e.linkName)
            case .hardlink:
                try RuntimeFilesystem.checkLength(GoPath.clean(e.linkName), what: "hard link target", raw: e.path, source: source, offset: e.headerOffset)
                node = TreeNode(type: .file, mode: e.mode)
            case .characterDevice:
                node = .device(.charDevice, mode: e.mode, major: e.devMajor, minor: e.devMinor)
            case .blockDevice:
                node = .device(.blockDevice, mode: e.mode, major: e.devMajor, minor: e.devMinor)
            case .fifo:
                node = TreeNode(type: .fifo, mode: e.mode)
            case .globalHeader:
                try emit(.global(name: name, offset: e.headerOffset))
                continue
            case .other(let flag):
                try emit(.unsupported(name: name, flag: flag, offset: e.headerOffset))
                continue
            }
            node.uid = e.uid
            node.gid = e.gid
            node.mtime = e.mtime
            node.xattrs = e.xattrs.isEmpty ? nil : e.xattrs
            node.layer = layer
            if e.kind == .hardlink {
                try emit(.hardlink(name: name, target: e.linkName, metadata: node, offset: e.headerOffset))
            } else {
                try emit(.entry(name: name, node: node, captured: captured, offset: e.headerOffset))
            }
        }
    }

    /// A regular file's node: hashed (or given a placeholder digest when nothing reads its content), with what the
    /// Python checks and the embedded manifest need from its bytes, read as the entry streams past. Also returns
    /// the content of `capturePath` when this is that file.
    private func fileNode(_ e: TarEntry, path: Bytes, comps: [Bytes], layer: Int?, reader: TarReader, hasher: SHA256,
                          stats: inout LayerRecording) throws -> (node: TreeNode, captured: [UInt8]?) {
        let node = TreeNode(type: .file, mode: e.mode, size: e.size)
        let isPyc = path.count >= 4 && path.suffix(4).elementsEqual(LayerFlattener.pycSuffix)
        let isImprintFile = comps.count >= 2 && comps[comps.count - 2] == LayerFlattener.imprintDir && e.size <= 16 << 20
        let capture = (capturePath == path || isImprintFile) && e.size <= UInt64(captureLimit)
        let isPy = path.count >= 3 && path.suffix(3).elementsEqual(LayerFlattener.pySuffix)
        // Captured files are always hashed: their digest is checked against what was captured.
        let hash = capture || isImprintFile || capturePath == path || hashContent?(path) != false
        var pyHasher = isPy ? PycSourceHasher() : nil
        var header: [UInt8] = []
        var content: [UInt8] = []
        // Sources as they stream; pycs in __pycache__ (small) kept in memory until their header shows
        // whether they are timestamp pycs (flags 0), the only ones worth compiling against.
        let keep = spool != nil && hash && e.size <= BytecodeSpool.maxFileSize
        let inPycache = isPyc && comps.count >= 2 && comps[comps.count - 2] == LayerFlattener.pycacheDir
        let spooled = keep && isPy ? spool!.begin(size: e.size) : nil
        var pycContent: [UInt8]? = keep && inPycache ? [] : nil
        if hash || isPy {
            try reader.forEachContentChunk { chunk in
                if hash { hasher.update(chunk) }
                if isPyc && header.count < 16 { header.append(contentsOf: chunk.prefix(16 - header.count)) }
                if capture { content.append(contentsOf: chunk) }
                if isPy { pyHasher!.update(chunk) }
                spooled?.write(chunk)
                pycContent?.append(contentsOf: chunk)
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
            spooled?.finish(node.digest)
            if let pyc = pycContent, let h = try? PycHeader.parse(Array(pyc.prefix(16))), case .timestamp = h.validation,
               let w = spool!.begin(size: UInt64(pyc.count)) {
                pyc.withUnsafeBytes { w.write($0) }
                w.finish(node.digest)
            }
            stats.filesHashed += 1
            stats.bytesHashed += e.size
        } else {
            node.digest = LayerFlattener.placeholderDigest(path, layer: layer)
            stats.placeholders.insert(node.digest)
            stats.filesSkipped += 1
            stats.bytesSkipped += e.size
        }
        if isPyc { node.pycHeader = header }
        if isImprintFile { node.capturedContent = content }
        if isPy { node.pySourceHashes = pyHasher!.finalize() }
        return (node, capturePath == path && capture ? content : nil)
    }

    /// Applies one change to the tree.
    private func apply(_ change: LayerChange) throws {
        if case .entry(_, _, let c?, _) = change { captured = c }
        try filesystem.apply(change)
    }

    /// Computes the Merkle digests and returns the tree.
    package func finish() -> Tree {
        tree.computeDigests()
        return tree
    }

    /// The captured content, if the file at `capturePath` in the final tree is exactly what was captured.
    package var capturedFinal: [UInt8]? {
        guard let capturePath, let captured, let n = tree.node(at: capturePath), n.type == .file,
              n.digest == SHA256.hash(captured) else { return nil }
        return captured
    }
}

/// One entry of a layer as `LayerFlattener.record` read it; names are cleaned as Go's `filepath.Clean` does
/// and resolved only when applied (they may go through symlinks the layers made).
package enum LayerChange {
    /// A file, directory, symlink, device or FIFO, content already hashed; `captured` is the content of the
    /// capture path. A name whose last component starts with `.wh.` is a whiteout when whiteouts apply.
    case entry(name: Bytes, node: TreeNode, captured: [UInt8]?, offset: UInt64)
    /// A hard link to `target` (the link name as the header gives it); `metadata` carries mode, owner and time.
    case hardlink(name: Bytes, target: Bytes, metadata: TreeNode, offset: UInt64)
    /// A pax global header: nothing is created, but the runtime still removes what its name names.
    case global(name: Bytes, offset: UInt64)
    /// A type flag runtimes do not unpack (refused unless the name is a whiteout).
    case unsupported(name: Bytes, flag: UInt8, offset: UInt64)

    /// The entry's cleaned name.
    package var name: Bytes {
        switch self {
        case .entry(let n, _, _, _), .hardlink(let n, _, _, _), .global(let n, _), .unsupported(let n, _, _): return n
        }
    }
}

/// The changes of one layer as `LayerFlattener.record` read them, with what was hashed and what was skipped.
package struct LayerRecording {
    package var changes: [LayerChange] = []
    package var filesHashed = 0
    package var bytesHashed: UInt64 = 0
    package var filesSkipped = 0
    package var bytesSkipped: UInt64 = 0
    /// The placeholder digests given to skipped files.
    package var placeholders: Set<Digest> = []

    package init() {}

    package mutating func add(_ other: LayerRecording) {
        filesHashed += other.filesHashed; bytesHashed += other.bytesHashed
        filesSkipped += other.filesSkipped; bytesSkipped += other.bytesSkipped
    }
}
