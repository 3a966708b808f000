import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Fingerprints a build context: picks the ignore file as the builder would, walks, hashes, lints.
public struct Fingerprinter {
    public var context: String
    /// The Dockerfile given with `-f`; `<Dockerfile>.dockerignore` beside it wins over the context's `.dockerignore`.
    public var dockerfile: String?
    /// An ignore file that replaces both (like buildah's `--ignorefile`).
    public var ignoreFile: String?
    public var semantics: IgnoreSemantics = .buildkit
    /// Context-relative paths imprint itself writes into the context; left out of the digest.
    public var excluded: [String] = []
    public var largeFileThreshold = Hygiene.defaultLargeFileThreshold
    public var collectMetadata = true
    public var progress: ((Int, UInt64) -> Void)?

    public init(context: String) { self.context = context }

    /// The ignore file the builder would use, or nil when there is none.
    public func resolveIgnoreFile() -> String? {
        if let ignoreFile { return ignoreFile }
        if let df = dockerfile {
            let candidates = df.hasPrefix("/") ? [df] : [df, (context as NSString).appendingPathComponent(df)]
            for c in candidates {
                let path = c + ".dockerignore"
                if FileManager.default.fileExists(atPath: path) { return path }
            }
        }
        let root = (context as NSString).appendingPathComponent(".dockerignore")
        return FileManager.default.fileExists(atPath: root) ? root : nil
    }

    public func run() throws -> Manifest {
        var meta = ManifestMetadata()
        meta.ignoreSemantics = semantics
        var ignore = DockerIgnore.empty
        let ignorePath = resolveIgnoreFile()
        if let ignorePath {
            let data = try readFile(ignorePath, what: "ignore file")
            ignore = try DockerIgnore.parse(data, file: ignorePath, semantics: semantics)
            meta.ignoreFile = displayPath(ignorePath)
            meta.ignoreFileDigest = SHA256.hash(data)
        } else if ignoreFile == nil {
            ignore = DockerIgnore.none(semantics)
        }
        let cleanedExcluded = excluded.map { DockerIgnore.goClean($0) }.filter { $0 != "." && !$0.hasPrefix("../") && $0 != ".." }
        meta.excluded = cleanedExcluded.sorted()
        var walker = ContextWalker(ignore: ignore, excludedPaths: Set(cleanedExcluded.map { Array($0.utf8) }))
        walker.progress = progress
        let (tree, notes) = try walker.walk(context)
        if collectMetadata { meta.collect(context: context) }
        let findings = Hygiene.lint(tree, hadIgnoreFile: ignorePath != nil, largeFileThreshold: largeFileThreshold,
                                    sockets: notes.sockets)
        return Manifest(tree: tree, findings: findings, metadata: meta)
    }

    private func displayPath(_ p: String) -> String {
        let ctx = URL(fileURLWithPath: context).standardizedFileURL.path
        let abs = URL(fileURLWithPath: p).standardizedFileURL.path
        if abs.hasPrefix(ctx + "/") { return String(abs.dropFirst(ctx.count + 1)) }
        return p
    }
}

/// Reads a whole (small) file. Throws a one-line error naming the file.
public func readFile(_ path: String, what: String = "file") throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw ImprintError.posix("read \(what)", path) }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw ImprintError.posix("read \(what)", path)
        }
        if n == 0 { break }
        out.append(contentsOf: buf[0..<n])
    }
    return out
}
