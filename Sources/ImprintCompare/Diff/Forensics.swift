import Foundation

/// What changed inside a modified file: a unified diff of a text file, or for a binary one its sizes, digests and
/// the first byte that differs.
package struct ContentDiff: Sendable {
    package var path: String
    package enum Kind: String, Sendable { case text, binary, unavailable }
    package var kind: Kind
    /// The unified diff (`--- a/PATH`, `+++ b/PATH`, hunks with three lines of context), for text.
    package var unified: String?
    /// Lines added and removed, for text.
    package var added = 0
    package var removed = 0
    /// For binary content: the offset of the first byte that differs (within what was read).
    package var firstDifference: Int?
    /// Why there is no unified diff (too large, not readable again…), or that it covers only the first bytes.
    package var note: String?
}

/// Line diffs by Myers' O((N+M)D) algorithm, with hunks as `diff -u` prints them.
package enum UnifiedDiff {
    enum Op { case same(Int, Int), delete(Int), insert(Int) }

    /// The edit script turning `a` into `b`, or nil when more than `maxEdits` lines differ. Each frontier is kept
    /// for the walk back, only its live diagonals (memory grows with the square of the edits, hence the bound).
    static func script(_ a: [Substring], _ b: [Substring], maxEdits: Int) -> [Op]? {
        let n = a.count, m = b.count, maxD = min(n + m, maxEdits)
        let offset = maxD + 1
        var v = [Int](repeating: 0, count: 2 * maxD + 3)
        var trace: [[Int]] = []
        var last = -1
        outer: for d in 0...maxD {
            trace.append(Array(v[(offset - d - 1)...(offset + d + 1)]))
            for k in stride(from: -d, through: d, by: 2) {
                var x = (k == -d || (k != d && v[offset + k - 1] < v[offset + k + 1])) ? v[offset + k + 1] : v[offset + k - 1] + 1
                var y = x - k
                while x < n && y < m && a[x] == b[y] { x += 1; y += 1 }
                v[offset + k] = x
                if x >= n && y >= m { last = d; break outer }
            }
        }
        guard last >= 0 else { return nil }
        var ops: [Op] = []
        var x = n, y = m
        for d in stride(from: last, through: 0, by: -1) {
            let frame = trace[d]
            func at(_ k: Int) -> Int { frame[k + d + 1] }
            let k = x - y
            let prevK = (k == -d || (k != d && at(k - 1) < at(k + 1))) ? k + 1 : k - 1
            let prevX = at(prevK), prevY = prevX - prevK
            while x > prevX && y > prevY { x -= 1; y -= 1; ops.append(.same(x, y)) }
            if d > 0 {
                if x == prevX { y -= 1; ops.append(.insert(y)) } else { x -= 1; ops.append(.delete(x)) }
            }
        }
        return ops.reversed()
    }

    /// `diff -u` of two texts, or nil when they differ in more than `maxEdits` lines.
    package static func make(_ a: String, _ b: String, pathA: String, pathB: String, context: Int = 3,
                            maxEdits: Int = 1000) -> (text: String, added: Int, removed: Int)? {
        let la = lines(a), lb = lines(b)
        guard let ops = script(la, lb, maxEdits: maxEdits) else { return nil }
        // The line of each side each op starts at.
        var pos: [(a: Int, b: Int)] = []
        var ai = 0, bi = 0
        for op in ops {
            pos.append((ai, bi))
            switch op { case .same: ai += 1; bi += 1; case .delete: ai += 1; case .insert: bi += 1 }
        }
        var out = "--- \(pathA)\n+++ \(pathB)\n"
        var added = 0, removed = 0
        let changed = ops.indices.filter { if case .same = ops[$0] { return false } else { return true } }
        var i = 0
        while i < changed.count {
            var j = i
            while j + 1 < changed.count && changed[j + 1] - changed[j] <= 2 * context + 1 { j += 1 }
            let start = max(0, changed[i] - context), end = min(ops.count - 1, changed[j] + context)
            var aLen = 0, bLen = 0
            var body = ""
            for op in ops[start...end] {
                switch op {
                case .same(let x, _): aLen += 1; bLen += 1; body += " " + la[x] + "\n"
                case .delete(let x): aLen += 1; removed += 1; body += "-" + la[x] + "\n"
                case .insert(let y): bLen += 1; added += 1; body += "+" + lb[y] + "\n"
                }
            }
            out += "@@ -\(range(pos[start].a, aLen)) +\(range(pos[start].b, bLen)) @@\n" + body
            i = j + 1
        }
        if !a.isEmpty && a.utf8.last != 10 { out += "\\ No newline at end of file (a)\n" }
        if !b.isEmpty && b.utf8.last != 10 { out += "\\ No newline at end of file (b)\n" }
        return (out, added, removed)
    }

    static func range(_ start: Int, _ len: Int) -> String {
        len == 1 ? "\(start + 1)" : "\(len == 0 ? start : start + 1),\(len)"
    }

    /// Lines split at each LF byte, as diff does: a CR before it stays part of the line (in Swift "\r\n" is one
    /// Character, so splitting the String would not split CRLF text at all).
    static func lines(_ s: String) -> [Substring] {
        var l = s.utf8.split(separator: 10, omittingEmptySubsequences: false).map { Substring($0) }
        if l.last == "" { l.removeLast() }
        return l
    }

    /// Text: valid UTF-8 without NUL bytes.
    package static func isText(_ bytes: [UInt8]) -> Bool {
        !bytes.contains(0) && String(validating: bytes, as: UTF8.self) != nil
    }

    /// The content diff of one modified file from what was read of both sides.
    package static func compare(path: String, a: SourceContent.File?, b: SourceContent.File?) -> ContentDiff {
        guard let a, let b else {
            return ContentDiff(path: path, kind: .unavailable, note: "the content of one side cannot be read again (standard input, a manifest or a history record)")
        }
        if isText(a.bytes) && isText(b.bytes) {
            let partial = !(a.complete && b.complete)
            if let d = make(String(decoding: a.bytes, as: UTF8.self), String(decoding: b.bytes, as: UTF8.self), pathA: "a" + path, pathB: "b" + path) {
                return ContentDiff(path: path, kind: .text, unified: d.text, added: d.added, removed: d.removed,
                                   note: partial ? "only the first \(max(a.bytes.count, b.bytes.count)) bytes compared (--max-diff-bytes)" : nil)
            }
            return ContentDiff(path: path, kind: .text, note: "more than 1000 lines differ: no line diff")
        }
        let n = min(a.bytes.count, b.bytes.count)
        var first: Int?
        for i in 0..<n where a.bytes[i] != b.bytes[i] { first = i; break }
        if first == nil && a.bytes.count != b.bytes.count { first = n }
        return ContentDiff(path: path, kind: .binary, firstDifference: first,
                           note: first == nil ? "the first \(n) bytes are equal (--max-diff-bytes)" : nil)
    }
}

/// An installed package as its package manager's own database records it.
package struct InstalledPackage: Sendable, Hashable {
    package enum Ecosystem: String, Sendable, CaseIterable { case deb, apk, python, npm }
    package var ecosystem: Ecosystem
    package var name: String
    package var version: String
    /// Where its record is (the dist-info directory, package.json, or the database file).
    package var location: String
}

/// A package added, removed or at another version between the two sides.
package struct PackageChange: Sendable {
    package enum Kind: String, Sendable { case added, removed, changed }
    package var kind: Kind
    package var ecosystem: InstalledPackage.Ecosystem
    package var name: String
    package var a: String?
    package var b: String?
    package var location: String
}

/// A file of an installed Python package whose bytes are not what the package's RECORD says.
package struct RecordMismatch: Sendable {
    package var side: String
    package var package: String
    package var path: String
    package var expected: String
    /// The file's SHA-256, or nil when it is missing.
    package var actual: String?
}

/// Reads the package databases of a tree: Debian's dpkg status, Alpine's apk database, Python's `*.dist-info`
/// (METADATA for name and version, RECORD for the files it installed) and npm's `node_modules/**/package.json`.
package enum PackageInventory {
    /// The files to read of a tree: package databases and package metadata.
    package static func databaseFiles(_ tree: Tree) -> Set<Bytes> {
        var out: Set<Bytes> = []
        tree.walk { path, node in
            guard node.type == .file else { return }
            let p = path.lossyString
            if p == "var/lib/dpkg/status" || p == "lib/apk/db/installed" { out.insert(path); return }
            let comps = p.split(separator: "/")
            guard comps.count >= 2 else { return }
            let parent = comps[comps.count - 2], name = comps[comps.count - 1]
            if parent.hasSuffix(".dist-info") && (name == "METADATA" || name == "RECORD") { out.insert(path); return }
            if name == "package.json", comps.count >= 3 {
                let nm = comps[comps.count - 3] == "node_modules" || (comps.count >= 4 && comps[comps.count - 4] == "node_modules" && comps[comps.count - 3].hasPrefix("@"))
                if nm { out.insert(path) }
            }
        }
        return out
    }

    /// The packages recorded in `files` (as read by `databaseFiles`).
    package static func packages(_ files: [Bytes: SourceContent.File]) -> [InstalledPackage] {
        var out: [InstalledPackage] = []
        for (path, file) in files {
            let p = path.lossyString
            let text = String(decoding: file.bytes, as: UTF8.self)
            if p == "var/lib/dpkg/status" {
                out += stanzas(text).compactMap { s in
                    guard let name = s["Package"], let version = s["Version"], s["Status"]?.hasSuffix(" installed") ?? true else { return nil }
                    let arch = s["Architecture"].map { ":" + $0 } ?? ""
                    return InstalledPackage(ecosystem: .deb, name: name + (arch == ":all" ? "" : arch), version: version, location: "/" + p)
                }
            } else if p == "lib/apk/db/installed" {
                out += stanzas(text).compactMap { s in
                    guard let name = s["P"], let version = s["V"] else { return nil }
                    return InstalledPackage(ecosystem: .apk, name: name, version: version, location: "/" + p)
                }
            } else if p.hasSuffix(".dist-info/METADATA") {
                var name: String?, version: String?
                // The header ends at the first empty line; the description that follows may hold anything.
                for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
                    if line.isEmpty { break }
                    if name == nil, line.hasPrefix("Name: ") { name = String(line.dropFirst(6)).trimmingCharacters(in: .whitespaces) }
                    if version == nil, line.hasPrefix("Version: ") { version = String(line.dropFirst(9)).trimmingCharacters(in: .whitespaces) }
                }
                if let name, let version {
                    out.append(InstalledPackage(ecosystem: .python, name: normalisePython(name), version: version,
                                                location: "/" + String(p.dropLast("/METADATA".count))))
                }
            } else if p.hasSuffix("package.json"),
                      let obj = try? JSONSerialization.jsonObject(with: Data(file.bytes)) as? [String: Any],
                      let name = obj["name"] as? String, let version = obj["version"] as? String {
                out.append(InstalledPackage(ecosystem: .npm, name: name, version: version, location: "/" + p))
            }
        }
        return out.sorted { ($0.ecosystem.rawValue, $0.name, $0.location) < ($1.ecosystem.rawValue, $1.name, $1.location) }
    }

    /// PEP 503 normalised name.
    static func normalisePython(_ name: String) -> String {
        name.lowercased().replacingOccurrences(of: "_", with: "-").replacingOccurrences(of: ".", with: "-")
    }

    /// RFC 822-style stanzas separated by blank lines (dpkg status, apk's database); continuation lines dropped.
    static func stanzas(_ text: String) -> [[String: String]] {
        var out: [[String: String]] = []
        var cur: [String: String] = [:]
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            if line.isEmpty {
                if !cur.isEmpty { out.append(cur); cur = [:] }
                continue
            }
            if line.first == " " || line.first == "\t" { continue }
            if let colon = line.firstIndex(of: ":") {
                let key = String(line[..<colon])
                if cur[key] == nil { cur[key] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces) }
            }
        }
        if !cur.isEmpty { out.append(cur) }
        return out
    }

    /// Added, removed and changed packages, keyed by ecosystem, name and (for Python and npm) the directory they
    /// are installed in (two environments may hold one package at two versions).
    package static func changes(_ a: [InstalledPackage], _ b: [InstalledPackage]) -> [PackageChange] {
        func key(_ p: InstalledPackage) -> String {
            switch p.ecosystem {
            case .deb, .apk: return "\(p.ecosystem.rawValue)\u{0}\(p.name)"
            case .python: return "\(p.ecosystem.rawValue)\u{0}\(p.name)\u{0}\((p.location as NSString).deletingLastPathComponent)"
            case .npm:
                // node_modules/<name>/package.json: the directory that holds node_modules.
                let dir = (p.location as NSString).deletingLastPathComponent
                let holder = dir.components(separatedBy: "/node_modules/").dropLast().joined(separator: "/node_modules/")
                return "\(p.ecosystem.rawValue)\u{0}\(p.name)\u{0}\(holder)"
            }
        }
        var ma: [String: InstalledPackage] = [:], mb: [String: InstalledPackage] = [:]
        for p in a { ma[key(p)] = p }
        for p in b { mb[key(p)] = p }
        var out: [PackageChange] = []
        for k in Set(ma.keys).union(mb.keys).sorted() {
            switch (ma[k], mb[k]) {
            case let (x?, y?) where x.version != y.version:
                out.append(PackageChange(kind: .changed, ecosystem: x.ecosystem, name: x.name, a: x.version, b: y.version, location: y.location))
            case let (x?, nil):
                out.append(PackageChange(kind: .removed, ecosystem: x.ecosystem, name: x.name, a: x.version, b: nil, location: x.location))
            case let (nil, y?):
                out.append(PackageChange(kind: .added, ecosystem: y.ecosystem, name: y.name, a: nil, b: y.version, location: y.location))
            default: break
            }
        }
        return out
    }

    /// Files of installed Python packages whose SHA-256 is not the one in the package's RECORD: installed files
    /// edited (or replaced) after `pip install`.
    package static func recordMismatches(_ tree: Tree, files: [Bytes: SourceContent.File], side: String) -> [RecordMismatch] {
        var out: [RecordMismatch] = []
        for (path, file) in files where path.lossyString.hasSuffix(".dist-info/RECORD") {
            let p = path.lossyString
            let distInfo = (p as NSString).deletingLastPathComponent
            let sitePackages = (distInfo as NSString).deletingLastPathComponent
            let package = ((distInfo as NSString).lastPathComponent as NSString).deletingPathExtension
            // pip writes RECORD with Python's csv module: lines end in \r\n (one Character in Swift).
            for line in String(decoding: file.bytes, as: UTF8.self).split(whereSeparator: \.isNewline) {
                let fields = csvFields(line)
                guard fields.count >= 2, fields[1].hasPrefix("sha256="), let expected = base64URLHex(String(fields[1].dropFirst(7))) else { continue }
                let rel = fields[0]
                if rel.hasPrefix("/") || rel.contains("..") { continue }
                let full = sitePackages.isEmpty ? rel : sitePackages + "/" + rel
                let node = tree.node(at: Array(full.utf8))
                        if node?.type == .file && node?.digest.hex == expected { continue }
                out.append(RecordMismatch(side: side, package: package, path: "/" + full, expected: expected,
                                          actual: node?.type == .file ? node?.digest.hex : nil))
            }
        }
        return out.sorted { $0.path < $1.path }
    }

    /// Fields of one RECORD line (CSV: a quoted field may hold commas).
    static func csvFields(_ line: Substring) -> [String] {
        var out: [String] = [], cur = "", quoted = false
        var it = line.makeIterator()
        while let c = it.next() {
            if c == "\"" { quoted.toggle(); continue }
            if c == "," && !quoted { out.append(cur); cur = ""; continue }
            cur.append(c)
        }
        out.append(cur)
        return out
    }

    /// RECORD's urlsafe base64 without padding, as hex.
    static func base64URLHex(_ s: String) -> String? {
        var b = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b.count % 4 != 0 { b += "=" }
        guard let d = Data(base64Encoded: b), d.count == 32 else { return nil }
        return d.map { String(format: "%02x", $0) }.joined()
    }
}

/// The disassembly of two `.pyc` files by a CPython (`dis`, constants and names of every code object), diffed: a
/// stale pyc shows which functions and constants differ from the current one.
package enum BytecodeDisassembly {
    static let script = #"""
    import dis, importlib.util, io, marshal, sys
    for path in sys.argv[1:]:
        data = open(path, "rb").read()
        if data[:4] != importlib.util.MAGIC_NUMBER:
            sys.stdout.write("\0MAGIC %s\n" % data[:4].hex()); continue
        out = io.StringIO()
        def walk(code, depth=0):
            out.write("== %s (line %d)\n" % (code.co_qualname if hasattr(code, "co_qualname") else code.co_name, code.co_firstlineno))
            out.write("consts: %r\n" % [c for c in code.co_consts if not hasattr(c, "co_code")])
            out.write("names: %r\n" % (code.co_names,))
            for ins in dis.get_instructions(code):
                out.write("  %s %s\n" % (ins.opname, "" if ins.arg is None or hasattr(ins.argval, "co_code") else repr(ins.argval)))
            for c in code.co_consts:
                if hasattr(c, "co_code"): walk(c, depth + 1)
        walk(marshal.loads(data[16:]))
        sys.stdout.write(out.getvalue() + "\0\n")
    """#

    /// The diff of both sides' disassembly, or nil when the interpreter cannot read them (another magic number,
    /// not a pyc, no interpreter).
    package static func diff(path: String, a: [UInt8], b: [UInt8], python: String) -> ContentDiff? {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imprint-dis-\(UUID().uuidString)").path
        guard (try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)) != nil else { return nil }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard FileManager.default.createFile(atPath: dir + "/a.pyc", contents: Data(a)),
              FileManager.default.createFile(atPath: dir + "/b.pyc", contents: Data(b)) else { return nil }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [python, "-I", "-c", script, dir + "/a.pyc", dir + "/b.pyc"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let parts = String(decoding: data, as: UTF8.self).components(separatedBy: "\0\n")
        guard p.terminationStatus == 0, parts.count >= 3, !parts[0].hasPrefix("\0MAGIC"), !parts[1].hasPrefix("\0MAGIC"),
              let d = UnifiedDiff.make(parts[0], parts[1], pathA: "a" + path + " (disassembly)", pathB: "b" + path + " (disassembly)") else { return nil }
        return ContentDiff(path: path, kind: .text, unified: d.text, added: d.added, removed: d.removed,
                           note: "the bytecode's disassembly by \(python)")
    }
}
