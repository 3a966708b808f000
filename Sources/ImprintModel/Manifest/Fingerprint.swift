import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Fingerprints a build context: picks the ignore file as the builder would, walks, hashes, lints.
package struct Fingerprinter {
    package var context: String
    /// The Dockerfile given with `-f`; `<Dockerfile>.dockerignore` beside it wins over the context's `.dockerignore`.
    package var dockerfile: String?
    /// An ignore file that replaces both (like buildah's `--ignorefile`).
    package var ignoreFile: String?
    package var semantics: IgnoreSemantics = .buildkit
    /// Context-relative paths imprint itself writes into the context; left out of the digest.
    package var excluded: [String] = []
    package var largeFileThreshold = Hygiene.defaultLargeFileThreshold
    package var collectMetadata = true
    /// Record each file's modification time (for `--against`'s cache-staleness check; never in the digest).
    package var recordFileTimes = false
    package var progress: ((Int, UInt64) -> Void)?

    package init(context: String) { self.context = context }

    /// Where the builder finds its ignore file for this context (`IgnoreFileLocator`).
    package var locator: IgnoreFileLocator { IgnoreFileLocator(context: context, dockerfile: dockerfile, ignoreFile: ignoreFile, semantics: semantics) }

    /// The ignore file the builder would use, or nil when there is none (`IgnoreFileLocator.resolve`).
    package func resolveIgnoreFile() throws -> String? { try locator.resolve() }

    package var relativeDockerfile: String { locator.relativeDockerfile }

    /// Build arguments for the Dockerfile's ARG substitution (`--build-arg`).
    package var buildArgs: [String: String] = [:]

    /// The Dockerfile given with `-f`, else the context's `Dockerfile`, parsed for its copies from the context.
    /// - Throws: for a malformed Dockerfile named with `-f` (the context's own is skipped when unreadable).
    package func readDockerfile() throws -> (path: String, digest: Digest, parsed: Dockerfile)? {
        let path: String
        if let df = dockerfile {
            let candidates = df.hasPrefix("/") ? [df] : [df, (context as NSString).appendingPathComponent(df)]
            guard let existing = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else { return nil }
            path = existing
        } else {
            path = (context as NSString).appendingPathComponent("Dockerfile")
            guard FileManager.default.fileExists(atPath: path) else { return nil }
        }
        do {
            let bytes = try readFile(path, what: "Dockerfile")
            let parsed = try Dockerfile.parse(String(decoding: bytes, as: UTF8.self), buildArgs: buildArgs)
            return (displayPath(path), SHA256.hash(bytes), parsed)
        } catch where dockerfile == nil {
            return nil
        }
    }

    /// The ignore rules the builder would apply, and the file they come from (nil: none).
    package static func loadIgnore(context: String, dockerfile: String?, ignoreFile: String?,
                                  semantics: IgnoreSemantics) throws -> (DockerIgnore, String?) {
        try IgnoreFileLocator(context: context, dockerfile: dockerfile, ignoreFile: ignoreFile, semantics: semantics).load()
    }

    package func run() throws -> Manifest {
        var meta = ManifestMetadata()
        meta.ignoreSemantics = semantics
        var ignore = DockerIgnore.empty
        let ignorePath = try resolveIgnoreFile()
        if let ignorePath {
            let data = try readFile(ignorePath, what: "ignore file")
            ignore = try DockerIgnore.parse(data, file: ignorePath, semantics: semantics).reincludingBuildFiles(dockerfile: relativeDockerfile)
            meta.ignoreFile = displayPath(ignorePath)
            meta.ignoreFileDigest = SHA256.hash(data)
        } else if ignoreFile == nil {
            ignore = DockerIgnore.none(semantics)
        }
        var cleanedExcluded = excluded.map { DockerIgnore.goClean($0) }.filter { $0 != "." && !$0.hasPrefix("../") && $0 != ".." }
        var walker = ContextWalker(ignore: ignore, excludedPaths: Set(cleanedExcluded.map { Array($0.utf8) }))
        walker.progress = progress
        walker.recordFileTimes = recordFileTimes
        var (tree, notes) = try walker.walk(context)
        // Manifests imprint wrote into the context earlier (`--emit`, `-o` inside it) are imprint's, not the
        // application's: left out of the digest wherever they sit, so the fingerprint does not change when one is
        // (re)written.
        let own = try Fingerprinter.ownManifests(in: tree, context: context).filter { !cleanedExcluded.contains($0) }
        if !own.isEmpty {
            cleanedExcluded += own
            walker.excludedPaths = Set(cleanedExcluded.map { Array($0.utf8) })
            (tree, notes) = try walker.walk(context)
        }
        meta.excluded = cleanedExcluded.sorted()
        if collectMetadata { meta.collect(context: context) }
        meta.dockerfile = try readDockerfile()
        var findings = Hygiene.lint(tree, hadIgnoreFile: ignorePath != nil, largeFileThreshold: largeFileThreshold,
                                    sockets: notes.sockets, sentEmpty: notes.sentEmpty, semantics: semantics)
        findings += Hygiene.ignoreFileHints(tree, ignore: ignore, ignoreFile: ignorePath.map(displayPath))
        return Manifest(tree: tree, findings: findings, metadata: meta)
    }

    /// Context-relative paths of imprint manifests that list themselves as excluded (and the signature beside each):
    /// what `--emit` and `-o` wrote into the context on an earlier run. Found by their media type in the first bytes,
    /// so only files that start like an imprint manifest are parsed.
    package static func ownManifests(in tree: Tree, context: String) throws -> [String] {
        var candidates: [Bytes] = []
        tree.walk { path, node in
            guard node.type == .file, node.size > 64, node.size < 1 << 30, path.count > 5,
                  path.suffix(5).elementsEqual(".json".utf8) else { return }
            candidates.append(path)
        }
        let prefix = Array("{\n  \"mediaType\": \"\(Manifest.mediaType)\"".utf8)
        var out: [String] = []
        for rel in candidates {
            let full = (context as NSString).appendingPathComponent(rel.lossyString)
            guard let head = try? FileBytes.prefix(full, count: prefix.count), head == prefix,
                  let m = try? Manifest.parse(try readFile(full, what: "manifest"), source: full) else { continue }
            let relText = rel.lossyString
            guard m.metadata.excluded.contains(relText) else { continue }
            out.append(relText)
            let sig = ManifestSignature.path(besideManifest: relText)
            if tree.node(at: Array(sig.utf8))?.type == .file { out.append(sig) }
        }
        return out
    }

    package func displayPath(_ p: String) -> String { locator.displayPath(p) }
}

extension Fingerprinter {
    /// Leaves the command's own outputs out of the digest when they are written into the context: the emitted
    /// manifest (`--emit`), and `-o`/`--digest-file` when they point inside it.
    package mutating func excludeOwnOutputs(emit: String?, output: String?, digestFile: String?) {
        var excluded: [String] = []
        if let emit { excluded.append(emit) }
        for path in [output, digestFile].compactMap({ $0 }) where path != "-" {
            if let rel = relativeInside(context: context, path: path) { excluded.append(rel) }
        }
        self.excluded = excluded
    }

    /// `--emit PATH`: the manifest written into the context (relative paths are inside it), atomically.
    package static func writeEmitted(_ manifest: Manifest, to emit: String, context: String) throws {
        let target = emit.hasPrefix("/") ? emit : (context as NSString).appendingPathComponent(emit)
        try createParentDirectory(of: target)
        try AtomicFile.write(to: target) { fd in for c in manifest.jsonChunks() { try AtomicFile.writeAll(fd, c, path: target) } }
    }
}
