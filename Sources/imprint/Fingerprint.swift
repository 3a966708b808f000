import ArgumentParser
import Foundation
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
              imprint fingerprint . -o ../out/manifest.json --attest ../out/context.dsse.json --key imprint.key
              imprint fingerprint . --format sarif -o ../out/hygiene.sarif     # for code scanning

            Exit status: 0 ok; 1 hygiene findings with --strict; 2 bad input or failure.
            """
        )

        @Argument(help: "The build context directory.", completion: .directory) var context: String = "."
        @Option(name: .shortAndLong, help: "Write the output here (atomically) instead of stdout.", completion: .file()) var output: String?
        @Option(help: "Output format: json (the manifest), sha256sum (for sha256sum -c), mtree (for mtree -f), sarif (the hygiene findings, SARIF 2.1.0).")
        var format: FingerprintRequest.Format = .json
        @Option(name: .customLong("sarif-root"), help: ArgumentHelp("For --format sarif: the repository root the result paths are relative to (default: the git work tree holding the context, else the current directory).", valueName: "dir"), completion: .directory)
        var sarifRoot: String?
        @OptionGroup var ignore: IgnoreOptions
        @Option(help: "Also write the manifest to this path inside the context (excluded from its own digest) for a Dockerfile COPY.") var emit: String?
        @Option(name: .customLong("large-file"), help: "Size in MiB from which a file is reported as large.") var largeFileMiB: UInt64 = 50
        @Flag(help: "Exit 1 when there are hygiene findings.") var strict = false
        @Flag(help: "Print only the root digest.") var digestOnly = false
        @Option(name: .customLong("digest-file"), help: "Also write the root digest (sha256:…) to this file, for later --expect.", completion: .file()) var digestFile: String?
        @Flag(name: .shortAndLong, help: "Do not print hygiene findings.") var quiet = false
        @Flag(help: "Also add the manifest to the history store (see imprint history).") var record = false
        @Option(name: .customLong("tag"), help: "With --record: a tag for the history record (repeatable).") var recordTags: [String] = []
        @OptionGroup var history: HistoryOptions
        @Option(help: ArgumentHelp("Compare file times with this history record (a REF, or none): report files whose content changed while size, mtime and mode did not, which a builder's cache can miss (cache-stale-risk). Default: the newest record of this context, when the store has one.", valueName: "ref"))
        var against: String?
        @OptionGroup var attest: AttestFlags

        func run() throws {
            try runReportingErrors {
                var request = FingerprintRequest(context: context, historyLocation: history.location)
                (request.dockerfile, request.ignoreFile, request.semantics) = (ignore.dockerfile, ignore.ignoreFile, ignore.semantics)
                request.largeFileThreshold = largeFileMiB << 20
                request.sarifRoot = sarifRoot
                (request.output, request.emit, request.digestFile) = (output, emit, digestFile)
                (request.against, request.record, request.recordTags, request.quiet, request.strict) = (against, record, recordTags, quiet, strict)
                let result = try request.run()
                keepUntilExit(result.manifest.tree)
                for line in result.cacheLines { Console.err("imprint: cache: \(line)") }
                for note in result.notes { Console.note("imprint: \(note)") }
                if !quiet { for f in result.findings { Console.err("imprint: \(f.kind.rawValue): \(f.path): \(f.message)") } }
                let signing = try attest.path.flatMap { path in try attest.signingKey().map { (path: path, key: $0) } }
                let recorded = try request.write(result, format: format, digestOnly: digestOnly, attestation: signing)
                if output != nil && output != "-" && !quiet {
                    Console.note("imprint: context digest \(result.manifest.rootDigest.prefixed) (\(result.manifest.tree.statistics.files) files) → \(output ?? "-")")
                }
                if let e = recorded, !quiet {
                    Console.note("imprint: recorded as history record \(e.record.prefixed) (context digest \(result.manifest.rootDigest.prefixed)) in \(history.location)")
                }
                try conclude(result)
            }
        }
    }
}
