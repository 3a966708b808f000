/// The text of `imprint history list`: a table with a header, build records first, then the step records of
/// `imprint run`/`pipeline` (tagged `step`) in a table of their own.
package enum HistoryFormat {
    package static func list(_ entries: [HistoryEntry]) -> String {
        let steps = entries.filter { $0.tags.contains("step") }
        let builds = entries.filter { !$0.tags.contains("step") }
        var out = ""
        if entries.isEmpty { return "" }
        if !builds.isEmpty {
            var rows = [["RECORD", "RECORDED", "CONTEXT", "FILES", "GIT", "TAGS"]]
            for e in builds {
                var git = "-"
                if let c = e.gitCommit { git = "\(e.gitBranch ?? "-")@\(c.prefix(10))\(e.gitDirty == true ? "+dirty" : "")" }
                rows.append([e.record.short, String(e.recorded.prefix(19)) + "Z", e.root.short, String(e.files), git,
                             e.tags.isEmpty ? "-" : e.tags.joined(separator: ",")])
            }
            out += table(rows)
        }
        if !steps.isEmpty {
            if !out.isEmpty { out += "\n" }
            out += "step records (imprint run, imprint pipeline):\n"
            var rows = [["RECORD", "RECORDED", "STEP"]]
            for e in steps {
                let name = e.tags.first { $0.hasPrefix("step:") }.map { String($0.dropFirst(5)) } ?? "-"
                rows.append([e.record.short, String(e.recorded.prefix(19)) + "Z", name])
            }
            out += table(rows)
        }
        return out
    }

    /// Left-aligned columns two spaces apart; the last column is not padded. Widths count characters (an ASCII cell,
    /// the usual case, is measured by its bytes without grapheme breaking).
    package static func table(_ rows: [[String]]) -> String {
        guard let width = rows.first?.count else { return "" }
        func columns(_ s: String) -> Int { s.utf8.allSatisfy { $0 < 0x80 } ? s.utf8.count : s.count }
        let cells = rows.map { $0.map(columns) }
        var widths = [Int](repeating: 0, count: width)
        for r in cells { for (i, c) in r.enumerated() where i < width - 1 { widths[i] = max(widths[i], c) } }
        var out = ""
        out.reserveCapacity(rows.count * (widths.reduce(0, +) + 2 * width + 24))
        for (r, w) in zip(rows, cells) {
            for (i, c) in r.enumerated() {
                out += c
                if i < width - 1 { out += String(repeating: " ", count: widths[i] - w[i] + 2) }
            }
            out += "\n"
        }
        return out
    }

    /// `history list --format json`.
    package static func listJSON(_ entries: [HistoryEntry]) -> [UInt8] {
        var w = JSONWriter(pretty: true, reserve: entries.count * 400)
        w.beginArray()
        for e in entries { w.compact(nil) { e.write(to: &$0) } }
        w.endArray()
        w.end()
        return w.bytes
    }

    /// `history show --format summary`.
    package static func summary(_ e: HistoryEntry, _ r: BuildRecord) -> String {
        var s = """
        record    \(e.record.prefixed)
        root      \(r.root.prefixed)
        recorded  \(r.recorded)
        created   \(r.metadata.created)
        contents  \(r.files) files, \(r.directories) directories, \(r.symlinks) symlinks, \(r.other) other, \(r.bytes) bytes

        """
        if let c = r.metadata.gitCommit { s += "git       \(r.metadata.gitBranch ?? "-")@\(c)\(r.metadata.gitDirty == true ? " (dirty)" : "")\n" }
        for (k, v) in r.metadata.ci { s += "ci        \(k)=\(v)\n" }
        if let d = r.imageDigest { s += "image     \(d)\n" }
        if !r.tags.isEmpty { s += "tags      \(r.tags.joined(separator: ", "))\n" }
        for f in r.findings { s += "finding   \(f.kind.rawValue): \(f.path): \(f.message)\n" }
        if !r.steps.isEmpty { s += "steps     \(r.steps.count)\n" }
        return s
    }

    /// `history show --format paths`: one path per line, in tree order.
    package static func paths(_ tree: Tree) -> [UInt8] {
        var out: [UInt8] = []
        tree.walk { p, _ in out.append(contentsOf: p); out.append(0x0A) }
        return out
    }

    /// `history diff`: A/D/M and the path per line, or JSON.
    package static func diff(_ changes: [HistoryChange], from a: HistoryEntry, to b: HistoryEntry, json: Bool) -> [UInt8] {
        if json {
            var w = JSONWriter(pretty: true, reserve: 256 + changes.count * 80)
            w.beginObject()
            w.string("from", a.record.prefixed); w.string("to", b.record.prefixed)
            w.bool("identical", changes.isEmpty)
            w.beginArray("changes")
            for c in changes {
                w.compact(nil) { o in
                    o.beginObject(); o.string("change", c.kind.rawValue); o.string("path", c.path.lossyString); o.string("type", c.type.rawValue); o.endObject()
                }
            }
            w.endArray()
            w.endObject()
            w.end()
            return w.bytes
        }
        var out: [UInt8] = []
        for c in changes {
            out.append(contentsOf: (c.kind == .added ? "A " : c.kind == .removed ? "D " : "M ").utf8)
            out.append(contentsOf: c.path)
            if c.type == .directory { out.append(UInt8(ascii: "/")) }
            out.append(0x0A)
        }
        return out
    }

    /// `history fsck`: the findings, one per line, or JSON.
    package static func fsck(_ r: HistoryFsckReport, json: Bool) -> [UInt8] {
        if json {
            var w = JSONWriter(pretty: true)
            w.beginObject()
            w.bool("clean", r.isClean)
            w.int("objects", r.objectsChecked); w.int("records", r.recordsChecked)
            w.beginArray("corrupt")
            for c in r.corrupt { w.compact(nil) { o in o.beginObject(); o.string("object", c.id.prefixed); o.string("reason", c.reason); o.endObject() } }
            w.endArray()
            w.beginArray("missing")
            for m in r.missing { w.compact(nil) { o in o.beginObject(); o.string("record", m.record.prefixed); o.string("object", m.object.prefixed); o.endObject() } }
            w.endArray()
            w.beginArray("unreferenced"); for u in r.unreferenced { w.string(nil, u.prefixed) }; w.endArray()
            w.beginArray("temporaryFiles"); for t in r.temporaryFiles { w.string(nil, t) }; w.endArray()
            w.beginArray("repairedRefs"); for t in r.repairedRefs { w.string(nil, t) }; w.endArray()
            w.beginArray("strayFiles"); for t in r.strayFiles { w.string(nil, t) }; w.endArray()
            w.endObject()
            w.end()
            return w.bytes
        }
        var lines: [String] = []
        for c in r.corrupt { lines.append("corrupt \(c.id.prefixed): \(c.reason)") }
        for m in r.missing { lines.append("missing \(m.object.prefixed) (needed by record \(m.record.prefixed))") }
        for u in r.unreferenced { lines.append("unreferenced \(u.prefixed)") }
        for t in r.temporaryFiles { lines.append("temporary \(t)") }
        for t in r.repairedRefs { lines.append("repaired \(t)") }
        for t in r.strayFiles { lines.append("stray \(t)") }
        return Array(lines.map { $0 + "\n" }.joined().utf8)
    }
}

extension HistoryStore {
    /// `history show`'s summary of a record, once every object of its build was read and verified (a summary never
    /// vouches for a build the store could not give back whole).
    package func verifiedSummary(_ e: HistoryEntry) throws -> String {
        let r = try record(e.record)
        _ = try tree(root: e.root)
        return HistoryFormat.summary(e, r)
    }
}
