import Foundation

/// The parts of a Dockerfile that decide where build-context files land in the final image: its last stage's
/// `COPY`/`ADD` instructions from the context, with `WORKDIR`, `ARG` and `ENV` substitution, read as BuildKit's
/// Dockerfile frontend reads them (line continuations, the escape directive, JSON and shell forms, flags).
/// Out of scope, and said so in `unsupported`: `COPY --from` (another stage or image), remote `ADD` URLs and git
/// sources, and `ADD` of a local archive (the builder unpacks it).
package struct Dockerfile: Sendable {
    package struct Copy: Sendable {
        package var line: Int
        package var instruction: String
        /// `COPY` or `ADD`.
        package var command: String
        /// Source patterns, relative to the context, after substitution.
        package var sources: [String]
        /// The destination, absolute (resolved against `WORKDIR`), after substitution; ends with `/` when the
        /// instruction names a directory.
        package var destination: String
        package var chmod: UInt32?
        package var chown: String?
        package var link = false
        package var parents = false
        package var excludes: [String] = []
    }

    /// The final stage's copies from the context, in order.
    package var copies: [Copy]
    /// Instructions imprint cannot predict, with the reason.
    package var unsupported: [(line: Int, instruction: String, reason: String)]
    /// The final stage's base (`FROM …`).
    package var base: String?

    /// Parses Dockerfile text; `buildArgs` override `ARG` defaults (as `--build-arg`).
    /// - Throws: `badInput` naming the line for a malformed instruction.
    package static func parse(_ text: String, buildArgs: [String: String] = [:]) throws -> Dockerfile {
        let lines = logicalLines(text)
        var globalArgs: [String: String] = [:]
        var stageVars: [String: String] = [:]
        var workdir = "/"
        var copies: [Copy] = []
        var unsupported: [(Int, String, String)] = []
        var base: String?
        var inStage = false
        for (lineNo, raw) in lines {
            let trimmed = raw.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty else { continue }
            let (keyword, rest) = split(trimmed)
            switch keyword.uppercased() {
            case "FROM":
                // A new stage: only the last one's copies end up in the image.
                inStage = true
                copies.removeAll(); unsupported.removeAll()
                stageVars = [:]
                workdir = "/"
                base = substitute(rest.split(separator: " ").first.map(String.init) ?? rest, globalArgs)
            case "ARG":
                for decl in rest.split(separator: " ") {
                    let parts = decl.split(separator: "=", maxSplits: 1).map(String.init)
                    let name = parts[0]
                    let value = buildArgs[name] ?? (parts.count > 1 ? unquote(substitute(parts[1], inStage ? stageVars : globalArgs)) : (inStage ? globalArgs[name] : nil))
                    if inStage { if let value { stageVars[name] = value } } else if let value { globalArgs[name] = value }
                }
            case "ENV":
                for (k, v) in envPairs(rest) { stageVars[k] = unquote(substitute(v, stageVars)) }
            case "WORKDIR":
                let dir = unquote(substitute(rest, stageVars))
                workdir = DockerIgnore.goClean(dir.hasPrefix("/") ? dir : join(workdir, dir))
            case "COPY", "ADD":
                guard inStage else { continue }
                var (flags, args) = try arguments(rest, line: lineNo)
                args = args.map { substitute($0, stageVars) }
                guard args.count >= 2 else { throw ImprintError.badInput("Dockerfile line \(lineNo): \(keyword) needs a source and a destination") }
                if flags["from"] != nil {
                    unsupported.append((lineNo, trimmed, "COPY --from takes files from another stage or image, not the context"))
                    continue
                }
                var sources = Array(args.dropLast())
                let destRaw = args[args.count - 1]
                if keyword.uppercased() == "ADD" {
                    if sources.contains(where: { $0.contains("://") || $0.hasPrefix("git@") }) {
                        unsupported.append((lineNo, trimmed, "ADD of a URL or git source: not from the context"))
                        sources.removeAll { $0.contains("://") || $0.hasPrefix("git@") }
                    }
                    if sources.contains(where: isArchiveName) {
                        unsupported.append((lineNo, trimmed, "ADD of a local archive: the builder unpacks it"))
                        sources.removeAll(where: isArchiveName)
                    }
                    if sources.isEmpty { continue }
                }
                let joined = destRaw.hasPrefix("/") ? destRaw : join(workdir, destRaw)
                var dest = DockerIgnore.goClean(joined)
                if !dest.hasPrefix("/") { dest = "/" + dest }
                let namesDirectory = destRaw.hasSuffix("/") || destRaw == "." || destRaw.hasSuffix("/.") || destRaw == ".."
                if namesDirectory && !dest.hasSuffix("/") { dest += "/" }
                var c = Copy(line: lineNo, instruction: trimmed, command: keyword.uppercased(), sources: sources.map(cleanSource), destination: dest)
                if let m = flags["chmod"] {
                    guard let mode = UInt32(m, radix: 8), mode <= 0o7777 else {
                        throw ImprintError.badInput("Dockerfile line \(lineNo): --chmod=\(m) is not an octal mode")
                    }
                    c.chmod = mode
                }
                c.chown = flags["chown"]
                c.link = flags["link"] != nil
                c.parents = flags["parents"] != nil
                c.excludes = flags.multi["exclude"] ?? []
                copies.append(c)
            default:
                continue
            }
        }
        return Dockerfile(copies: copies, unsupported: unsupported.map { (line: $0.0, instruction: $0.1, reason: $0.2) }, base: base)
    }

    // MARK: Lexing

    /// Lines joined across continuations (the escape character at the end of a line, `\` or the `# escape=`
    /// directive's), comments dropped; each with the number of its first physical line.
    package static func logicalLines(_ text: String) -> [(Int, String)] {
        var escape: Character = "\\"
        var out: [(Int, String)] = []
        var current = ""
        var start = 0
        var directives = true
        for (i, physical) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = String(physical)
            if line.hasSuffix("\r") { line.removeLast() }
            let t = line.trimmingCharacters(in: .whitespaces)
            if directives, t.hasPrefix("#") {
                let d = t.dropFirst().trimmingCharacters(in: .whitespaces).lowercased()
                if d.hasPrefix("escape="), let c = d.dropFirst("escape=".count).trimmingCharacters(in: .whitespaces).first { escape = c }
                continue
            }
            directives = false
            if t.hasPrefix("#") { continue }   // a comment, also inside a continued instruction
            if current.isEmpty { start = i + 1 }
            if line.hasSuffix(String(escape)) {
                current += String(line.dropLast()) + " "
                continue
            }
            current += line
            if !current.trimmingCharacters(in: .whitespaces).isEmpty { out.append((start, current)) }
            current = ""
        }
        if !current.trimmingCharacters(in: .whitespaces).isEmpty { out.append((start, current)) }
        return out
    }

    package static func split(_ s: String) -> (String, String) {
        guard let sp = s.firstIndex(where: { $0 == " " || $0 == "\t" }) else { return (s, "") }
        return (String(s[..<sp]), s[sp...].trimmingCharacters(in: .whitespaces))
    }

    package struct Flags {
        package var single: [String: String] = [:]
        package var multi: [String: [String]] = [:]
        package subscript(_ k: String) -> String? { single[k] }
    }

    /// `--flag=value …` then the arguments: a JSON array or whitespace-separated words.
    package static func arguments(_ rest: String, line: Int) throws -> (Flags, [String]) {
        var flags = Flags()
        var s = Substring(rest)
        while s.hasPrefix("--") {
            let end = s.firstIndex(where: { $0 == " " || $0 == "\t" }) ?? s.endIndex
            let flag = s[s.index(s.startIndex, offsetBy: 2)..<end]
            let parts = flag.split(separator: "=", maxSplits: 1).map(String.init)
            let name = parts[0].lowercased()
            let value = parts.count > 1 ? parts[1] : "true"
            flags.single[name] = value
            flags.multi[name, default: []].append(value)
            s = s[end...].drop { $0 == " " || $0 == "\t" }
        }
        let body = s.trimmingCharacters(in: .whitespaces)
        if body.hasPrefix("[") {
            guard let data = body.data(using: .utf8), let arr = try? JSONSerialization.jsonObject(with: data) as? [String] else {
                throw ImprintError.badInput("Dockerfile line \(line): invalid JSON array \(body)")
            }
            return (flags, arr)
        }
        return (flags, body.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init))
    }

    package static func envPairs(_ rest: String) -> [(String, String)] {
        // `ENV key value` (one pair) or `ENV k1=v1 k2="v 2"`.
        let words = shellWords(rest)
        if let first = words.first, !first.contains("=") {
            return [(first, words.dropFirst().joined(separator: " "))]
        }
        return words.compactMap { w in
            let p = w.split(separator: "=", maxSplits: 1).map(String.init)
            return p.count == 2 ? (p[0], p[1]) : nil
        }
    }

    package static func shellWords(_ s: String) -> [String] {
        var out: [String] = []
        var cur = ""
        var quote: Character?
        for ch in s {
            if let q = quote {
                if ch == q { quote = nil } else { cur.append(ch) }
            } else if ch == "\"" || ch == "'" {
                quote = ch
            } else if ch == " " || ch == "\t" {
                if !cur.isEmpty { out.append(cur); cur = "" }
            } else {
                cur.append(ch)
            }
        }
        if !cur.isEmpty { out.append(cur) }
        return out
    }

    package static func unquote(_ s: String) -> String {
        if s.count >= 2, let f = s.first, let l = s.last, f == l, f == "\"" || f == "'" { return String(s.dropFirst().dropLast()) }
        return s
    }

    /// `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}` as the frontend substitutes them in COPY, ADD, WORKDIR.
    package static func substitute(_ s: String, _ vars: [String: String]) -> String {
        var out = ""
        var i = s.startIndex
        while i < s.endIndex {
            let c = s[i]
            if c == "\\", s.index(after: i) < s.endIndex, s[s.index(after: i)] == "$" {
                out.append("$"); i = s.index(i, offsetBy: 2); continue
            }
            guard c == "$" else { out.append(c); i = s.index(after: i); continue }
            let next = s.index(after: i)
            guard next < s.endIndex else { out.append(c); break }
            if s[next] == "{", let close = s[next...].firstIndex(of: "}") {
                let inner = String(s[s.index(after: next)..<close])
                if let r = inner.range(of: ":-") {
                    let name = String(inner[..<r.lowerBound])
                    let v = vars[name] ?? ""
                    out += v.isEmpty ? String(inner[r.upperBound...]) : v
                } else if let r = inner.range(of: ":+") {
                    let name = String(inner[..<r.lowerBound])
                    out += (vars[name] ?? "").isEmpty ? "" : String(inner[r.upperBound...])
                } else {
                    out += vars[inner] ?? ""
                }
                i = s.index(after: close)
                continue
            }
            var j = next
            while j < s.endIndex, s[j].isLetter || s[j].isNumber || s[j] == "_" { j = s.index(after: j) }
            if j == next { out.append(c); i = next; continue }
            out += vars[String(s[next..<j])] ?? ""
            i = j
        }
        return out
    }

    package static func join(_ dir: String, _ rel: String) -> String {
        let base = dir.hasSuffix("/") ? dir : dir + "/"
        return base + rel
    }

    package static func cleanSource(_ s: String) -> String {
        var p = s
        while p.hasPrefix("/") { p.removeFirst() }
        let cleaned = DockerIgnore.goClean(p.isEmpty ? "." : p)
        return cleaned
    }

    package static func isArchiveName(_ s: String) -> Bool {
        [".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst"].contains { s.lowercased().hasSuffix($0) }
    }
}
