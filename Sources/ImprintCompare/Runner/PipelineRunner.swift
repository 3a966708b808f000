import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How a step of a pipeline run ended. The raw value is the name used in reports.
package enum PipelineStepStatus: String, Sendable, CaseIterable {
    case succeeded, failed, interrupted
    case timedOut = "timed-out"
    /// Skipped: a recorded successful run with the same materials, command and environment, whose products
    /// are present and byte-identical.
    case cached
    /// Not started: an input differs from what the step that produced it recorded.
    case custodyViolation = "custody-violation"
    /// Not started: the pipeline stopped, or a step it needs did not succeed.
    case notRun = "not-run"

    package init(_ s: StepStatus) {
        switch s {
        case .succeeded: self = .succeeded
        case .failed: self = .failed
        case .interrupted: self = .interrupted
        case .timedOut: self = .timedOut
        }
    }

    package var isSuccess: Bool { self == .succeeded || self == .cached }
}

/// An input whose bytes differ from what the step that produced it recorded.
package struct CustodyViolation: Sendable, CustomStringConvertible {
    package var path: String
    package var producer: String
    package var producedDigest: Digest?
    package var consumer: String
    package var foundDigest: Digest?

    package var description: String {
        "chain of custody broken: \(path) was produced by step '\(producer)' as \(producedDigest?.prefixed ?? "missing") " +
        "but step '\(consumer)' found \(foundDigest?.prefixed ?? "it missing")"
    }
}

/// What happened to one step in a pipeline run.
package struct StepOutcome: Sendable {
    package var name: String
    package var status: PipelineStepStatus
    /// Why it ran or was skipped: "cache hit", "no previous run", "materials changed: src", "cache off"…
    package var why: String
    /// Why it ended as it did, when not succeeded ("the command exited with status 2").
    package var detail: String?
    /// The record of the run, or for a cache hit the recorded run that was reused.
    package var record: StepRecord?
    package var violation: CustodyViolation?

    package var cached: Bool { status == .cached }
    package var durationMs: Int64 { status == .cached ? 0 : (record?.durationMs ?? 0) }
}

/// The result of `imprint pipeline`, as written by `--json` (`schemas/pipeline-run.schema.json`).
package struct PipelineRun: Sendable {
    package var file: String
    package var startTime: String
    package var endTime: String
    package var durationMs: Int64
    /// Steps in file order (only those selected with `--step`).
    package var steps: [StepOutcome]
    /// The signal that interrupted the run.
    package var signal: Int32?

    package enum Status: String, Sendable { case succeeded, failed, interrupted }

    package var status: Status {
        if signal != nil { return .interrupted }
        return steps.allSatisfy { $0.status.isSuccess } ? .succeeded : .failed
    }

    /// 0 all steps succeeded or were cached; 1 a step failed, timed out, left an output out or broke the chain
    /// of custody; 128 + N when imprint was interrupted by signal N.
    package var exitStatus: Int32 {
        if let signal { return 128 + signal }
        return status == .succeeded ? 0 : 1
    }

    /// Writes the run's summary to `RECORD_DIR/pipeline-run.json` (atomically) beside the step records.
    /// - Returns: nil, or a warning: a summary that cannot be written does not fail a run whose steps ran.
    package func save(recordDir: String) -> String? {
        do {
            try makeDirectories(recordDir)
            try AtomicFile.write(jsonBytes(), to: (recordDir as NSString).appendingPathComponent("pipeline-run.json"))
            return nil
        } catch {
            return "cannot write the run summary to \(recordDir): \((error as? ImprintError)?.message ?? JSONRead.reason(error))"
        }
    }

    package func jsonBytes() -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.int("schemaVersion", 1)
        w.string("kind", "imprint.pipeline-run")
        w.string("imprint", Imprint.version)
        w.string("file", file)
        w.string("status", status.rawValue)
        w.int("exitStatus", exitStatus)
        w.string("startTime", startTime)
        w.string("endTime", endTime)
        w.int("durationMs", durationMs)
        w.beginArray("steps")
        for s in steps {
            w.beginObject()
            w.string("name", s.name)
            w.string("status", s.status.rawValue)
            w.bool("cached", s.cached)
            w.string("why", s.why)
            w.string("detail", s.detail)
            w.int("durationMs", s.durationMs)
            if let r = s.record {
                w.string("materialsDigest", r.materialsDigest.prefixed)
                w.string("productsDigest", r.productsDigest.prefixed)
                r.write(to: &w, key: "record")
            }
            if let v = s.violation {
                w.beginObject("custodyViolation")
                w.string("path", v.path)
                w.string("producer", v.producer)
                if let d = v.producedDigest { w.string("producedDigest", d.prefixed) } else { w.null("producedDigest") }
                w.string("consumer", v.consumer)
                if let d = v.foundDigest { w.string("foundDigest", d.prefixed) } else { w.null("foundDigest") }
                w.endObject()
            }
            w.endObject()
        }
        w.endArray()
        w.endObject()
        w.end()
        return w.bytes
    }
    package init(file: String, startTime: String, endTime: String, durationMs: Int64, steps: [StepOutcome], signal: Int32? = nil) {
        self.file = file; self.startTime = startTime; self.endTime = endTime; self.durationMs = durationMs; self.steps = steps; self.signal = signal
    }
}

/// Receives a pipeline's live output and progress. Called from several threads; implementations serialise.
package protocol PipelineObserver: AnyObject {
    /// One chunk of a step's output (not split into lines).
    func output(step: String, stream: ChildProcess.Stream, bytes: UnsafeRawBufferPointer)
    func started(step: String, why: String)
    func finished(_ outcome: StepOutcome)
}

/// Runs a pipeline's steps as a DAG: independent steps side by side up to `jobs`, each through `StepRunner`,
/// checking the chain of custody before each step and skipping cached ones.
// why @unchecked Sendable: the scheduling state is guarded by one lock; steps run on their own threads and
// report back through it.
package final class PipelineRunner: @unchecked Sendable {
    // why @unchecked: all mutable state is guarded by `cond`.
    package struct Options: Sendable {
        package var jobs = ProcessInfo.processInfo.activeProcessorCount
        package var keepGoing = false
        package var noCache = false
        /// Run only this step and what it needs.
        package var target: String?
        package var recordDir = ".imprint/steps"
        package var grace: Double = 5
        /// Writes each step's attestations after it ran.
        /// Writes each step's attestations after it ran (the caller supplies it: `StepAttestor`).
        package var attestor: (any StepAttesting)?
        package init() {}
    }

    package let file: PipelineFile
    package let options: Options
    package let sinks: [StepRecordSink]
    package weak var observer: PipelineObserver?
    private let store: FileStepRecordSink

    private let cond = NSCondition()
    private var outcomes: [String: StepOutcome] = [:]
    private var running: [String: StepRunner] = [:]
    private var launched = Set<String>()
    /// Products of finished steps in completion order, for custody checks.
    private var produced: [(step: String, index: ArtifactIndex)] = []
    private var stopping: String?
    private var signal: Int32?
    private var selected = Set<String>()

    package init(file: PipelineFile, options: Options, sinks: [StepRecordSink], observer: PipelineObserver?) {
        self.file = file
        self.options = options
        self.sinks = sinks
        self.observer = observer
        self.store = FileStepRecordSink(directory: options.recordDir)
    }

    /// Steps running now, with their start on the monotonic clock, for a progress line.
    package func runningSteps() -> [String] {
        cond.lock(); defer { cond.unlock() }
        return running.keys.sorted()
    }

    /// Stops the run: nothing more starts and `signal` is forwarded to every running step.
    package func interrupt(_ sig: Int32) {
        cond.lock()
        if signal == nil { signal = sig }
        if stopping == nil { stopping = "imprint received \(signalName(sig))" }
        let r = running
        cond.broadcast()
        cond.unlock()
        for (_, runner) in r { runner.terminate(.interrupted(signal: sig, why: "imprint received \(signalName(sig))"), signal: sig, grace: options.grace) }
    }

    /// Runs the selected steps to the end and returns what happened.
    /// - Throws: `ImprintError.badInput` when `--step` names no step.
    package func run() throws -> PipelineRun {
        selected = try file.selection(options.target)
        // Created before anything is fingerprinted, so that an input of "." looks the same on the first run
        // as on later ones (the record directory itself is always left out).
        try makeDirectories(options.recordDir)
        let order = file.steps.filter { selected.contains($0.name) }
        // Each step's exclude patterns, compiled before anything runs: a bad one stops the run here.
        var excludes: [String: DockerIgnore] = [:]
        for s in order {
            excludes[s.name] = try ArtifactHasher.patterns(s.exclude, origin: "\(file.path): step '\(s.name)' exclude")
        }
        let start = Clock.rfc3339Now()
        let t0 = Clock.monotonicMs()
        cond.lock()
        while true {
            if stopping == nil {
                for s in order where !launched.contains(s.name) && running.count < max(1, options.jobs) {
                    let deps = s.needs.map { outcomes[$0] }
                    if deps.contains(where: { $0 == nil }) { continue }
                    launched.insert(s.name)
                    if let bad = deps.first(where: { !$0!.status.isSuccess }) {
                        let o = StepOutcome(name: s.name, status: .notRun, why: "needs '\(bad!.name)', which \(bad!.status == .notRun ? "did not run" : bad!.status.rawValue)")
                        outcomes[s.name] = o
                        observer?.finished(o)
                        continue
                    }
                    let runner = makeRunner(s, exclude: excludes[s.name] ?? .empty)
                    running[s.name] = runner
                    let ancestors = ancestorsOf(s.name)
                    let t = Thread { [self] in
                        let o = execute(s, runner, ancestors: ancestors)
                        finish(o, runner)
                    }
                    t.start()
                }
            }
            let pending = order.contains { !launched.contains($0.name) }
            if running.isEmpty && (stopping != nil || !pending) { break }
            if running.isEmpty && pending && stopping == nil {
                // Nothing runs and nothing could start: only possible when needs are outside the selection.
                break
            }
            cond.wait()
        }
        for s in order where outcomes[s.name] == nil {
            outcomes[s.name] = StepOutcome(name: s.name, status: .notRun, why: stopping.map { "pipeline stopped: \($0)" } ?? "not reached")
        }
        let result = PipelineRun(file: file.path, startTime: start, endTime: Clock.rfc3339Now(), durationMs: Clock.monotonicMs() - t0,
                                 steps: order.map { outcomes[$0.name]! }, signal: signal)
        cond.unlock()
        return result
    }

    private func makeRunner(_ s: PipelineStep, exclude ignore: DockerIgnore) -> StepRunner {
        var spec = StepSpec(name: s.name, argv: s.argv, materials: s.inputs, products: s.outputs)
        spec.exclude = s.exclude
        spec.setEnvironment = s.env
        spec.recordEnvironment = s.passEnv
        spec.timeout = s.timeout
        spec.detached = true
        let hasher = ArtifactHasher(exclude: ignore, alwaysExcluded: [options.recordDir],
                                    workers: max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, min(options.jobs, 2))))
        let runner = StepRunner(spec: spec, hasher: hasher)
        let name = s.name
        runner.onOutput = { [weak self] stream, buf in self?.observer?.output(step: name, stream: stream, bytes: buf) }
        return runner
    }

    private func ancestorsOf(_ name: String) -> Set<String> {
        var out = Set<String>()
        var todo = file.step(name)?.needs ?? []
        while let n = todo.popLast() { if out.insert(n).inserted { todo += file.step(n)?.needs ?? [] } }
        return out
    }

    /// Called with the lock not held, on the step's thread.
    private func finish(_ o: StepOutcome, _ runner: StepRunner) {
        cond.lock()
        outcomes[o.name] = o
        running[o.name] = nil
        var toStop: [StepRunner] = []
        if o.status.isSuccess, let r = o.record {
            produced.append((o.name, ArtifactIndex(artifacts: r.products, trees: o.cached ? cachedTrees[o.name] ?? [:] : runner.productTrees)))
        } else if stopping == nil && (o.status == .custodyViolation || (!options.keepGoing && o.status != .notRun)) {
            stopping = o.status == .custodyViolation ? "chain of custody broken at step '\(o.name)'" : "step '\(o.name)' \(o.status.rawValue)"
            toStop = Array(running.values)
        }
        let why = stopping ?? ""
        // Reported under the lock so that a step is reported finished before any step that needs it starts.
        observer?.finished(o)
        cond.broadcast()
        cond.unlock()
        for r in toStop { r.terminate(.interrupted(signal: SIGTERM, why: "stopped because \(why)"), grace: options.grace) }
    }

    private var cachedTrees: [String: [String: Tree]] = [:]

    /// Custody check, cache check, run. Never throws: errors become a failed outcome.
    private func execute(_ s: PipelineStep, _ runner: StepRunner, ancestors: Set<String>) -> StepOutcome {
        do {
            let materials = try runner.hasher.fingerprint(s.inputs)
            if let v = try custodyCheck(s, materials: materials, ancestors: ancestors) {
                return StepOutcome(name: s.name, status: .custodyViolation, why: "chain of custody", detail: v.description, violation: v)
            }
            if let missing = materials.artifacts.first(where: { $0.kind == .missing }) {
                return StepOutcome(name: s.name, status: .failed, why: "input missing", detail: "input \(missing.path) does not exist")
            }
            runner.prefingerprinted = materials
            let why: String
            if !s.cache {
                why = "cache off"
            } else if options.noCache {
                why = "--no-cache"
            } else {
                let (hit, reason, record, trees) = try cacheCheck(s, runner: runner, materials: materials.artifacts)
                if hit, let record {
                    cond.lock(); cachedTrees[s.name] = trees; cond.unlock()
                    return StepOutcome(name: s.name, status: .cached, why: reason, record: record)
                }
                why = reason
            }
            cond.lock()
            let stopped = stopping
            cond.unlock()
            if let stopped { return StepOutcome(name: s.name, status: .notRun, why: "pipeline stopped: \(stopped)") }
            observer?.started(step: s.name, why: why)
            let record = try runner.run()
            var sinkError: String?
            for sink in sinks {
                do { try sink.add(record) } catch { sinkError = "cannot store the step record: \(error)" }
            }
            if let attestor = options.attestor {
                do { try attestor.attest(record, runner: runner) } catch { sinkError = "cannot write the step's attestations: \(error)" }
            }
            var o = StepOutcome(name: s.name, status: PipelineStepStatus(record.status), why: why, detail: record.reason, record: record)
            if let sinkError, o.status == .succeeded { o.status = .failed; o.detail = sinkError }
            return o
        } catch {
            if runner.wasStopped {
                cond.lock(); defer { cond.unlock() }
                return StepOutcome(name: s.name, status: .notRun, why: "pipeline stopped: \(stopping ?? "")")
            }
            return StepOutcome(name: s.name, status: .failed, why: "error", detail: "\(error)")
        }
    }

    /// Compares each input with what the steps that produced it recorded: steps this step needs (in the order
    /// they finished) and, for producers outside this run, their latest successful record.
    private func custodyCheck(_ s: PipelineStep, materials: (artifacts: [Artifact], trees: [String: Tree]),
                              ancestors: Set<String>) throws -> CustodyViolation? {
        var sources: [(step: String, index: ArtifactIndex)] = []
        cond.lock()
        sources = produced.filter { ancestors.contains($0.step) }
        cond.unlock()
        for p in file.steps where !selected.contains(p.name) && !p.outputs.isEmpty {
            // A producer not part of this run: the run this one resumes is in the record directory.
            if let r = try? store.latest(p.name), r.status == .succeeded {
                sources.insert((p.name, ArtifactIndex(artifacts: r.products, trees: [:])), at: 0)
            }
        }
        let consumer = ArtifactIndex(artifacts: materials.artifacts, trees: materials.trees)
        // Expected digest per path; a later producer overrides an earlier one.
        var expected: [String: (Digest?, String)] = [:]
        var order: [String] = []
        for (step, index) in sources {
            for (path, a) in index.artifacts {
                if expected[path] == nil { order.append(path) }
                expected[path] = (a.digest, step)
            }
            for m in materials.artifacts where index.artifacts[m.path] == nil {
                if case .some(let d) = index.digest(of: m.path) {
                    if expected[m.path] == nil { order.append(m.path) }
                    expected[m.path] = (d, step)
                }
            }
        }
        for path in order {
            let (want, producer) = expected[path]!
            guard case .some(let found) = consumer.digest(of: path) else { continue }
            if found != want {
                return CustodyViolation(path: path, producer: producer, producedDigest: want, consumer: s.name, foundDigest: found)
            }
        }
        return nil
    }

    /// Whether a recorded successful run can stand for this one; the reason either way.
    private func cacheCheck(_ s: PipelineStep, runner: StepRunner, materials: [Artifact])
        throws -> (Bool, String, StepRecord?, [String: Tree]) {
        let record: StepRecord?
        do { record = try store.latest(s.name) } catch { return (false, "previous record unreadable", nil, [:]) }
        guard let r = record else { return (false, "no previous run", nil, [:]) }
        guard r.status == .succeeded else { return (false, "previous run \(r.status.rawValue)", nil, [:]) }
        guard r.command == s.argv else { return (false, "command changed", nil, [:]) }
        let env = runner.spec.declaredEnvironment()
        guard r.environment == env else {
            let changed = Set(r.environment.keys).union(env.keys).sorted().first { r.environment[$0] != env[$0] } ?? "?"
            return (false, "environment changed: \(changed)", nil, [:])
        }
        let now = Artifact.combinedDigest(materials)
        guard r.materialsDigest == now else {
            let old = Dictionary(r.materials.map { ($0.path, $0.digest) }, uniquingKeysWith: { a, _ in a })
            let changed = materials.first { old[$0.path] != .some($0.digest) }?.path
            return (false, "materials changed" + (changed.map { ": \($0)" } ?? ""), nil, [:])
        }
        guard Set(r.products.map(\.path)) == Set(s.outputs) else { return (false, "outputs changed", nil, [:]) }
        let (current, trees) = try runner.hasher.fingerprint(r.products.map(\.path))
        for (old, cur) in zip(r.products, current) {
            if cur.kind == .missing { return (false, "product \(old.path) missing", nil, [:]) }
            if cur.digest != old.digest { return (false, "product \(old.path) changed", nil, [:]) }
        }
        return (true, "cache hit", r, trees)
    }
}

/// Something that attests a step after it ran (in-toto links): supplied by the caller, so running a step needs no
/// knowledge of attestation formats.
package protocol StepAttesting: Sendable {
    /// - Returns: the paths written.
    @discardableResult
    func attest(_ record: StepRecord, runner: StepRunner) throws -> [String]
}
