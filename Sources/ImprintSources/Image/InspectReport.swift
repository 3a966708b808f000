import Foundation

/// What `imprint inspect` shows about a loaded source, as text or JSON (`schemas/inspect.schema.json`).
package struct InspectReport {
    package let source: LoadedSource
    package let includeTree: Bool
    /// List every entry of the tree (`--files`).
    package let includeFiles: Bool

    package init(_ source: LoadedSource, includeTree: Bool, includeFiles: Bool = false) {
        self.source = source
        self.includeTree = includeTree || includeFiles
        self.includeFiles = includeFiles
    }

    /// Stable JSON, keys in a fixed order.
    package func json() -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.string("source", source.path)
        w.string("format", source.kind.rawValue)
        if let img = source.image {
            w.string("platform", img.platform.description)
            if let ref = img.reference { w.string("reference", ref) }
            if !img.repoTags.isEmpty { w.beginArray("repoTags"); for t in img.repoTags { w.string(nil, t) }; w.endArray() }
            if let m = img.manifestDescriptor {
                w.beginObject("manifest"); descriptor(&w, m); w.endObject()
            } else {
                w.null("manifest")
            }
            w.beginObject("config"); descriptor(&w, img.configDescriptor); w.endObject()
            w.beginArray("layers")
            for l in img.layers {
                w.beginObject()
                descriptor(&w, l.descriptor)
                if let d = l.diffID { w.string("diffID", d.prefixed) } else { w.null("diffID") }
                w.endObject()
            }
            w.endArray()
            let labels = img.config.labels
            w.beginObject("labels")
            for k in labels.keys.sorted() { w.string(k, labels[k]!) }
            w.endObject()
        }
        w.beginObject("embeddedManifest")
        w.string("path", "/" + source.stampPath)
        w.bool("present", source.embeddedManifestBytes != nil)
        if let b = source.embeddedManifestBytes { w.string("sha256", SHA256.hash(b).prefixed) }
        if let m = source.embeddedManifest { w.string("digest", m.rootDigest.prefixed) }
        if let p = source.embeddedManifestProblem { w.string("problem", p) }
        w.endObject()
        if includeTree {
            let s = source.tree.statistics
            w.beginObject("tree")
            w.string("digest", source.tree.rootDigest.prefixed)
            w.int("files", s.files)
            w.int("directories", s.directories)
            w.int("symlinks", s.symlinks)
            w.int("other", s.other)
            w.int("bytes", s.bytes)
            w.endObject()
        }
        if includeFiles {
            w.beginArray("files")
            source.tree.walk { path, n in
                w.beginObject()
                if let p = path.exactString { w.string("path", p) } else { w.string("pathBase64", Data(path).base64EncodedString()) }
                w.string("type", n.type.rawValue)
                w.string("mode", octalMode(n.canonicalMode))
                switch n.type {
                case .file:
                    w.int("size", n.size)
                    w.string("sha256", n.digest.hex)
                    if let h = n.hardlink { w.string("hardlink", h.lossyString) }
                case .symlink:
                    let t = n.target ?? []
                    if let s = t.exactString { w.string("target", s) } else { w.string("targetBase64", Data(t).base64EncodedString()) }
                case .charDevice, .blockDevice:
                    w.string("device", "\(n.devMajor),\(n.devMinor)")
                default:
                    break
                }
                if let l = n.layer { w.int("layer", l + 1) }
                w.endObject()
            }
            w.endArray()
        }
        w.endObject()
        w.end()
        return w.bytes
    }

    private func descriptor(_ w: inout JSONWriter, _ d: Descriptor) {
        w.string("mediaType", d.mediaType)
        w.string("digest", d.digest.prefixed)
        w.int("size", d.size)
    }

    /// A short human summary.
    package func text() -> String {
        var lines: [String] = []
        lines.append("source:    \(source.path)")
        lines.append("format:    \(source.kind.rawValue)")
        if let img = source.image {
            lines.append("platform:  \(img.platform)")
            if !img.repoTags.isEmpty { lines.append("tags:      \(img.repoTags.joined(separator: ", "))") }
            if let m = img.manifestDescriptor { lines.append("manifest:  \(m.digest) (\(m.mediaType))") }
            lines.append("config:    \(img.configDescriptor.digest)")
            let total = img.layers.reduce(UInt64(0)) { $0 + $1.descriptor.size }
            lines.append("layers:    \(img.layers.count), \(formatBytes(total))")
            for (i, l) in img.layers.enumerated() {
                lines.append("  \(i + 1). \(l.descriptor.digest.short)  \(formatBytes(l.descriptor.size).padding(toLength: 10, withPad: " ", startingAt: 0))  \(l.descriptor.mediaType)")
            }
        }
        if let m = source.embeddedManifest {
            lines.append("imprint:   \(m.rootDigest) at /\(source.stampPath) (\(m.tree.statistics.files) files)")
        } else if let p = source.embeddedManifestProblem {
            lines.append("imprint:   invalid manifest at /\(source.stampPath): \(p)")
        } else {
            lines.append("imprint:   no manifest at /\(source.stampPath)")
        }
        if includeTree {
            let s = source.tree.statistics
            lines.append("tree:      \(source.tree.rootDigest) (\(s.files) files, \(s.directories) directories, \(s.symlinks) symlinks, \(formatBytes(s.bytes)))")
        }
        if includeFiles {
            lines.append("files:")
            source.tree.walk { path, n in
                var line = "  \(n.type.letter == UInt8(ascii: "f") ? "-" : String(UnicodeScalar(n.type.letter)))\(octalMode(n.canonicalMode)) "
                switch n.type {
                case .file: line += "\(n.size.description.leftPadded(12)) \(n.digest.short) "
                case .charDevice, .blockDevice: line += "\("\(n.devMajor),\(n.devMinor)".leftPadded(12)) \(String(repeating: " ", count: 12)) "
                default: line += "\(String(repeating: " ", count: 12)) \(String(repeating: " ", count: 12)) "
                }
                line += path.escapedForListing
                if n.type == .symlink { line += " -> " + (n.target ?? []).escapedForListing }
                if let h = n.hardlink { line += " (hard link to " + h.escapedForListing + ")" }
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
