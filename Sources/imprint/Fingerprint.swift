import ArgumentParser
import Foundation
import Synchronization
import ImprintCore
#if canImport(Glibc)
import Glibc
#endif

extension ImprintCommand {
    struct Fingerprint: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fingerprint",
            abstract: "Fingerprint a build context exactly as Docker sends it.",
            discussion: """
            Walks CONTEXT with the builder's .dockerignore semantics, hashes every file with SHA-256 on all cores \
            and writes a manifest whose root digest is the context's fingerprint. Hygiene findings (bytecode, VCS \
            metadata, secrets, node_modules, large files, no ignore file) go to stderr and into the manifest.

            Write outputs outside the context (they would otherwise be part of what the builder sends); a manifest \
            imprint wrote into the context earlier (--emit, -o) is recognised and left out of the digest.

            Examples:
              imprint fingerprint . -o ../out/manifest.json --digest-file ../out/digest.txt
              imprint fingerprint . -f docker/api.Dockerfile --emit .imprint/manifest.json
              imprint fingerprint app --format sha256sum -o SHA256SUMS     # then: sha256sum -c SHA256SUMS
              imprint fingerprint . --digest-only

            Exit status: 0 ok; 1 hygiene findings with --strict; 2 bad input or failure.
            """
        )

        enum Format: String, CaseIterable, ExpressibleByArgument { case json, sha256sum, mtree }

        @Argument(help: "The build context directory.", completion: .directory)
        var context: String = "."

        @Option(name: .shortAndLong, help: "Write the output here (atomically) instead of stdout.", completion: .file())
        var output: String?

        @Option(help: "Output format: json (the manifest), sha256sum (for sha256sum -c), mtree (for mtree -f).")
        var format: Format = .json

        @Option(name: [.customShort("f"), .customLong("file")], help: "The Dockerfile; <Dockerfile>.dockerignore next to it replaces .dockerignore.", completion: .file())
        var dockerfile: String?

        @Option(name: .customLong("ignore-file"), help: "Use this ignore file instead of the context's.", completion: .file())
        var ignoreFile: String?

        @Option(name: .customLong("ignore-semantics"), help: "buildkit (current Docker) or classic (legacy builder, buildah/podman 1.28).")
        var semantics: IgnoreSemantics = .buildkit

        @Option(help: "Also write the manifest to this path inside the context (excluded from its own digest) for a Dockerfile COPY.")
        var emit: String?

        @Option(name: .customLong("large-file"), help: "Size in MiB from which a file is reported as large.")
        var largeFileMiB: UInt64 = 50

        @Flag(help: "Exit 1 when there are hygiene findings.")
        var strict = false

        @Flag(help: "Print only the root digest.")
        var digestOnly = false

        @Option(name: .customLong("digest-file"), help: "Also write the root digest (sha256:…) to this file, for later --expect.", completion: .file())
        var digestFile: String?

        @Flag(name: .shortAndLong, help: "Do not print hygiene findings.")
        var quiet = false

        @Flag(help: "Also add the manifest to the history store (see imprint history).")
        var record = false

        @Option(name: .customLong("tag"), help: "With --record: a tag for the history record (repeatable).")
        var recordTags: [String] = []

        @OptionGroup var history: HistoryOptions

        func run() throws {
            try runReportingErrors {
                var fp = Fingerprinter(context: context)
                fp.dockerfile = dockerfile
                fp.ignoreFile = ignoreFile
                fp.semantics = semantics
                fp.largeFileThreshold = largeFileMiB << 20
                var excluded: [String] = []
                if let emit { excluded.append(emit) }
                if let output, let rel = relativeInside(context: context, path: output) { excluded.append(rel) }
                if let digestFile, let rel = relativeInside(context: context, path: digestFile) { excluded.append(rel) }
                fp.excluded = excluded
                let manifest = try fp.run()
                keepUntilExit(manifest.tree)
                if let emit {
                    let json = manifest.jsonChunks()
                    let target = emit.hasPrefix("/") ? emit : (context as NSString).appendingPathComponent(emit)
                    let dir = (target as NSString).deletingLastPathComponent
                    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                    try AtomicFile.write(to: target) { fd in for c in json { try AtomicFile.writeAll(fd, c, path: target) } }
                }
                if !quiet {
                    for f in manifest.findings { Console.err("imprint: \(f.kind.rawValue): \(f.path): \(f.message)") }
                }
                if digestOnly {
                    try writeOutput(Array((manifest.rootDigest.prefixed + "\n").utf8), to: output)
                } else {
                    switch format {
                    case .json: try writeOutput(chunks: manifest.jsonChunks(), to: output)
                    case .sha256sum: try writeOutput(ManifestFormats.sha256sum(manifest.tree), to: output)
                    case .mtree: try writeOutput(ManifestFormats.mtree(manifest.tree), to: output)
                    }
                }
                if let digestFile { try writeOutput(Array((manifest.rootDigest.prefixed + "\n").utf8), to: digestFile) }
                if output != nil && output != "-" && !quiet {
                    Console.note("imprint: context digest \(manifest.rootDigest.prefixed) (\(manifest.tree.statistics.files) files) → \(output ?? "-")")
                }
                if record {
                    let e = try history.open(create: true).add(manifest, tags: recordTags)
                    if !quiet { Console.note("imprint: recorded as history record \(e.record.prefixed) (context digest \(manifest.rootDigest.prefixed)) in \(history.location)") }
                }
                if strict && !manifest.findings.isEmpty { throw ExitCode(1) }
            }
        }
    }
}

/// `writeOutput` for output made in chunks (a manifest of a large context), without joining them first.
func writeOutput(chunks: [[UInt8]], to path: String?) throws {
    if let path, path != "-" {
        var st = stat()
        if stat(path, &st) == 0 && (st.st_mode & S_IFMT) != S_IFREG {
            // /dev/null, a FIFO, /dev/stdout: nothing to replace atomically.
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            if fd < 0 { throw ImprintError.posix("open", path) }
            defer { close(fd) }
            for c in chunks { try AtomicFile.writeAll(fd, c, path: path) }
            return
        }
        try createParentDirectory(of: path)
        try AtomicFile.write(to: path) { fd in for c in chunks { try AtomicFile.writeAll(fd, c, path: path) } }
    } else {
        for c in chunks { Console.outRaw(c) }
    }
}

/// Keeps `object` alive until the process exits. For trees of a whole context: freeing their nodes one by one
/// takes milliseconds per ten thousand entries that exiting the process does at once.
func keepUntilExit(_ object: AnyObject) {
    keptUntilExit.withLock { $0.append(object) }
}

private let keptUntilExit = Mutex<[AnyObject]>([])

/// The context-relative form of `path` when it lies inside `context`, else nil.
func relativeInside(context: String, path: String) -> String? {
    let ctx = URL(fileURLWithPath: context).standardizedFileURL.resolvingSymlinksInPath().path
    let abs = URL(fileURLWithPath: path).standardizedFileURL
    let parent = abs.deletingLastPathComponent().resolvingSymlinksInPath().path
    let full = parent + "/" + abs.lastPathComponent
    if full.hasPrefix(ctx + "/") { return String(full.dropFirst(ctx.count + 1)) }
    return nil
}
