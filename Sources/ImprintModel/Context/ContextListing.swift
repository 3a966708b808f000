import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The build context as the builder sees it, with sizes (`imprint ls`), and what the ignore file keeps out,
/// grouped by the rule that does it with file and byte counts ("why is my context 2 GB"). Nothing is hashed: the
/// walk decides every entry exactly as the fingerprint walk does, from names and lstat alone.
package struct ContextListing: Sendable {
    package struct Entry: Sendable {
        /// The context-relative path as bytes (names need not be UTF-8), and as text.
        package var rawPath: Bytes
        package var path: String { rawPath.lossyString }
        /// The type as the builder sends it (a socket: an empty file, for BuildKit).
        package var type: EntryType
        package var isDirectory: Bool { type == .directory }
        /// Regular-file bytes (0 for directories and other entries).
        package var size: UInt64
        package var sentEmpty: Bool
    }

    package struct ExcludedGroup: Sendable {
        /// The deciding rule (`file:line` and the pattern), or "imprint" for its own outputs.
        package var rule: ContextExplanation.Rule?
        package var files = 0
        package var bytes: UInt64 = 0
        /// The top-most excluded paths (a directory stands for everything below it).
        package var paths: [String] = []
    }

    package var entries: [Entry] = []
    package var excluded: [ExcludedGroup] = []
    package var ignoreFile: String?
    /// Where the legacy builder's walk ended on a pattern that fails (`LegacyContext`): nothing from here on is sent.
    package var cut: Bytes?

    package var sentFiles: Int { entries.filter { !$0.isDirectory }.count }
    package var sentDirectories: Int { entries.filter(\.isDirectory).count }
    package var sentBytes: UInt64 { entries.reduce(0) { $0 + ($1.sentEmpty ? 0 : $1.size) } }
    package var excludedFiles: Int { excluded.reduce(0) { $0 + $1.files } }
    package var excludedBytes: UInt64 { excluded.reduce(0) { $0 + $1.bytes } }

    /// Lists `context` under the ignore file the builder would use.
    package static func list(context: String, dockerfile: String? = nil, ignoreFile: String? = nil,
                            semantics: IgnoreSemantics = .buildkit) throws -> ContextListing {
        let (ignore, name) = try IgnoreFileLocator(context: context, dockerfile: dockerfile, ignoreFile: ignoreFile, semantics: semantics).load()
        return try list(context: context, ignore: ignore, ignoreFileName: name)
    }

    /// Lists `context` under `ignore` (read from the file named `ignoreFileName`).
    package static func list(context: String, ignore: DockerIgnore, ignoreFileName name: String?) throws -> ContextListing {
        var out = ContextListing()
        out.ignoreFile = name
        let checkOnOpen = ignore.semantics.checksAgainOnOpen && ignore.hasExceptions
        let legacy = LegacyContext.applies(ignore)
        if legacy { try LegacyContext.validate(context, ignore: ignore) }
        /// Set where the legacy builder's walk ends on a failing pattern: nothing after it is listed.
        var stopped = false
        var groups: [String: ExcludedGroup] = [:]
        var order: [String] = []
        func rule(_ i: Int?) -> ContextExplanation.Rule? {
            guard let i, i < ignore.patterns.count else { return nil }
            let p = ignore.patterns[i]
            return .init(p, file: name ?? ".dockerignore")
        }
        func exclude(_ rel: Bytes, decidedBy: Int?, files: Int, bytes: UInt64) {
            let r = rule(decidedBy)
            let key = r.map { "\($0.line)" } ?? "-"
            if groups[key] == nil { groups[key] = ExcludedGroup(rule: r); order.append(key) }
            groups[key]!.files += files
            groups[key]!.bytes += bytes
            if groups[key]!.paths.count < 1000 { groups[key]!.paths.append(rel.lossyString) }
        }
        /// Walks `dir` (context-relative `rel`); returns whether anything below was sent.
        @discardableResult
        func walk(_ abs: Bytes, _ rel: Bytes, parent: DockerIgnore.MatchInfo?) throws -> Bool {
            var anySent = false
            for (name, st) in try listDirectory(abs) {
                if stopped { break }
                let childRel = rel.isEmpty ? name : rel + [0x2F] + name
                let childAbs = abs + [0x2F] + name
                let isDir = (st.st_mode & S_IFMT) == S_IFDIR
                let d: DockerIgnore.Decision
                do { d = try ignore.decide(childRel, parent: parent) } catch where legacy { stopped = true; out.cut = childRel; break }
                if d.excluded {
                    if isDir && ignore.mustDescend(intoExcluded: childRel) && canOpenDirectory(childAbs) {
                        // Entered; sent only as the parent of what an exception re-includes.
                        let at = out.entries.count
                        let before = (groups, order)
                        if try walk(childAbs, childRel, parent: d.info) {
                            out.entries.insert(Entry(rawPath: childRel, type: .directory, size: 0, sentEmpty: false), at: at)
                            anySent = true
                        } else {
                            (groups, order) = before
                            let (f, b) = try subtreeSize(childAbs)
                            exclude(childRel, decidedBy: d.decidedBy, files: f, bytes: b)
                        }
                    } else {
                        let (f, b) = isDir ? try subtreeSize(childAbs) : (((st.st_mode & S_IFMT) == S_IFREG ? 1 : 0), UInt64(max(0, st.st_size)))
                        exclude(childRel, decidedBy: d.decidedBy, files: f, bytes: b)
                    }
                    continue
                }
                let type = EntryType(mode: st.st_mode)
                if type == .socket && !ignore.semantics.sendsSocketsEmpty { continue }  // only BuildKit sends sockets
                anySent = true
                if isDir {
                    out.entries.append(Entry(rawPath: childRel, type: .directory, size: 0, sentEmpty: false))
                    try walk(childAbs, childRel, parent: d.info)
                } else {
                    let size = type == .file ? UInt64(max(0, st.st_size)) : 0
                    // BuildKit's sender opens what it lists: a file its second check excludes, and a socket, arrive empty.
                    var empty = type == .socket
                    if type == .file && checkOnOpen { empty = try ignore.excludedOnOpen(childRel) }
                    out.entries.append(Entry(rawPath: childRel, type: type == .socket ? .file : type, size: size, sentEmpty: empty))
                }
            }
            return anySent
        }
        try walk(Array(context.utf8), [], parent: nil)
        out.excluded = order.compactMap { groups[$0] }.sorted { $0.bytes > $1.bytes }
        return out
    }

    /// The first path below the excluded directory `abs` (context-relative `relative`, its match results `info`)
    /// that the walk sends, in walk order; nil when nothing below is sent.
    package static func firstSent(below abs: Bytes, relative: Bytes, ignore: DockerIgnore, info: DockerIgnore.MatchInfo?) throws -> Bytes? {
        guard canOpenDirectory(abs) else { return nil }
        for (name, st) in try listDirectory(abs) {
            let childRel = relative + [0x2F] + name
            let d = try ignore.decide(childRel, parent: info)
            let isDir = (st.st_mode & S_IFMT) == S_IFDIR
            if d.excluded {
                if isDir && ignore.mustDescend(intoExcluded: childRel),
                   let below = try firstSent(below: abs + [0x2F] + name, relative: childRel, ignore: ignore, info: d.info) {
                    return below
                }
                continue
            }
            if EntryType(mode: st.st_mode) == .socket && !ignore.semantics.sendsSocketsEmpty { continue }
            return childRel
        }
        return nil
    }

    /// Whether a directory can be listed (BuildKit passes over excluded directories it cannot read).
    package static func canOpenDirectory(_ path: Bytes) -> Bool {
        guard let d = withCString(path, { opendir($0) }) else { return false }
        closedir(d)
        return true
    }

    /// Entries of a directory (a byte path: names need not be UTF-8), sorted by name, with their lstat.
    package static func listDirectory(_ path: Bytes) throws -> [(Bytes, stat)] {
        guard let d = withCString(path, { opendir($0) }) else { throw ImprintError.posix("open directory", path.lossyString) }
        defer { closedir(d) }
        var out: [(Bytes, stat)] = []
        while let e = readdir(d) {
            let name = Bytes(Syscall.entryName(e))
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            var st = stat()
            let full = path + [0x2F] + name
            guard withCString(full, { lstat($0, &st) }) == 0 else { throw ImprintError.posix("stat", full.lossyString) }
            out.append((name, st))
        }
        return out.sorted { $0.0.lexicographicallyPrecedes($1.0) }
    }

    package static func withCString<R>(_ path: Bytes, _ body: (UnsafePointer<CChar>) -> R) -> R {
        var z = path
        z.append(0)
        return z.withUnsafeBufferPointer { buf in
            body(UnsafeRawPointer(buf.baseAddress!).assumingMemoryBound(to: CChar.self))
        }
    }

    /// Regular files and their bytes below a directory.
    package static func subtreeSize(_ path: Bytes) throws -> (Int, UInt64) {
        var files = 0
        var bytes: UInt64 = 0
        for (name, st) in try listDirectory(path) {
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                let (f, b) = try subtreeSize(path + [0x2F] + name)
                files += f; bytes += b
            case S_IFREG:
                files += 1; bytes += UInt64(max(0, st.st_size))
            default: break
            }
        }
        return (files, bytes)
    }
}

extension ContextListing {
    package func text(tree: Bool, excluded showExcluded: Bool) -> String {
        var out = ""
        for e in entries {
            let size = e.isDirectory ? "" : formatBytes(e.size)
            let name: String
            if tree {
                let depth = e.path.split(separator: "/").count - 1
                name = String(repeating: "  ", count: depth) + (e.path.split(separator: "/").last.map(String.init) ?? e.path)
            } else {
                name = e.path
            }
            let suffix = e.type == .directory ? "/" : e.type == .symlink ? "@" : e.type == .fifo ? "|" : ""
            out += "\(size.padding(toLength: 10, withPad: " ", startingAt: 0))  \(name)\(suffix)\(e.sentEmpty ? "  (sent empty)" : "")\n"
        }
        out += "sent: \(sentFiles) files, \(sentDirectories) directories, \(formatBytes(sentBytes))\(ignoreFile.map { " (ignore file \($0))" } ?? " (no ignore file)")\n"
        if showExcluded {
            out += "excluded: \(excludedFiles) files, \(formatBytes(excludedBytes))\n"
            for g in excluded {
                let r = g.rule.map { "\($0.file):\($0.line) `\($0.pattern)`" } ?? "(no rule)"
                let sample = g.paths.prefix(3).joined(separator: ", ") + (g.paths.count > 3 ? ", …" : "")
                out += "  \(formatBytes(g.bytes).padding(toLength: 10, withPad: " ", startingAt: 0))  \(g.files) files  \(r)  \(sample)\n"
            }
        }
        return out
    }

    /// `imprint ls --format json` (schemas/ls.schema.json).
    package func json() -> [UInt8] {
        var w = JSONWriter(pretty: true, reserve: entries.count * 60)
        w.beginObject()
        if let f = ignoreFile { w.string("ignoreFile", f) } else { w.null("ignoreFile") }
        w.beginObject("sent"); w.int("files", sentFiles); w.int("directories", sentDirectories); w.int("bytes", sentBytes); w.endObject()
        w.beginArray("entries")
        for e in entries {
            w.compact(nil) { o in
                o.beginObject(); o.string("path", e.path); o.string("type", e.type.rawValue); o.int("size", e.size)
                if e.sentEmpty { o.bool("sentEmpty", true) }
                o.endObject()
            }
        }
        w.endArray()
        w.beginObject("excluded")
        w.int("files", excludedFiles); w.int("bytes", excludedBytes)
        w.beginArray("rules")
        for g in excluded {
            w.beginObject()
            if let r = g.rule { w.string("file", r.file); w.int("line", r.line); w.string("pattern", r.pattern) }
            w.int("files", g.files); w.int("bytes", g.bytes)
            w.beginArray("paths"); for p in g.paths { w.string(nil, p) }; w.endArray()
            w.endObject()
        }
        w.endArray()
        w.endObject()
        w.endObject()
        w.end()
        return w.bytes
    }
}

extension EntryType {
    /// The type of an `lstat` mode.
    package init(mode: mode_t) {
        switch mode & S_IFMT {
        case S_IFDIR: self = .directory
        case S_IFLNK: self = .symlink
        case S_IFIFO: self = .fifo
        case S_IFCHR: self = .charDevice
        case S_IFBLK: self = .blockDevice
        case S_IFSOCK: self = .socket
        default: self = .file
        }
    }
}
