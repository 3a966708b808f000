import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What to run as one step and what to fingerprint around it.
package struct StepSpec: Sendable {
    package var name: String
    package var argv: [String]
    /// Paths fingerprinted before the command (files or directories, relative to the working directory).
    package var materials: [String]
    /// Paths fingerprinted after the command.
    package var products: [String]
    /// Exclusion patterns (`.dockerignore` syntax) applied inside material and product directories.
    package var exclude: [String] = []
    /// Variables set for the child (and recorded).
    package var setEnvironment: [String: String] = [:]
    /// Variables passed through from imprint's environment and recorded (unset ones recorded as null).
    package var recordEnvironment: [String] = []
    /// Seconds after which the child is terminated and the step recorded as timed out.
    package var timeout: Double?
    /// Run the child in its own process group and give it /dev/null as stdin (pipelines: steps run side by side).
    package var detached = false
    /// A declared product that is missing after a successful command fails the step.
    package var requireProducts = true

    package init(name: String, argv: [String], materials: [String], products: [String]) {
        self.name = name; self.argv = argv; self.materials = materials; self.products = products
    }

    /// The environment as recorded: declared names with their values (nil when unset).
    package func declaredEnvironment(from env: [String: String] = ProcessInfo.processInfo.environment) -> [String: String?] {
        var out: [String: String?] = [:]
        for n in recordEnvironment { out[n] = .some(env[n]) }
        for (k, v) in setEnvironment { out[k] = .some(v) }
        return out
    }

    /// Step names become file names in the record directory.
    package static func validateName(_ name: String) throws {
        let ok = !name.isEmpty && name.count <= 100 && !name.hasPrefix(".") && name.unicodeScalars.allSatisfy {
            CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0)
        }
        if !ok { throw ImprintError.badInput("invalid step name \"\(name)\": use letters, digits, '-', '_' and '.', not starting with '.'") }
    }
}

/// Runs one step: fingerprints materials, runs the command (output streamed and hashed), fingerprints the
/// products and returns the record. Cancellation (signals, timeouts, fail-fast) goes through `terminate`.
// why @unchecked Sendable: configured before `run`; the child and the termination reason are guarded by `lock`.
package final class StepRunner: @unchecked Sendable {
    // why @unchecked: mutable state (`child`, `stopReason`) is guarded by `lock`.
    package enum StopReason: Sendable, Equatable {
        case interrupted(signal: Int32, why: String)
        case timedOut(seconds: Double)
    }

    package let spec: StepSpec
    package let hasher: ArtifactHasher
    /// Called with each chunk of the child's output, from reader threads.
    package var onOutput: (ChildProcess.Stream, UnsafeRawBufferPointer) -> Void = { _, _ in }
    /// Materials already fingerprinted by the caller (a pipeline checks custody and cache first).
    package var prefingerprinted: (artifacts: [Artifact], trees: [String: Tree])?

    private let lock = NSLock()
    private var child: ChildProcess?
    private var stopReason: StopReason?
    /// The products' trees after the run, for custody lookups of paths inside product directories.
    package private(set) var productTrees: [String: Tree] = [:]

    package init(spec: StepSpec, hasher: ArtifactHasher) {
        self.spec = spec
        self.hasher = hasher
    }

    /// Stops the step: forwards `signal` to the child (SIGKILL follows after `grace` seconds).
    package func terminate(_ reason: StopReason, signal: Int32 = SIGTERM, grace: Double = 5) {
        lock.lock()
        if stopReason == nil { stopReason = reason }
        let c = child
        lock.unlock()
        guard let c else { return }
        c.kill(signal)
        if c.ownProcessGroup {
            DispatchQueue.global().asyncAfter(deadline: .now() + grace) { c.kill(SIGKILL) }
        }
    }

    /// True once `terminate` was called.
    package var wasStopped: Bool {
        lock.lock(); defer { lock.unlock() }
        return stopReason != nil
    }

    /// Fingerprints the materials, unless the caller did.
    package func fingerprintMaterials() throws -> (artifacts: [Artifact], trees: [String: Tree]) {
        if let prefingerprinted { return prefingerprinted }
        let m = try hasher.fingerprint(spec.materials)
        if let missing = m.artifacts.first(where: { $0.kind == .missing }) {
            throw ImprintError(.notFound, "step \(spec.name): material \(missing.path) does not exist")
        }
        prefingerprinted = m
        return m
    }

    /// Runs the step to its end.
    /// - Throws: `ImprintError` when a material is missing or unreadable, or the command cannot be started;
    ///   a command that fails is not an error: it gives a record with status `failed`.
    package func run(environment base: [String: String] = ProcessInfo.processInfo.environment) throws -> StepRecord {
        let materials = try fingerprintMaterials().artifacts
        var env = base
        for (k, v) in spec.setEnvironment { env[k] = v }
        let outHash = SHA256(), errHash = SHA256()
        var outBytes: UInt64 = 0, errBytes: UInt64 = 0
        let forward = onOutput
        lock.lock()
        if let stopReason {
            lock.unlock()
            throw ImprintError(.failure, "step \(spec.name) was stopped before it started (\(stopReason))")
        }
        let start = Clock.rfc3339Now()
        let t0 = Clock.monotonicMs()
        let c: ChildProcess
        do {
            c = try ChildProcess(argv: spec.argv, environment: env, ownProcessGroup: spec.detached, stdinNull: spec.detached) { stream, buf in
                // Each stream has one reader thread, so its hasher and counter are touched by one thread only.
                if stream == .stdout { outHash.update(buf); outBytes += UInt64(buf.count) } else { errHash.update(buf); errBytes += UInt64(buf.count) }
                forward(stream, buf)
            }
        } catch {
            lock.unlock()
            throw error
        }
        child = c
        lock.unlock()
        var timer: DispatchWorkItem?
        if let t = spec.timeout {
            let item = DispatchWorkItem { [weak self] in self?.terminate(.timedOut(seconds: t)) }
            DispatchQueue.global().asyncAfter(deadline: .now() + t, execute: item)
            timer = item
        }
        let termination = c.wait()
        timer?.cancel()
        let end = Clock.rfc3339Now()
        let duration = Clock.monotonicMs() - t0
        lock.lock()
        let stop = stopReason
        lock.unlock()

        let (products, trees) = try hasher.fingerprint(spec.products)
        productTrees = trees
        var exitCode: Int32?, signal: Int32?
        switch termination {
        case .exited(let code): exitCode = code
        case .signaled(let s): signal = s
        }
        var status: StepStatus
        var reason: String?
        switch stop {
        case .interrupted(let s, let why)?:
            status = .interrupted
            reason = "\(why) (\(signalName(s)) sent to the command)"
        case .timedOut(let secs)?:
            status = .timedOut
            reason = "terminated after the \(formatSeconds(secs)) timeout"
        case nil:
            if exitCode == 0 {
                status = .succeeded
                if spec.requireProducts, let missing = products.first(where: { $0.kind == .missing }) {
                    status = .failed
                    reason = "output \(missing.path) was declared but not produced"
                }
            } else {
                status = .failed
                reason = exitCode.map { "the command exited with status \($0)" } ?? "the command was killed by \(signalName(signal ?? 0))"
            }
        }
        return StepRecord(name: spec.name, command: spec.argv, workingDirectory: FileManager.default.currentDirectoryPath,
                          status: status, exitCode: exitCode, signal: signal, reason: reason, startTime: start,
                          endTime: end, durationMs: duration, materials: materials, products: products,
                          stdout: StreamDigest(digest: outHash.finish(), bytes: outBytes),
                          stderr: StreamDigest(digest: errHash.finish(), bytes: errBytes),
                          environment: spec.declaredEnvironment(from: base), exclude: spec.exclude)
    }
}

/// `SIGTERM`, `SIGINT`… for messages.
package func signalName(_ s: Int32) -> String {
    switch s {
    case SIGINT: return "SIGINT"
    case SIGTERM: return "SIGTERM"
    case SIGHUP: return "SIGHUP"
    case SIGKILL: return "SIGKILL"
    case SIGQUIT: return "SIGQUIT"
    case SIGPIPE: return "SIGPIPE"
    case SIGSEGV: return "SIGSEGV"
    case SIGABRT: return "SIGABRT"
    default: return "signal \(s)"
    }
}

