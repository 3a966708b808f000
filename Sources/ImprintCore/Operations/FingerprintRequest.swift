import Foundation

/// What `imprint fingerprint` does, as calls a test can make: fingerprint the context with the builder's ignore
/// rules, compare file times with a history record (cache-stale-risk), write the emitted copy, render the output
/// in one of its formats, and record the build in the history store.
package struct FingerprintRequest {
    /// The output formats: the manifest, `sha256sum -c` lines, an mtree spec, the hygiene findings as SARIF.
    package enum Format: String, CaseIterable, Sendable { case json, sha256sum, mtree, sarif }

    package var context: String
    package var dockerfile: String?
    package var ignoreFile: String?
    package var semantics: IgnoreSemantics = .buildkit
    package var largeFileThreshold: UInt64 = 50 << 20
    /// The output files; any of them inside the context is left out of its digest.
    package var output: String?
    package var emit: String?
    package var digestFile: String?
    /// The history record whose file times are compared (a REF or `none`; nil: the newest record of this context).
    package var against: String?
    package var historyLocation: String
    /// Whether the build will be recorded (then file times are kept for the next comparison).
    package var record = false
    package var recordTags: [String] = []
    /// SARIF: the repository root its paths are relative to (nil: the git work tree holding the context).
    package var sarifRoot: String?
    /// `--quiet`: nothing for stderr but errors, so the prediction of which `COPY` instructions the builder's cache
    /// would reuse (lines only ever printed) is not made.
    package var quiet = false
    /// `--strict`: any hygiene or stale-file finding fails the command (exit 1).
    package var strict = false

    /// What fingerprinting found.
    package struct Result: ExitStatusReporting {
        package var manifest: Manifest
        /// Files whose content changed while size, mtime and mode did not (cache-stale-risk).
        package var staleFindings: [HygieneFinding]
        /// The cache prediction, one line per COPY.
        package var cacheLines: [String]
        /// Notes about the comparison (which record, or why none).
        package var notes: [String]
        /// Every finding: the manifest's hygiene findings, then the stale ones.
        package var findings: [HygieneFinding] { manifest.findings + staleFindings }
        /// Whether a finding fails the command (`--strict`).
        package var strict = false

        package var exitStatus: Int32 { Self.status(ok: !(strict && !findings.isEmpty)) }
    }

    package init(context: String, historyLocation: String = HistoryStore.defaultLocation()) {
        self.context = context
        self.historyLocation = historyLocation
    }

    /// Fingerprints the context, compares file times, and writes `emit` into the context.
    /// - Throws: `badInput`/`notFound` for an unreadable context or ignore file, an unknown `against` record.
    package func run() throws -> Result {
        var fp = Fingerprinter(context: context)
        fp.dockerfile = dockerfile
        fp.ignoreFile = ignoreFile
        fp.semantics = semantics
        fp.largeFileThreshold = largeFileThreshold
        fp.excludeOwnOutputs(emit: emit, output: output, digestFile: digestFile)
        let check = StaleCopyCheck(against: against, storeLocation: historyLocation)
        fp.recordFileTimes = check.needsFileTimes(recording: record)
        let manifest = try fp.run()
        let outcome = try check.run(manifest, context: context, predictCache: !quiet)
        if let emit { try Fingerprinter.writeEmitted(manifest, to: emit, context: context) }
        return Result(manifest: manifest, staleFindings: outcome.findings, cacheLines: outcome.cacheLines, notes: outcome.notes, strict: strict)
    }

    /// The output of `result` in `format` (the manifest JSON in chunks, so a large one is not copied whole).
    package func render(_ result: Result, format: Format) -> [[UInt8]] {
        switch format {
        case .json: return result.manifest.jsonChunks()
        case .sha256sum: return [ManifestFormats.sha256sum(result.manifest.tree)]
        case .mtree: return [ManifestFormats.mtree(result.manifest.tree)]
        case .sarif:
            var withStale = result.manifest
            withStale.findings = result.findings
            return [SARIF.fingerprint(withStale, context: context, placement: SARIFPlacement(root: sarifRoot, context: context))]
        }
    }

    /// Adds the manifest to the history store with the context's file times (for the next `against`).
    /// Writes what a fingerprint produces, in this order: the manifest in `format` (or only the digest line) to
    /// `output`, the signed context attestation, the digest file, then the history record when asked (last: a build
    /// is recorded only once everything it names was written). Returns the record.
    package func write(_ result: Result, format: Format, digestOnly: Bool,
                       attestation: (path: String, key: Ed25519PrivateKey)?) throws -> HistoryEntry? {
        let digestLine = Array((result.manifest.rootDigest.prefixed + "\n").utf8)
        try writeOutput(chunks: digestOnly ? [digestLine] : render(result, format: format), to: output)
        if let attestation {
            try writeOutput(try Attestations.context(result.manifest, name: context).envelope(key: attestation.key).jsonBytes(), to: attestation.path)
        }
        if let digestFile { try writeOutput(digestLine, to: digestFile) }
        return record ? try recordInHistory(result) : nil
    }

    package func recordInHistory(_ result: Result) throws -> HistoryEntry {
        let store = try HistoryStore(at: historyLocation, create: true)
        let entry = try store.add(result.manifest, tags: recordTags)
        try store.saveFileTimes(FileTimes(tree: result.manifest.tree, context: context), record: entry.record)
        return entry
    }
}
