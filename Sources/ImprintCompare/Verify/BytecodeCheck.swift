#if canImport(Glibc)
import Glibc
#endif

/// One problem with compiled Python bytecode in a tree: which pyc, what class of problem, and both sides of the
/// comparison (what the pyc header says, what the source is).
///
/// Severity says whether old code can run: `error` only when it can (a stale unchecked-hash pyc, a timestamp pyc
/// proved not to be its source's compilation, bytecode imported without a source: orphan sourceless, invalid
/// sourceless); `warning` for pycs CPython checks and ignores when stale (stale timestamp and checked-hash pycs: it
/// recompiles the source) and for risks that do not change what runs today (unchecked-hash, legacy pyc shadowed by
/// a source, mixed versions, invalid or unverifiable cache pycs); `info` for leftovers CPython never looks at
/// (orphan cache pycs). A stale pyc for another Python than the one given as `BytecodeChecker.python` is a
/// `warning`: that interpreter never loads it.
package struct BytecodeFinding: Sendable, Equatable, CustomStringConvertible {
    /// The class of a finding. The raw value is the name used in reports and JSON.
    package enum Kind: String, Sendable, CaseIterable, Codable {
        /// A timestamp pyc whose recorded source mtime or size differs from the `.py`. CPython ignores it and
        /// compiles the source (rewriting the pyc when it can, otherwise again on every start).
        case staleTimestampPyc = "stale-timestamp-pyc"
        /// A checked-hash pyc whose source hash differs from the `.py`'s. CPython ignores it and compiles the source.
        case staleCheckedHashPyc = "stale-checked-hash-pyc"
        /// An unchecked-hash pyc that matches its source today; CPython never compares it, so a later edit of the
        /// `.py` alone would not take effect.
        case uncheckedHashPyc = "unchecked-hash-pyc"
        /// An unchecked-hash pyc whose source hash differs from the `.py`'s: CPython runs the OLD bytecode.
        case staleUncheckedHashPyc = "stale-unchecked-hash-pyc"
        /// A legacy `mod.pyc` beside `mod.py` (or shadowed by a package or extension module): not imported today.
        case sourcelessPyc = "sourceless-pyc"
        /// A legacy `mod.pyc` with no `mod.py`: CPython imports the bytecode, whatever it contains.
        case orphanSourcelessPyc = "orphan-sourceless-pyc"
        /// A `__pycache__` pyc whose `.py` is gone (or whose name CPython never looks up): ignored, a leftover.
        case orphanCachePyc = "orphan-cache-pyc"
        /// A header CPython rejects: bad magic, short file, unknown flag bits, or a magic that does not belong to
        /// the version in the file's cache tag.
        case invalidPyc = "invalid-pyc"
        /// Bytecode for another Python version than the one expected (given, or the majority of the tree's pycs).
        case mixedPythonVersions = "mixed-python-versions"
        /// A timestamp pyc whose header matches but whose freshness cannot be proved (strict mode, or the
        /// source's mtime is not recorded).
        case unverifiableTimestampPyc = "unverifiable-timestamp-pyc"
        /// A checked-hash pyc whose source content was not available to hash.
        case unverifiableHashPyc = "unverifiable-hash-pyc"
        /// A `__pycache__` pyc whose header was neither captured on its node nor readable through `content`.
        case unreadablePyc = "unreadable-pyc"
        /// A timestamp pyc whose header matches its source but whose bytecode is not that source compiled (proved
        /// by compiling it): CPython runs the OLD code.
        case staleCodePyc = "stale-code-pyc"
    }

    package enum Severity: String, Sendable, Comparable, CaseIterable, Codable {
        case info, warning, error

        private var rank: Int { self == .info ? 0 : self == .warning ? 1 : 2 }
        package static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
    }

    package var kind: Kind
    package var severity: Severity
    /// The pyc's path in the tree.
    package var path: Bytes
    /// The `.py` the pyc belongs to (whether or not it exists), nil when the name maps to no module.
    package var sourcePath: Bytes?
    /// One sentence for a person: what is wrong and what CPython does about it.
    package var detail: String
    /// What the pyc says (`PycHeader.summary`, or why the header could not be read).
    package var pycSide: String?
    /// What the source is (`mod.py: mtime 1700000000, size 14`, `mod.py: missing`).
    package var sourceSide: String?
    /// The parsed header, when it parsed.
    package var header: PycHeader?
    /// True when CPython importing the module would run this pyc's bytecode although it does not provably come
    /// from the current source (stale unchecked-hash pyc, orphan sourceless pyc).
    package var runsStaleCode: Bool = false

    package var description: String {
        var s = "\(severity.rawValue): \(kind.rawValue) \(path.lossyString): \(detail)"
        if let pycSide { s += " [pyc: \(pycSide)]" }
        if let sourceSide { s += " [source: \(sourceSide)]" }
        return s
    }
}

/// Decides, file by file, whether the compiled Python bytecode in a tree matches its source — the way CPython's
/// importlib decides (PEP 552; `SourceLoader.get_code`, `SourcelessFileLoader`, `FileFinder`).
///
/// Inputs per file, so that every source of trees can feed it:
/// - each `.pyc`: its first 16 bytes, from `TreeNode.pycHeader` or else from `content`;
/// - each `.py`: size and mtime from its node; for hash-based pycs its content hash, from `sourceHashes` (a tar
///   stream computes them in passing with `PycSourceHasher`) or else by hashing `content`.
///
/// Limitation (timestamp pycs): CPython trusts a timestamp pyc whenever the recorded mtime (whole seconds) and
/// size equal the source's. An edit that keeps the size and lands in the same second — or any edit followed by
/// restoring the mtime (`touch -d`, `os.utime`, tar extraction, `COPY` preserving mtimes) — leaves the old
/// bytecode running, and neither the header nor the source's metadata can show it: only recompiling could.
/// imprint therefore never calls a timestamp pyc *fresh*, only *not stale*; with `strictTimestamps` every
/// matching timestamp pyc is reported as `unverifiable-timestamp-pyc`. Checked-hash pycs
/// (`py_compile --invalidation-mode checked-hash`, the default when `SOURCE_DATE_EPOCH` is set) do not have this
/// gap, and comparing a deployed tree against its build manifest catches any change of the `.py` itself.
package struct BytecodeChecker {
    /// Reads a file of the tree by its tree-relative path; nil when it cannot be read (absent, not a file).
    package typealias ContentReader = (Bytes) throws -> [UInt8]?

    /// Reads file content when a node carries no pre-captured `pycHeader` / source hash.
    package var content: ContentReader?
    /// Pre-computed source hashes: `.py` path → (pyc magic word → hash), from `PycSourceHasher`.
    package var sourceHashes: [Bytes: [UInt32: UInt64]]
    /// The Python the tree is meant to run; nil to take the version most of its pycs were compiled for.
    package var python: PythonVersion?
    /// Report every timestamp pyc whose header matches as `unverifiable-timestamp-pyc` (warning).
    package var strictTimestamps: Bool

    package init(content: ContentReader? = nil, sourceHashes: [Bytes: [UInt32: UInt64]] = [:],
                python: PythonVersion? = nil, strictTimestamps: Bool = false) {
        self.content = content
        self.sourceHashes = sourceHashes
        self.python = python
        self.strictTimestamps = strictTimestamps
    }

    /// Checks every `.pyc` in `tree`. Findings come in path order; a pyc may have more than one.
    package static func check(tree: Tree, content: ContentReader?, python: PythonVersion? = nil) -> [BytecodeFinding] {
        BytecodeChecker(content: content, python: python).check(tree)
    }

    /// A `ContentReader` for a tree walked from the directory `root` (follows symlinks, as CPython does).
    package static func directoryReader(root: String) -> ContentReader {
        let base = root.hasSuffix("/") ? String(root.dropLast()) : root
        return { path in try FileBytes.read(base + "/" + path.lossyString) }
    }

    /// Checks every `.pyc` in `tree`.
    package func check(_ tree: Tree) -> [BytecodeFinding] {
        var pycs: [(path: Bytes, node: TreeNode)] = []
        tree.walk { path, node in
            guard let name = path.pathComponents.last, name.count > Self.pycSuffix.count,
                  name.suffix(Self.pycSuffix.count).elementsEqual(Self.pycSuffix) else { return }
            if node.type == .file || node.type == .symlink { pycs.append((path, node)) }
        }
        var state = State(checker: self, tree: tree)
        let headers = pycs.map { state.header(path: $0.path, node: $0.node) }
        let target = targetVersion(headers.compactMap { try? $0.get() })
        var findings: [BytecodeFinding] = []
        for (i, pyc) in pycs.enumerated() {
            state.examine(path: pyc.path, header: headers[i], target: target, into: &findings)
        }
        return findings
    }

    // MARK: - Internals

    package static let pycSuffix = Array(".pyc".utf8)
    package static let pySuffix = Array(".py".utf8)

    /// What the pycs are compared against for `mixed-python-versions`.
    package struct Target {
        package var key: String
        package var explicit: Bool
    }

    package static func versionKey(_ h: PycHeader) -> String {
        h.pythonVersion.map { "Python \($0)" } ?? "magic \(h.magicNumber)"
    }

    private func targetVersion(_ headers: [PycHeader]) -> Target? {
        if let python { return Target(key: "Python \(python)", explicit: true) }
        var counts: [String: (n: Int, order: Int)] = [:]
        for h in headers {
            let k = Self.versionKey(h)
            counts[k, default: (0, Int(h.magicNumber))].n += 1
        }
        // Majority; on a tie the newest magic wins (deterministic).
        guard let best = counts.max(by: { ($0.value.n, $0.value.order) < ($1.value.n, $1.value.order) }) else { return nil }
        return Target(key: best.key, explicit: false)
    }

    private struct State {
        package let checker: BytecodeChecker
        package let tree: Tree
        package var hashCache: [Bytes: [UInt32: UInt64]] = [:]
        package var contentErrors: [Bytes: String] = [:]

        package init(checker: BytecodeChecker, tree: Tree) {
            self.checker = checker
            self.tree = tree
        }

        /// The node at `path` after following symlinks inside the tree (final component only, ≤ 16 hops).
        package func resolve(_ path: Bytes) -> (path: Bytes, node: TreeNode)? {
            var p = path
            for _ in 0..<16 {
                guard let n = tree.node(at: p) else { return nil }
                guard n.type == .symlink, let target = n.target else { return (p, n) }
                if target.first == UInt8(ascii: "/") {
                    p = normalize(target)
                } else {
                    p = normalize(Array(p.pathComponents.dropLast()).joinedPath.appendingPath(target))
                }
            }
            return nil
        }

        private func normalize(_ path: Bytes) -> Bytes {
            var out: [Bytes] = []
            for c in path.pathComponents {
                if c == [0x2E] { continue }
                if c == [0x2E, 0x2E] { _ = out.popLast(); continue }
                out.append(c)
            }
            return out.joinedPath
        }

        package mutating func read(_ path: Bytes) -> [UInt8]? {
            guard let reader = checker.content else { return nil }
            do {
                return try reader(path)
            } catch {
                contentErrors[path] = "\(error)"
                return nil
            }
        }

        package mutating func header(path: Bytes, node: TreeNode) -> Result<PycHeader, ImprintError> {
            var bytes = node.pycHeader
            if bytes == nil, let r = resolve(path), r.node.type == .file { bytes = r.node.pycHeader ?? read(r.path) }
            guard let bytes else {
                let why = contentErrors[path].map { "cannot read: \($0)" } ?? "header not captured and no content reader"
                return .failure(ImprintError(.notFound, why))
            }
            do { return .success(try PycHeader.parse(bytes)) } catch let e as ImprintError {
                return .failure(e)
            } catch {
                return .failure(ImprintError(.badInput, "\(error)"))
            }
        }

        /// The source hash of the `.py` at `path` keyed with `magicWord`, or nil with the reason.
        package mutating func sourceHash(_ path: Bytes, resolved: Bytes, magicWord: UInt32) -> (UInt64?, String) {
            for p in [path, resolved] {
                if let h = checker.sourceHashes[p]?[magicWord] ?? hashCache[p]?[magicWord] { return (h, "") }
            }
            guard checker.content != nil else { return (nil, "source content not available") }
            guard let data = read(resolved) else {
                return (nil, contentErrors[resolved].map { "cannot read source: \($0)" } ?? "source content not available")
            }
            let h = PycSourceHash.hash(data, magic: magicWord)
            hashCache[resolved, default: [:]][magicWord] = h
            return (h, "")
        }

        package func sourceSummary(_ path: Bytes, _ node: TreeNode) -> String {
            "\(path.lossyString): mtime \(node.mtime.map(String.init) ?? "not recorded"), size \(node.size)"
        }

        /// The findings for one pyc.
        package mutating func examine(path: Bytes, header result: Result<PycHeader, ImprintError>, target: Target?,
                              into findings: inout [BytecodeFinding]) {
            let comps = path.pathComponents
            let name = comps.last ?? []
            let dir = Array(comps.dropLast())
            let header = try? result.get()
            let pycSide: String
            switch result {
            case .success(let h): pycSide = h.summary
            case .failure(let e): pycSide = e.message
            }
            // Does this pyc belong to the interpreter the tree runs? Unknown target: assume yes.
            let forTarget = header.map { target == nil || Self.key($0) == target!.key } ?? true
            func finding(_ kind: BytecodeFinding.Kind, _ severity: BytecodeFinding.Severity, _ detail: String,
                         source: Bytes?, sourceSide: String?, runsStale: Bool = false) {
                var sev = severity
                // A pyc for another version than the one the caller says runs is never loaded by it.
                if target?.explicit == true && !forTarget && sev == .error { sev = .warning }
                var f = BytecodeFinding(kind: kind, severity: sev, path: path, sourcePath: source, detail: detail,
                                        pycSide: pycSide, sourceSide: sourceSide, header: header)
                f.runsStaleCode = runsStale && forTarget
                findings.append(f)
            }

            if dir.last == Array("__pycache__".utf8) {
                examineCached(path: path, name: name, pkgDir: Array(dir.dropLast()), header: header, result: result,
                              finding: finding)
            } else {
                examineLegacy(name: name, dir: dir, header: header, result: result, forTarget: forTarget,
                              target: target, finding: finding)
            }
            if let header, let target, Self.key(header) != target.key {
                let why = target.explicit ? "expected \(target.key)" : "most pycs in this tree are for \(target.key)"
                finding(.mixedPythonVersions, .warning,
                        "bytecode for \(Self.key(header)) (magic \(header.magicNumber)); \(why)",
                        source: nil, sourceSide: nil)
            }
        }

        package static func key(_ h: PycHeader) -> String { BytecodeChecker.versionKey(h) }

        package typealias Emit = (BytecodeFinding.Kind, BytecodeFinding.Severity, String, Bytes?, String?, Bool) -> Void

        private mutating func examineCached(
            path: Bytes, name: Bytes, pkgDir: [Bytes], header: PycHeader?, result: Result<PycHeader, ImprintError>,
            finding: Emit
        ) {
            guard let cacheName = PycCacheName(fileName: name) else {
                finding(.orphanCachePyc, .info, "CPython never looks up a __pycache__ file with this name", nil, nil, false)
                return
            }
            let sourcePath = pkgDir.joinedPath.appendingPath(cacheName.stem + BytecodeChecker.pySuffix)
            guard let hit = resolve(sourcePath), hit.node.type == .file else {
                finding(.orphanCachePyc, .info,
                        "\(sourcePath.lossyString) does not exist; CPython ignores this leftover", sourcePath,
                        "\(sourcePath.lossyString): missing", false)
                return
            }
            let (resolved, source) = (hit.path, hit.node)
            let sourceSide = sourceSummary(sourcePath, source)
            guard let header else {
                if case .failure(let e) = result, e.code == .notFound {
                    finding(.unreadablePyc, .warning, "pyc header not available: \(e.message)",
                            sourcePath, sourceSide, false)
                } else {
                    finding(.invalidPyc, .warning,
                            "CPython rejects this pyc and compiles the source instead (on every start when it cannot rewrite it)",
                            sourcePath, sourceSide, false)
                }
                return
            }
            if let tagVersion = cacheName.pythonVersion, let magicVersion = header.pythonVersion, tagVersion != magicVersion {
                finding(.invalidPyc, .warning,
                        "named for Python \(tagVersion) (\(cacheName.cacheTag)) but holds bytecode for Python \(magicVersion); Python \(tagVersion) rejects the magic and compiles the source",
                        sourcePath, sourceSide, false)
                return
            }
            switch header.validation {
            case .timestamp(let mtime, let size):
                guard let srcMtime = source.mtime else {
                    if let size, size != UInt32(truncatingIfNeeded: source.size) {
                        finding(.staleTimestampPyc, .warning,
                                "recorded source size differs from \(sourcePath.lossyString); CPython ignores this pyc and recompiles, so no old code runs from it",
                                sourcePath, sourceSide, false)
                    } else {
                        finding(.unverifiableTimestampPyc, .warning,
                                "the source's mtime is not recorded, so this timestamp pyc cannot be checked",
                                sourcePath, sourceSide, false)
                    }
                    return
                }
                // importlib: int(st.st_mtime) & 0xFFFFFFFF and st.st_size & 0xFFFFFFFF.
                let mtimeMatches = mtime == UInt32(truncatingIfNeeded: srcMtime)
                let sizeMatches = size.map { $0 == UInt32(truncatingIfNeeded: source.size) } ?? true
                if !mtimeMatches || !sizeMatches {
                    let what = !mtimeMatches && !sizeMatches ? "mtime and size" : !mtimeMatches ? "mtime" : "size"
                    finding(.staleTimestampPyc, .warning,
                            "recorded source \(what) differs from \(sourcePath.lossyString); CPython ignores this pyc and recompiles (on every start when it cannot rewrite it), so no old code runs from it",
                            sourcePath, sourceSide, false)
                } else if checker.strictTimestamps {
                    finding(.unverifiableTimestampPyc, .warning,
                            "mtime and size match, which CPython trusts; an edit keeping size and mtime second would go unnoticed — only a checked-hash pyc proves freshness",
                            sourcePath, sourceSide, false)
                }
            case .checkedHash(let recorded), .uncheckedHash(let recorded):
                let checked: Bool
                if case .checkedHash = header.validation { checked = true } else { checked = false }
                let (actual, why) = sourceHash(sourcePath, resolved: resolved, magicWord: header.magicWord)
                let variant = PycMagic.sipHashVariant(forMagicWord: header.magicWord).rawValue
                let side = actual.map { "\(sourceSide), \(variant) \(PycSourceHash.hex($0))" } ?? sourceSide
                switch (checked, actual) {
                case (true, nil):
                    finding(.unverifiableHashPyc, .warning, "cannot compare the source hash: \(why)", sourcePath, side, false)
                case (true, let h?) where h != recorded:
                    finding(.staleCheckedHashPyc, .warning,
                            "source hash differs from \(sourcePath.lossyString); CPython ignores this pyc and recompiles (on every start when it cannot rewrite it), so no old code runs from it",
                            sourcePath, side, false)
                case (true, _):
                    break
                case (false, nil):
                    finding(.uncheckedHashPyc, .warning,
                            "unchecked-hash pyc: CPython runs it without looking at the source (source not hashed: \(why))",
                            sourcePath, side, false)
                case (false, let h?) where h != recorded:
                    finding(.staleUncheckedHashPyc, .error,
                            "source hash differs from \(sourcePath.lossyString), and CPython never checks unchecked-hash pycs: the OLD code runs",
                            sourcePath, side, true)
                case (false, _):
                    finding(.uncheckedHashPyc, .warning,
                            "unchecked-hash pyc: matches the source now, but CPython never checks it, so a later edit of \(sourcePath.lossyString) would not take effect",
                            sourcePath, side, false)
                }
            }
        }

        private mutating func examineLegacy(
            name: Bytes, dir: [Bytes], header: PycHeader?, result: Result<PycHeader, ImprintError>,
            forTarget: Bool, target: Target?,
            finding: Emit
        ) {
            let stem = Array(name.dropLast(BytecodeChecker.pycSuffix.count))
            let dirPath = dir.joinedPath
            guard !stem.isEmpty, !stem.contains(UInt8(ascii: ".")) else {
                finding(.sourcelessPyc, .info, "a pyc outside __pycache__ whose name is no module name; no import loads it",
                        nil, nil, false)
                return
            }
            let sourcePath = dirPath.appendingPath(stem + BytecodeChecker.pySuffix)
            // FileFinder: a package directory (with __init__) wins, then extension modules, then source, then
            // bytecode (_get_supported_file_loaders order).
            if let shadow = shadowingEntry(dir: dirPath, stem: stem) {
                let sourceSide: String
                if let src = resolve(sourcePath)?.node, src.type == .file {
                    sourceSide = sourceSummary(sourcePath, src)
                } else {
                    sourceSide = "\(shadow.lossyString): present"
                }
                finding(.sourcelessPyc, .warning,
                        "legacy pyc outside __pycache__; CPython imports \(shadow.lossyString) instead, but deleting that would make this bytecode run",
                        sourcePath, sourceSide, false)
                return
            }
            let missing = "\(sourcePath.lossyString): missing"
            guard let header else {
                if case .failure(let e) = result, e.code == .notFound {
                    finding(.orphanSourcelessPyc, .error,
                            "no \(sourcePath.lossyString): CPython imports this bytecode (header not available to check: \(e.message))",
                            sourcePath, missing, false)
                } else {
                    finding(.invalidPyc, .error,
                            "no \(sourcePath.lossyString): CPython tries to import this pyc and the import fails",
                            sourcePath, missing, false)
                }
                return
            }
            if let target, target.explicit, !forTarget {
                finding(.orphanSourcelessPyc, .error,
                        "no \(sourcePath.lossyString): \(target.key) imports this pyc and fails on its magic (bytecode for \(BytecodeChecker.versionKey(header)))",
                        sourcePath, missing, false)
            } else {
                finding(.orphanSourcelessPyc, .error,
                        "no \(sourcePath.lossyString): CPython imports this bytecode unchecked; whatever it was compiled from runs",
                        sourcePath, missing, true)
            }
        }

        /// The entry CPython's FileFinder prefers over `dir/stem.pyc`, if any.
        private func shadowingEntry(dir: Bytes, stem: Bytes) -> Bytes? {
            guard let d = tree.node(at: dir).flatMap({ $0.type == .directory ? $0 : resolve(dir)?.node }),
                  d.type == .directory else { return nil }
            // A package directory with an __init__ module.
            if let hit = resolve(dir.appendingPath(stem)), hit.node.type == .directory {
                let pkgPath = hit.path
                for (n, c) in hit.node.sortedChildren where c.type != .directory {
                    if let s = n.exactString, s.hasPrefix("__init__."),
                       s == "__init__.py" || s == "__init__.pyc" || s.hasSuffix(".so") {
                        return pkgPath.appendingPath(n)
                    }
                }
            }
            let prefix = stem + [UInt8(ascii: ".")]
            for (n, _) in d.sortedChildren where n.count > prefix.count && n.starts(with: prefix) {
                let p = dir.appendingPath(n)
                guard let node = resolve(p)?.node, node.type == .file else { continue }
                // Extension modules: mod.so, mod.abi3.so, mod.cpython-311-x86_64-linux-gnu.so.
                if n.lossyString.hasSuffix(".so") && n.dropFirst(prefix.count).filter({ $0 == UInt8(ascii: ".") }).count <= 1 {
                    return p
                }
                if n == stem + BytecodeChecker.pySuffix { return p }
            }
            return nil
        }
    }
}
