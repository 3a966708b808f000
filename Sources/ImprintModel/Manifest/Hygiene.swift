import Foundation
import Synchronization

/// Hygiene lints: things in a build context that usually should not reach an image.
package enum Hygiene {
    package static let defaultLargeFileThreshold: UInt64 = 50 << 20

    package static let secretNames: Set<String> = [
        ".env", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".netrc", ".pgpass", ".npmrc", ".pypirc",
        "credentials.json", "service-account.json",
    ]
    package static let secretSuffixes = [".pem", ".key", ".p12", ".pfx", ".keystore", ".jks"]
    package static let vcsNames: Set<String> = [".git", ".hg", ".svn", ".bzr"]

    /// Lints `tree`. `hadIgnoreFile` false adds a finding of its own.
    package static func lint(_ tree: Tree, hadIgnoreFile: Bool, largeFileThreshold: UInt64 = defaultLargeFileThreshold,
                            sockets: [Bytes] = [], sentEmpty: [Bytes] = [], semantics: IgnoreSemantics = .buildkit) -> [HygieneFinding] {
        var out: [HygieneFinding] = []
        if tree.root.childCount == 0 {
            out.append(HygieneFinding(kind: .emptyContext, path: ".", message: "nothing in the context is sent to the builder (everything is excluded, or the directory is empty): the fingerprint is the empty digest"))
        }
        if !hadIgnoreFile {
            out.append(HygieneFinding(kind: .noIgnoreFile, path: ".dockerignore",
                                      message: "no ignore file: every file in the context is sent to the builder"))
        }
        // A reported directory is reported once, not every file inside it: the walk does not go below it.
        let workers = ProcessInfo.processInfo.activeProcessorCount
        let pieces = workers > 1 ? tree.walkPieces(target: 64 * workers) : []
        if pieces.count < 2 {
            tree.walkEntries { path, nameStart, node in
                lintEntry(path, nameStart, node, largeFileThreshold: largeFileThreshold, into: &out)
            }
        } else {
            // Pieces of the walk linted on all cores, findings joined in walk order. Each directory lies in one
            // piece, so no node is visited by two threads.
            let results = parallelMap(pieces, workers: workers) { piece -> (findings: [HygieneFinding], descends: Bool) in
                var found: [HygieneFinding] = []
                var descends = true
                var first = true
                tree.walkEntries(of: piece) { path, nameStart, node in
                    let d = lintEntry(path, nameStart, node, largeFileThreshold: largeFileThreshold, into: &found)
                    if first { descends = d; first = false }
                    return d
                }
                return (found, descends)
            }
            // A directory reported in a piece of its own hides the pieces below it, as the walk would not go there.
            var hidden: Bytes?
            for (i, piece) in pieces.enumerated() {
                if let h = hidden, piece.path.isPath(under: h) { continue }
                hidden = nil
                out.append(contentsOf: results[i].findings)
                if !piece.withSubtree && !results[i].descends { hidden = piece.path }
            }
        }
        for s in sockets {
            out.append(HygieneFinding(kind: .socket, path: s.lossyString, message: semantics.sendsSocketsEmpty
                ? "socket: BuildKit sends it as an empty regular file"
                : "socket skipped (\(semantics.builderName) does not send sockets)"))
        }
        for p in sentEmpty {
            out.append(HygieneFinding(kind: .sentEmpty, path: p.lossyString, message: "BuildKit lists this file but its sender's second check excludes it, so it arrives empty (the exceptions in the ignore file disagree with each other here)"))
        }
        return out
    }

    /// Lints one entry of the walk; false when the walk must not go below it (a directory reported as a whole).
    private static func lintEntry(_ pathBytes: [UInt8], _ nameStart: Int, _ node: TreeNode, largeFileThreshold: UInt64,
                                  into out: inout [HygieneFinding]) -> Bool {
        // Every rule needs the name to be (or start or end with) one of a few ASCII words: most entries are
        // ruled out on their bytes, without building Strings.
        let nameBytes = pathBytes[nameStart...]
        let isLarge = node.type == .file && node.size >= largeFileThreshold
        guard isLarge || mayMatch(nameBytes, directory: node.type == .directory) else { return true }
        let name = String(decoding: nameBytes, as: UTF8.self)
        let p = pathBytes.lossyString
        if node.type == .directory {
            if name == "__pycache__" {
                out.append(HygieneFinding(kind: .bytecode, path: p, message: "Python bytecode cache directory (stale .pyc files can run instead of the sources); add **/__pycache__ and **/*.pyc to .dockerignore"))
                return false
            } else if vcsNames.contains(name) {
                out.append(HygieneFinding(kind: .vcs, path: p, message: "version-control metadata (history, remotes, possibly credentials)"))
                return false
            } else if name == "node_modules" {
                out.append(HygieneFinding(kind: .nodeModules, path: p, message: "node_modules from the build host (platform-specific, usually installed in the image)"))
                return false
            }
            return true
        }
        if name.hasSuffix(".pyc") || name.hasSuffix(".pyo") {
            out.append(HygieneFinding(kind: .bytecode, path: p, message: "Python bytecode outside __pycache__ (imported even when its .py is gone); add **/*.pyc to .dockerignore"))
        } else if vcsNames.contains(name) {
            out.append(HygieneFinding(kind: .vcs, path: p, message: "version-control metadata"))
        } else if isSecret(name) {
            out.append(HygieneFinding(kind: .secret, path: p, message: "looks like a secret (keys, credentials, environment files)"))
        }
        if isLarge {
            out.append(HygieneFinding(kind: .largeFile, path: p, message: "large file (\(formatBytes(node.size)))"))
        }
        return true
    }

    package static let directoryWords: [[UInt8]] = (["__pycache__", "node_modules"] + vcsNames).map { Array($0.utf8) }
    package static let entryWords: [[UInt8]] = (Array(vcsNames) + Array(secretNames)).map { Array($0.utf8) }
    package static let entrySuffixes: [[UInt8]] = ([".pyc", ".pyo"] + secretSuffixes).map { Array($0.utf8) }
    package static let entryPrefixes: [[UInt8]] = [".env.", "id_rsa"].map { Array($0.utf8) }

    /// False when no rule can match `name`. The rules compare Strings, whose equality, prefixes and suffixes of
    /// these ASCII words imply the same of the bytes; so a name ruled out here is ruled out there too.
    package static func mayMatch(_ name: ArraySlice<UInt8>, directory: Bool) -> Bool {
        guard let first = name.first, let last = name.last else { return false }
        if directory {
            guard first == UInt8(ascii: "_") || first == UInt8(ascii: "n") || first == UInt8(ascii: ".") else { return false }
            return directoryWords.contains { name.elementsEqual($0) }
        }
        // Quick refusal on the first and last bytes: every word starts with one of ". i c s", every suffix ends
        // with one of "c o m y 2 x e s" (checked exactly below).
        let firstMayMatch = first == UInt8(ascii: ".") || first == UInt8(ascii: "i") || first == UInt8(ascii: "c")
            || first == UInt8(ascii: "s")
        if !firstMayMatch {
            switch last {
            case UInt8(ascii: "c"): return name.count >= 4 && name.suffix(4).elementsEqual(".pyc".utf8)
            case UInt8(ascii: "o"): return name.count >= 4 && name.suffix(4).elementsEqual(".pyo".utf8)
            case UInt8(ascii: "m"): return name.count >= 4 && name.suffix(4).elementsEqual(".pem".utf8)
            case UInt8(ascii: "y"): return name.count >= 4 && name.suffix(4).elementsEqual(".key".utf8)
            case UInt8(ascii: "2"): return name.count >= 4 && name.suffix(4).elementsEqual(".p12".utf8)
            case UInt8(ascii: "x"): return name.count >= 4 && name.suffix(4).elementsEqual(".pfx".utf8)
            case UInt8(ascii: "e"): return name.count >= 9 && name.suffix(9).elementsEqual(".keystore".utf8)
            case UInt8(ascii: "s"): return name.count >= 4 && name.suffix(4).elementsEqual(".jks".utf8)
            default: return false
            }
        }
        if entrySuffixes.contains(where: { name.count >= $0.count && name.suffix($0.count).elementsEqual($0) }) { return true }
        if entryPrefixes.contains(where: { name.count >= $0.count && name.prefix($0.count).elementsEqual($0) }) { return true }
        return entryWords.contains { name.elementsEqual($0) }
    }

    /// Patterns that look meant for every directory but match only at the context root (`.dockerignore` patterns
    /// are anchored: `__pycache__` is `/__pycache__`), when the context has such names deeper down.
    package static func ignoreFileHints(_ tree: Tree, ignore: DockerIgnore, ignoreFile: String?) -> [HygieneFinding] {
        let watched = ["__pycache__", "*.pyc", ".git", "node_modules", ".env", "*.pem", ".DS_Store"]
        var out: [HygieneFinding] = []
        for p in ignore.patterns where !p.exclusion && watched.contains(p.text) {
            var deeper: Bytes?
            tree.walkEntries { path, nameStart, _ in
                guard deeper == nil else { return false }
                if nameStart > 0, let m = try? p.matcher.matches(Array(path[nameStart...])), m { deeper = path }
                return true
            }
            if let deeper {
                out.append(HygieneFinding(kind: .ignorePattern, path: deeper.lossyString,
                                          message: "\(ignoreFile ?? ".dockerignore") line \(p.line): \"\(p.text)\" matches only at the context root, not \(deeper.lossyString); write **/\(p.text)",
                                          line: p.line))
            }
        }
        return out
    }

    package static func isSecret(_ name: String) -> Bool {
        if secretNames.contains(name) { return true }
        if name.hasPrefix(".env.") && !name.hasSuffix(".example") && !name.hasSuffix(".sample") && !name.hasSuffix(".template") { return true }
        if name.hasPrefix("id_rsa") && !name.hasSuffix(".pub") { return true }
        return secretSuffixes.contains { name.hasSuffix($0) }
    }
}
