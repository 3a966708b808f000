/// The text of `imprint history list`: a table with a header, build records first, then the step records of
/// `imprint run`/`pipeline` (tagged `step`) in a table of their own.
public enum HistoryFormat {
    public static func list(_ entries: [HistoryEntry]) -> String {
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

    /// Left-aligned columns two spaces apart; the last column is not padded.
    static func table(_ rows: [[String]]) -> String {
        guard let width = rows.first?.count else { return "" }
        var widths = [Int](repeating: 0, count: width)
        for r in rows { for (i, c) in r.enumerated() where i < width - 1 { widths[i] = max(widths[i], c.count) } }
        var out = ""
        for r in rows {
            var line = ""
            for (i, c) in r.enumerated() {
                line += i < width - 1 ? c + String(repeating: " ", count: widths[i] - c.count + 2) : c
            }
            out += line + "\n"
        }
        return out
    }
}
