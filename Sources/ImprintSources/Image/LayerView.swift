import Foundation

/// Each layer of an image on its own: what it adds, what it changes of the layers below, what it removes
/// (whiteouts, opaque directories), the instruction that made it, and the bytes it carries that a later layer
/// overwrites or removes (wasted: shipped in every pull, never seen in the container). Layers are streamed once,
/// bottom to top; memory holds one record per path, not content.
package struct LayerView {
    package struct Entry: Sendable {
        package var path: String
        package var size: UInt64
        package var type: String
    }

    package struct Layer: Sendable {
        package var index: Int
        package var digest: String
        package var diffID: String?
        /// Compressed size of the blob.
        package var size: Int64
        package var mediaType: String
        package var createdBy: String?
        package var added: [Entry] = []
        package var modified: [Entry] = []
        /// Paths a whiteout removes (with the size of the files removed below them).
        package var removed: [Entry] = []
        /// Bytes of this layer's files that a later layer overwrites or removes.
        package var wasted: UInt64 = 0
        /// Bytes of files in this layer (uncompressed content).
        package var contentBytes: UInt64 = 0
    }

    package var source: String
    package var layers: [Layer]
    package var totalWasted: UInt64 { layers.reduce(0) { $0 + $1.wasted } }

    /// Reads every layer of `spec` (an image: OCI layout, archives, registry://).
    package static func read(_ spec: String, platform: String? = nil, registry: RegistryOptions = RegistryOptions()) throws -> LayerView {
        let reader: ImageReader
        let info: ImageInfo
        let chosen = try platform.map { try Platform(parsing: $0) }
        if RegistryReference.isRegistry(spec) {
            let r = try RegistryImageReader(RegistryReference(parsing: spec), options: registry)
            reader = r
            info = try r.resolve(reference: nil, platform: chosen)
        } else {
            let location = try SourceLoader.openImage(spec)
            reader = location.reader
            info = try location.reader.resolve(reference: location.reference, platform: chosen)
        }
        return try read(reader, info, name: spec)
    }

    /// What a path holds now: the layer that wrote it, its size, whether it is a directory.
    struct Owner { var layer: Int; var size: UInt64; var isDirectory: Bool }

    static func read(_ reader: ImageReader, _ image: ImageInfo, name: String) throws -> LayerView {
        let history = image.config.layerHistory
        var state: [String: Owner] = [:]
        var layers: [Layer] = []
        for i in image.layers.indices {
            let l = image.layers[i]
            var layer = Layer(index: i, digest: l.descriptor.digest.prefixed, diffID: l.diffID?.prefixed, size: Int64(l.descriptor.size),
                              mediaType: l.descriptor.mediaType, createdBy: i < history.count ? history[i] : nil)
            let pipeline = SourceLoader.layerPipeline(reader, image, i)
            defer { pipeline.cancel(); pipeline.waitUntilDone() }
            pipeline.start()
            let tar = TarReader(pipeline, name: SourceLoader.layerName(image, i))
            var written: Set<String> = []
            while let e = try tar.next() {
                let path = TreePath(GoPath.clean(e.path)).bytes.lossyString
                if path.isEmpty { continue }
                let base = (path as NSString).lastPathComponent, dir = (path as NSString).deletingLastPathComponent
                if base == ".wh..wh..opq" {
                    // Everything below `dir` from lower layers is gone (what this layer writes there stays).
                    let prefix = dir.isEmpty ? "" : dir + "/"
                    var bytes: UInt64 = 0, count = 0
                    for (p, o) in state where p.hasPrefix(prefix) && o.layer < i && !written.contains(p) {
                        bytes += o.size; count += 1
                        layers[o.layer].wasted += o.size
                        state[p] = nil
                    }
                    layer.removed.append(Entry(path: "/" + dir + "/*", size: bytes, type: "opaque (\(count) entries)"))
                    continue
                }
                if base.hasPrefix(".wh.") {
                    let target = (dir.isEmpty ? "" : dir + "/") + String(base.dropFirst(4))
                    var bytes: UInt64 = 0
                    for (p, o) in state where p == target || p.hasPrefix(target + "/") {
                        bytes += o.size
                        if o.layer < i { layers[o.layer].wasted += o.size } else { layer.wasted += o.size }
                        state[p] = nil
                    }
                    layer.removed.append(Entry(path: "/" + target, size: bytes, type: "whiteout"))
                    continue
                }
                let isDirectory: Bool, type: String, size: UInt64
                switch e.kind {
                case .directory: (isDirectory, type, size) = (true, "directory", 0)
                case .file: (isDirectory, type, size) = (false, "file", e.size)
                case .symlink: (isDirectory, type, size) = (false, "symlink", 0)
                case .hardlink: (isDirectory, type, size) = (false, "hardlink", 0)
                default: (isDirectory, type, size) = (false, "special", 0)
                }
                layer.contentBytes += size
                written.insert(path)
                if let old = state[path] {
                    if !(old.isDirectory && isDirectory) {
                        if old.layer < i { layers[old.layer].wasted += old.size } else { layer.wasted += old.size }
                        layer.modified.append(Entry(path: "/" + path, size: size, type: type))
                    }
                } else {
                    layer.added.append(Entry(path: "/" + path, size: size, type: type))
                }
                state[path] = Owner(layer: i, size: size, isDirectory: isDirectory)
            }
            try pipeline.forEachChunk(bufferSize: 64 << 10) { _ in }
            layers.append(layer)
        }
        return LayerView(source: name, layers: layers)
    }

    // MARK: Output

    package func text(limit: Int?) -> String {
        var lines = ["\(source): \(layers.count) layer\(layers.count == 1 ? "" : "s"), \(formatBytes(totalWasted)) wasted (files a later layer overwrites or removes)"]
        for l in layers {
            lines.append("")
            lines.append("layer \(l.index) \(l.diffID ?? l.digest)  \(formatBytes(UInt64(max(0, l.size)))) compressed, \(formatBytes(l.contentBytes)) of files"
                         + (l.wasted > 0 ? ", \(formatBytes(l.wasted)) wasted" : ""))
            if let c = l.createdBy { lines.append("  created by: \(c)") }
            lines.append("  +\(l.added.count) added  ~\(l.modified.count) modified  -\(l.removed.count) removed")
            for (mark, group) in [("+", l.added), ("~", l.modified), ("-", l.removed)] {
                let files = group.filter { $0.type != "directory" }
                for (n, e) in files.enumerated() {
                    if let limit, n >= limit { lines.append("    \(mark) … \(files.count - limit) more (raise --limit)"); break }
                    lines.append("    \(mark) \(e.path)" + (e.type == "file" || e.type == "whiteout" ? " (\(formatBytes(e.size)))" : " (\(e.type))"))
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    package func json() -> [UInt8] {
        var w = JSONWriter(pretty: true)
        w.beginObject()
        w.string("source", source)
        w.int("wasted", totalWasted)
        w.beginArray("layers")
        for l in layers {
            w.beginObject()
            w.int("index", l.index); w.string("digest", l.digest)
            if let d = l.diffID { w.string("diffID", d) } else { w.null("diffID") }
            w.int("size", l.size); w.string("mediaType", l.mediaType)
            if let c = l.createdBy { w.string("createdBy", c) } else { w.null("createdBy") }
            w.int("contentBytes", l.contentBytes); w.int("wasted", l.wasted)
            for (key, group) in [("added", l.added), ("modified", l.modified), ("removed", l.removed)] {
                w.beginArray(key)
                for e in group {
                    w.compact(nil) { o in o.beginObject(); o.string("path", e.path); o.string("type", e.type); o.int("size", e.size); o.endObject() }
                }
                w.endArray()
            }
            w.endObject()
        }
        w.endArray()
        w.endObject()
        w.end()
        return w.bytes
    }

    package func html() -> String {
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
                .replacingOccurrences(of: "\"", with: "&quot;")
        }
        var body = ""
        for l in layers {
            body += "<details class=\"layer\" data-layer=\"\(l.index)\"><summary><b>layer \(l.index)</b> <code>\(esc(l.diffID ?? l.digest))</code> — "
                + "+\(l.added.count) ~\(l.modified.count) −\(l.removed.count), \(esc(formatBytes(l.contentBytes)))"
                + (l.wasted > 0 ? ", <span class=\"waste\">\(esc(formatBytes(l.wasted))) wasted</span>" : "") + "</summary>"
            if let c = l.createdBy { body += "<p class=\"cmd\"><code>\(esc(c))</code></p>" }
            body += "<table><tr><th></th><th>path</th><th>type</th><th>size</th></tr>"
            for (mark, cls, group) in [("+", "add", l.added), ("~", "mod", l.modified), ("−", "rem", l.removed)] {
                for e in group where e.type != "directory" {
                    body += "<tr class=\"\(cls)\"><td>\(mark)</td><td><code>\(esc(e.path))</code></td><td>\(esc(e.type))</td><td>\(esc(formatBytes(e.size)))</td></tr>"
                }
            }
            body += "</table></details>\n"
        }
        return """
        <!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>imprint layers: \(esc(source))</title>
        <style>body{font:14px/1.45 system-ui,sans-serif;margin:24px}code{font-family:ui-monospace,monospace;font-size:12px}
        details{border:1px solid #e3e7eb;border-radius:6px;margin:8px 0;padding:6px 10px}table{border-collapse:collapse;margin:6px 0}
        td,th{border-bottom:1px solid #eee;padding:2px 8px;text-align:left}.add td:first-child{color:#1a7f37}.rem td:first-child{color:#cf222e}
        .mod td:first-child{color:#9a6700}.waste{color:#cf222e}</style></head><body>
        <h1>imprint layers</h1><p><code>\(esc(source))</code>: \(layers.count) layers, \(esc(formatBytes(totalWasted))) wasted</p>
        \(body)</body></html>

        """
    }
}
