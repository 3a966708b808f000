import Foundation

/// Renderings of a `VerifyReport`: text for people, JSON (`schemas/verify-report.schema.json`), JUnit XML and
/// GitHub workflow commands.
package enum VerifyReportFormat {
    package static func json(_ r: VerifyReport) -> [UInt8] {
        var w = JSONWriter(pretty: true)
        w.beginObject()
        w.string("verdict", r.verdict.rawValue)
        w.bool("authenticated", r.trust != .none)
        w.string("trust", r.trust.rawValue)
        w.beginObject("manifest"); w.string("source", r.manifestSource); w.string("digest", r.manifestDigest.prefixed); w.endObject()
        if let e = r.expectedDigest { w.string("expectedDigest", e.prefixed) } else { w.null("expectedDigest") }
        w.beginObject("target")
        w.string("name", r.target); w.string("kind", r.targetKind); w.string("at", r.at)
        if let d = r.actualDigest { w.string("digest", d.prefixed) }
        w.endObject()
        w.int("entriesChecked", r.entriesChecked)
        w.bool("filesCompared", r.filesCompared)
        w.beginObject("counts")
        for c in VerifyFinding.Class.allCases { w.int(c.rawValue, r.count(c)) }
        w.endObject()
        w.beginArray("findings")
        for f in r.findings {
            w.compact(nil) { o in
                o.beginObject()
                o.string("class", f.findingClass.rawValue)
                o.string("severity", f.severity.rawValue)
                o.string("path", f.path)
                o.string("message", f.message)
                if let d = f.detail { o.string("detail", d) }
                if !f.expected.isEmpty { o.beginObject("expected"); for (k, v) in f.expected { o.string(k, v) }; o.endObject() }
                if !f.actual.isEmpty { o.beginObject("actual"); for (k, v) in f.actual { o.string(k, v) }; o.endObject() }
                o.endObject()
            }
        }
        w.endArray()
        w.beginArray("warnings"); for s in r.warnings { w.string(nil, s) }; w.endArray()
        w.endObject()
        w.end()
        return w.bytes
    }

    /// The one-line verdict that starts every text report.
    package static func verdictLine(_ r: VerifyReport) -> String {
        let place = "\(r.target)\(r.at == "/" ? "" : " at \(r.at)")"
        if r.verdict == .verified {
            let auth: String
            switch r.trust {
            case .none: auth = "consistent but unauthenticated"
            case .expectedDigest: auth = "matches the expected digest"
            case .signature: auth = "signature valid"
            case .both: auth = "matches the expected digest, signature valid"
            }
            if !r.filesCompared {
                return "VERIFIED (stamp only): \(place) carries the manifest \(r.manifestDigest.prefixed) (\(auth)); its files were not compared"
            }
            if r.targetKind == "served site" {
                return "VERIFIED: \(r.target) serves the files of \(r.manifestDigest.prefixed) (\(r.entriesChecked) files; \(auth))"
            }
            return "VERIFIED: \(place) is \(r.manifestDigest.prefixed) (\(r.entriesChecked) entries; \(auth))"
        }
        let failing = r.failures
        var counts: [String] = []
        for c in VerifyFinding.Class.allCases {
            let n = failing.filter { $0.findingClass == c }.count
            if n > 0 { counts.append("\(n) \(c.rawValue)") }
        }
        let summary = "\(failing.count) finding\(failing.count == 1 ? "" : "s") (\(counts.joined(separator: ", ")))"
        if failing.contains(where: { $0.findingClass == .served }) {
            return "MISMATCH: \(r.target) does not serve the files of \(r.manifestDigest.prefixed): \(summary)"
        }
        // Say what failed: the files, or only the bytecode that would run, or only the manifest's authenticity.
        let fileClasses: Set<VerifyFinding.Class> = [.modified, .mode, .type, .symlinkTarget, .device, .missing, .extra]
        if failing.contains(where: { fileClasses.contains($0.findingClass) }) {
            return "MISMATCH: \(place) differs from \(r.manifestDigest.prefixed): \(summary)"
        }
        let running: Set<VerifyFinding.Class> = [.process, .container, .runtime]
        if failing.allSatisfy({ running.contains($0.findingClass) }) {
            return "MISMATCH: \(place) holds the files of \(r.manifestDigest.prefixed), but what runs there is not them: \(summary)"
        }
        if failing.allSatisfy({ $0.findingClass == .bytecode || running.contains($0.findingClass) }) {
            return "MISMATCH: \(place) holds the files of \(r.manifestDigest.prefixed), but Python would not run them as built: \(summary)"
        }
        return "MISMATCH: \(place) holds the files of \(r.manifestDigest.prefixed), but the manifest is not the one trusted: \(summary)"
    }

    package static func text(_ r: VerifyReport, colour: Bool, limit: Int? = nil) -> String {
        func paint(_ s: String, _ code: String) -> String { colour ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
        var lines: [String] = []
        let v = verdictLine(r)
        lines.append(paint(v, r.verdict == .verified ? (r.trust == .none ? "33" : "32") : "31;1"))
        lines.append("  manifest: \(r.manifestSource)")
        if let e = r.expectedDigest { lines.append("  expected: \(e.prefixed)") }
        if let a = r.actualDigest, r.verdict != .verified, a != r.manifestDigest { lines.append("  target digest at \(r.at): \(a.prefixed)") }
        for c in VerifyFinding.Class.allCases {
            let group = r.findings.filter { $0.findingClass == c }
            guard !group.isEmpty else { continue }
            lines.append("")
            lines.append(paint("\(c.rawValue) (\(group.count)):", "1"))
            for (i, f) in group.enumerated() {
                if let limit, i >= limit { lines.append("  … \(group.count - limit) more"); break }
                var line = "  \(f.path.isEmpty ? "(manifest)" : f.path): \(f.detail.map { "[\($0)] " } ?? "")\(f.message)"
                let e = f.expected.map { "\($0.0)=\(abbreviate($0.1))" }.joined(separator: " ")
                let a = f.actual.map { "\($0.0)=\(abbreviate($0.1))" }.joined(separator: " ")
                if !e.isEmpty || !a.isEmpty { line += "\n      expected: \(e.isEmpty ? "-" : e)\n      actual:   \(a.isEmpty ? "-" : a)" }
                lines.append(line)
            }
        }
        for w in r.warnings { lines.append(paint("warning: \(w)", "33")) }
        if r.verdict == .verified && r.trust == .none {
            lines.append(paint("warning: no --expect digest or --pubkey given: anyone who can change the code can change an unsigned manifest too", "33"))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    package static func abbreviate(_ s: String) -> String {
        if s.count == 64, s.allSatisfy(\.isHexDigit) { return String(s.prefix(12)) + "…" }
        if s.hasPrefix("sha256:"), s.count == 71 { return String(s.prefix(19)) + "…" }
        return s
    }

    /// JUnit XML: one test case per finding class; a class with error findings fails.
    package static func junit(_ r: VerifyReport) -> String {
        let classes = VerifyFinding.Class.allCases
        let failures = classes.filter { c in r.findings.contains { $0.findingClass == c && $0.severity == .error } }.count
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        x += "<testsuites name=\"imprint verify\" tests=\"\(classes.count)\" failures=\"\(failures)\">\n"
        x += "  <testsuite name=\"\(xml(r.target))\" tests=\"\(classes.count)\" failures=\"\(failures)\" errors=\"0\">\n"
        for c in classes {
            let group = r.findings.filter { $0.findingClass == c }
            x += "    <testcase classname=\"imprint.verify\" name=\"\(c.rawValue)\""
            let errors = group.filter { $0.severity == .error }
            if errors.isEmpty && group.isEmpty { x += "/>\n"; continue }
            x += ">\n"
            if !errors.isEmpty {
                x += "      <failure message=\"\(errors.count) \(c.rawValue) finding(s)\" type=\"\(c.rawValue)\">"
                x += xml(errors.map { "\($0.path): \($0.message)" }.joined(separator: "\n"))
                x += "</failure>\n"
            }
            let others = group.filter { $0.severity != .error }
            if !others.isEmpty { x += "      <system-out>\(xml(others.map { "\($0.path): \($0.message)" }.joined(separator: "\n")))</system-out>\n" }
            x += "    </testcase>\n"
        }
        x += "  </testsuite>\n</testsuites>\n"
        return x
    }

    package static func xml(_ s: String) -> String {
        var o = ""
        for ch in s.unicodeScalars {
            switch ch {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&apos;"
            default:
                if ch.value < 0x20 && ch != "\n" && ch != "\t" { o += "?" } else { o.unicodeScalars.append(ch) }
            }
        }
        return o
    }

    /// GitHub workflow commands (`::error file=…::`) for each finding.
    package static func github(_ r: VerifyReport) -> String {
        var out = ""
        for f in r.findings {
            let level = f.severity == .error ? "error" : (f.severity == .warning ? "warning" : "notice")
            let file = f.path.isEmpty ? "" : " file=\(escapeProperty(f.path)),"
            out += "::\(level)\(file) title=imprint \(f.findingClass.rawValue)::\(escapeData(f.message))\n"
        }
        out += "::\(r.verdict == .verified ? "notice" : "error") title=imprint verify::\(escapeData(verdictLine(r)))\n"
        return out
    }

    /// A Markdown summary for `$GITHUB_STEP_SUMMARY`.
    package static func markdown(_ r: VerifyReport) -> String {
        var md = "### imprint verify: \(r.verdict == .verified ? "✅" : "❌") \(r.verdict.rawValue)\n\n\(verdictLine(r))\n\n"
        if !r.findings.isEmpty {
            md += "| class | path | message |\n|---|---|---|\n"
            for f in r.findings.prefix(200) { md += "| \(f.findingClass.rawValue) | `\(f.path)` | \(f.message) |\n" }
        }
        return md
    }

    package static func escapeData(_ s: String) -> String {
        s.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "\r", with: "%0D").replacingOccurrences(of: "\n", with: "%0A")
    }
    package static func escapeProperty(_ s: String) -> String {
        escapeData(s).replacingOccurrences(of: ":", with: "%3A").replacingOccurrences(of: ",", with: "%2C")
    }
}
