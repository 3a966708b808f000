import Foundation

/// What `imprint run` does, as one call: the step's materials fingerprinted, the command run with its output
/// streamed and hashed, the products fingerprinted, and the record written to every sink (`RECORD_DIR/NAME.json`,
/// and the history store when there is one), its attestations signed. SIGINT, SIGTERM and SIGHUP sent to imprint
/// meanwhile go to the command, and the step is recorded as interrupted.
package struct StepRequest {
    package var spec: StepSpec
    package var recordDir = ".imprint/steps"
    /// Where step records also go (a history store; only when it exists).
    package var historyLocation = HistoryStore.defaultLocation()
    /// Signs the step's attestations (`--attest DIR --key KEY`).
    package var attestor: (any StepAttesting)?
    /// Receives the command's output as it is produced.
    package var onOutput: (ChildProcess.Stream, UnsafeRawBufferPointer) -> Void = { _, _ in }

    /// What a step did.
    package struct Outcome {
        package var record: StepRecord
        /// The status `imprint run` exits with: the command's (128 + N after signal N), or 1 when the command
        /// succeeded but the step did not (a declared product is missing).
        package var exitStatus: Int32
        /// The runner, holding the material and product trees (the command line keeps it until exit).
        package var runner: StepRunner
    }

    package init(spec: StepSpec) { self.spec = spec }

    /// Runs and records the step.
    /// - Throws: `badInput` for an invalid exclude pattern; `ImprintError` when a material is missing, the command
    ///   cannot be started or a record cannot be written. A command that fails is not an error (see `Outcome`).
    package func run() throws -> Outcome {
        let hasher = ArtifactHasher(exclude: try ArtifactHasher.patterns(spec.exclude, origin: "--exclude"), alwaysExcluded: [recordDir])
        let runner = StepRunner(spec: spec, hasher: hasher)
        // Created first so that a material "." looks the same on the first run as on later ones.
        try makeDirectories(recordDir)
        runner.onOutput = onOutput
        let forwarder = SignalForwarder { sig in
            runner.terminate(.interrupted(signal: sig, why: "imprint received \(signalName(sig))"), signal: sig)
        }
        let record = try withExtendedLifetime(forwarder) { try runner.run() }
        for sink in try FileStepRecordSink.standardSinks(recordDir: recordDir, history: historyLocation) { try sink.add(record) }
        if let attestor { _ = try attestor.attest(record, runner: runner) }
        var status = record.exitStatus
        if status == 0 && record.status != .succeeded { status = 1 }
        return Outcome(record: record, exitStatus: status, runner: runner)
    }
}
