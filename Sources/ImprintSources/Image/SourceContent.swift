import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The content of chosen files of a source, read after its tree was: from disk for a directory, from the tar again
/// for a tar file, and for an image from the one layer that last wrote each file (`TreeNode.layer`), so only the
/// layers holding wanted files are read a second time. What cannot be read again (standard input, a manifest, a
/// history record) is simply absent. At most `limit` bytes of each file are kept; `complete` says whether that was
/// the whole file.
package enum SourceContent {
    package struct File: Sendable {
        package var bytes: [UInt8]
        package var complete: Bool
        package init(bytes: [UInt8], complete: Bool) { self.bytes = bytes; self.complete = complete }
    }

    /// - Parameters:
    ///   - spec: the source as `SourceLoader.load` was given it.
    ///   - paths: tree paths (no leading slash) of regular files in `tree`.
    /// - Throws: when the source cannot be read again (a blob that went missing, a changed file).
    package static func read(_ spec: String, tree: Tree, paths: Set<Bytes>, limit: Int, platform: String? = nil,
                            registry: RegistryOptions = RegistryOptions()) throws -> [Bytes: File] {
        try read(spec, tree: tree, limits: Dictionary(uniqueKeysWithValues: paths.map { ($0, limit) }), platform: platform, registry: registry)
    }

    /// Like `read(_:tree:paths:limit:)`, with a limit per path.
    package static func read(_ spec: String, tree: Tree, limits: [Bytes: Int], platform: String? = nil,
                            registry: RegistryOptions = RegistryOptions()) throws -> [Bytes: File] {
        let paths = limits
        if paths.isEmpty || spec == "-" || ManifestReference.isHistory(spec) { return [:] }
        if RegistryReference.isRegistry(spec) {
            let reader = try RegistryImageReader(RegistryReference(parsing: spec), options: registry)
            let info = try reader.resolve(reference: nil, platform: try platform.map { try Platform(parsing: $0) })
            return try fromLayers(reader, info, tree: tree, limits: paths)
        }
        if LiveSource.isLive(spec) { return [:] }
        let parsed = try SourceLoader.parse(spec)
        switch parsed.kind {
        case .directory:
            var out: [Bytes: File] = [:]
            for (p, limit) in paths {
                if let f = try readFile(parsed.path + "/" + p.lossyString, limit: limit) { out[p] = f }
            }
            return out
        case .tarStream:
            return try fromTar(try FileDescriptorSource(path: parsed.path), name: parsed.path, limits: paths)
        case .ociLayout, .ociArchive, .dockerArchive, .registry:
            let location = try SourceLoader.openImage(parsed)
            let info = try location.reader.resolve(reference: location.reference, platform: try platform.map { try Platform(parsing: $0) })
            return try fromLayers(location.reader, info, tree: tree, limits: paths)
        case .manifestFile, .container:
            return [:]
        }
    }

    static func readFile(_ path: String, limit: Int) throws -> File? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        var bytes = [UInt8](repeating: 0, count: limit + 1)
        var got = 0
        while got < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Syscall.read(fd, $0.baseAddress! + got, $0.count - got) }
            if n < 0 { throw ImprintError.posix("read", path) }
            if n == 0 { break }
            got += n
        }
        return File(bytes: Array(bytes[..<min(got, limit)]), complete: got <= limit)
    }

    /// The wanted files of one tar stream (the last entry of a name wins, as when it is unpacked).
    static func fromTar(_ raw: ByteSource, name: String, limits: [Bytes: Int]) throws -> [Bytes: File] {
        let prefetch = PrefetchingSource(open: { try Compression.decompressing(raw, name: name).0 })
        defer { prefetch.cancel(); prefetch.waitUntilDone() }
        return try capture(TarReader(prefetch, name: name), limits: limits)
    }

    static func capture(_ reader: TarReader, limits: [Bytes: Int]) throws -> [Bytes: File] {
        var out: [Bytes: File] = [:]
        while let e = try reader.next() {
            guard case .file = e.kind else { continue }
            let path = TreePath(GoPath.clean(e.path)).bytes
            guard let limit = limits[path] else { continue }
            var kept: [UInt8] = []
            kept.reserveCapacity(Int(min(UInt64(limit), e.size)))
            try reader.forEachContentChunk { chunk in
                if kept.count < limit { kept.append(contentsOf: chunk.prefix(limit - kept.count)) }
            }
            out[path] = File(bytes: kept, complete: e.size <= UInt64(limit))
        }
        return out
    }

    /// The wanted files of an image, each from the layer that last wrote it.
    static func fromLayers(_ reader: ImageReader, _ image: ImageInfo, tree: Tree, limits: [Bytes: Int]) throws -> [Bytes: File] {
        var byLayer: [Int: [Bytes: Int]] = [:]
        for (p, limit) in limits {
            guard let node = tree.node(at: p), node.type == .file, let layer = node.layer, layer < image.layers.count else { continue }
            byLayer[layer, default: [:]][p] = limit
        }
        var out: [Bytes: File] = [:]
        for layer in byLayer.keys.sorted() {
            let pipeline = SourceLoader.layerPipeline(reader, image, layer)
            defer { pipeline.cancel(); pipeline.waitUntilDone() }
            pipeline.start()
            let found = try capture(TarReader(pipeline, name: SourceLoader.layerName(image, layer)), limits: byLayer[layer]!)
            out.merge(found) { _, new in new }
        }
        return out
    }
}
