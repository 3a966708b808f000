import ArgumentParser
import Foundation
import ImprintCore
#if canImport(Glibc)
import Glibc
#endif

extension ImprintCommand {
    struct Pipeline: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pipeline",
            abstract: "Run a pipeline of steps as a DAG, with chain of custody and content-addressed skipping.",
            discussion: """
            Reads FILE (YAML): steps with run (a /bin/sh -c command), inputs, outputs, needs, env (a mapping sets \
            variables, a list passes them through), timeout (30s, 5m), cache (true/false) and exclude \
            (.dockerignore syntax). Steps run in the current directory; independent steps run side by side.

            Chain of custody: an input that an earlier step produced must still have the bytes that step recorded; \
            a difference stops the pipeline, naming the path, both digests and both steps. A step with cache: true \
            is skipped when a recorded successful run had the same materials, command and environment and its \
            products are present and byte-identical.

            Each step that ran leaves RECORD_DIR/NAME.json (schemas/step-record.schema.json); the run is written to \
            RECORD_DIR/pipeline-run.json and, with --format json, to stdout (schemas/pipeline-run.schema.json). With \
            $GITHUB_STEP_SUMMARY set, a Markdown table is appended to it.

            Examples:
              imprint pipeline                       # ci/pipeline.yml
              imprint pipeline ci/pipeline.yml --step test --jobs 1
              imprint pipeline --keep-going --no-cache --format json > run.json

            Exit status: 0 every step succeeded or was cached; 1 a step failed, timed out, left a declared output \
            out or broke the chain of custody; 2 the pipeline file is invalid (YAML with line and column, unknown \
            keys, a needs cycle); 128 + N when interrupted by signal N (running steps are recorded as interrupted).
            """
        )

        @Argument(help: "The pipeline file.", completion: .file(extensions: ["yml", "yaml"]))
        var file: String = "ci/pipeline.yml"

        @Option(name: .shortAndLong, help: "Steps to run at once (default: the number of cores).")
        var jobs: Int?

        @Flag(help: "After a step fails, keep running the steps that do not depend on it.")
        var keepGoing = false

        @Flag(help: "Run every step even when a cached run would do.")
        var noCache = false

        @Option(help: "Run only this step and the steps it needs.")
        var step: String?

        @Option(help: "Where step records are written and looked up.", completion: .directory)
        var recordDir: String = ".imprint/steps"

        @OptionGroup var output: TextOrJSONFormat
        var json: Bool { output.json }

        @Flag(name: .shortAndLong, help: "Do not print the steps' output (it is still hashed and recorded).")
        var quiet = false

        func run() throws {
            var status: Int32 = 0
            try runReportingErrors {
                if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
                let pipeline = try PipelineFile.load(file)
                for w in pipeline.warnings() { Console.err("imprint: warning: \(w)") }
                var options = PipelineRunner.Options()
                options.jobs = jobs ?? ProcessInfo.processInfo.activeProcessorCount
                options.keepGoing = keepGoing
                options.noCache = noCache
                options.target = step
                options.recordDir = recordDir
                let printer = PipelinePrinter(toStderr: json, quiet: quiet)
                let runner = PipelineRunner(file: pipeline, options: options, sinks: recordSinks(recordDir: recordDir), observer: printer)
                printer.runner = runner
                let forwarder = SignalForwarder { sig in
                    printer.note("imprint: \(signalName(sig)) received: stopping running steps")
                    runner.interrupt(sig)
                }
                printer.startProgress(total: try pipeline.selection(step).count)
                let result = try runner.run()
                printer.stopProgress()
                withExtendedLifetime(forwarder) {}
                let bytes = result.jsonBytes()
                do {
                    try FileManager.default.createDirectory(atPath: recordDir, withIntermediateDirectories: true)
                    try AtomicFile.write(bytes, to: (recordDir as NSString).appendingPathComponent("pipeline-run.json"))
                } catch {
                    Console.err("imprint: warning: cannot write the run summary to \(recordDir): \(error)")
                }
                printer.table(result)
                if let summary = ProcessInfo.processInfo.environment["GITHUB_STEP_SUMMARY"], !summary.isEmpty {
                    appendGitHubSummary(result, to: summary)
                }
                if json { Console.outRaw(bytes) }
                status = result.exitStatus
            }
            if status != 0 { throw ExitCode(status) }
        }
    }
}

/// Prints a pipeline's live output with a `[step] ` prefix per line, a progress line on a terminal, and the
/// final table.
final class PipelinePrinter: PipelineObserver, @unchecked Sendable {
    // why @unchecked: all mutable state is guarded by `lock`.
    private let lock = NSLock()
    private let outFD: Int32
    private let quiet: Bool
    private var partial: [String: [UInt8]] = [:]
    private var startedAt: [String: Int64] = [:]
    private var done = 0
    private var total = 0
    private var progressShown = false
    private var ticker: DispatchSourceTimer?
    private let progressEnabled = Console.stderrIsTTY
    weak var runner: PipelineRunner?

    init(toStderr: Bool, quiet: Bool) {
        outFD = toStderr ? 2 : 1
        self.quiet = quiet
    }

    private func write(_ fd: Int32, _ bytes: [UInt8]) {
        try? AtomicFile.writeAll(fd, bytes, path: fd == 1 ? "stdout" : "stderr")
    }

    /// Clears the progress line before other output (lock held).
    private func clearProgress() {
        if progressShown { write(2, Array("\r\u{1B}[K".utf8)); progressShown = false }
    }

    func note(_ line: String) {
        lock.lock(); defer { lock.unlock() }
        clearProgress()
        write(2, Array((line + "\n").utf8))
    }

    func output(step: String, stream: ChildProcess.Stream, bytes: UnsafeRawBufferPointer) {
        if quiet { return }
        let key = step + (stream == .stdout ? ">1" : ">2")
        let fd: Int32 = stream == .stdout ? outFD : 2
        lock.lock(); defer { lock.unlock() }
        var buf = partial[key, default: []]
        buf.append(contentsOf: bytes)
        var out: [UInt8] = []
        var start = 0
        while let nl = buf[start...].firstIndex(of: 0x0A) {
            out.append(contentsOf: Array("[\(step)] ".utf8))
            out.append(contentsOf: buf[start...nl])
            start = nl + 1
        }
        partial[key] = Array(buf[start...])
        if !out.isEmpty { clearProgress(); write(fd, out) }
    }

    func started(step: String, why: String) {
        lock.lock(); defer { lock.unlock() }
        startedAt[step] = Clock.monotonicMs()
        clearProgress()
        write(2, Array("imprint: ▶ \(step) (\(why))\n".utf8))
    }

    func finished(_ o: StepOutcome) {
        lock.lock(); defer { lock.unlock() }
        clearProgress()
        for stream in [">1", ">2"] {
            if let rest = partial.removeValue(forKey: o.name + stream), !rest.isEmpty {
                write(stream == ">1" ? outFD : 2, Array("[\(o.name)] ".utf8) + rest + [0x0A])
            }
        }
        done += 1
        var line = "imprint: \(o.status.isSuccess ? "✔" : "✖") \(o.name) \(o.status.rawValue)"
        if o.status == .cached { line += " (\(o.why))" } else if o.status != .notRun && o.record != nil { line += " in \(formatMs(o.durationMs))" }
        if let d = o.detail, !o.status.isSuccess { line += ": \(d)" } else if o.status == .notRun { line += ": \(o.why)" }
        write(2, Array((line + "\n").utf8))
    }

    func startProgress(total: Int) {
        self.total = total
        guard progressEnabled else { return }
        let t = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "imprint.progress"))
        t.schedule(deadline: .now() + 0.5, repeating: 0.5)
        t.setEventHandler { [weak self] in self?.drawProgress() }
        t.resume()
        ticker = t
    }

    func stopProgress() {
        ticker?.cancel()
        lock.lock(); clearProgress(); lock.unlock()
    }

    private func drawProgress() {
        let names = runner?.runningSteps() ?? []
        lock.lock(); defer { lock.unlock() }
        let now = Clock.monotonicMs()
        let parts = names.map { n in "\(n) \(formatMs(now - (startedAt[n] ?? now)))" }
        let text = "[\(done)/\(total)] " + (parts.isEmpty ? "checking…" : "running: " + parts.joined(separator: ", "))
        write(2, Array("\r\u{1B}[K\(text)".utf8))
        progressShown = true
    }

    /// The final table, on stdout (stderr with --format json).
    func table(_ run: PipelineRun) {
        var rows = [["STEP", "STATUS", "DURATION", "CACHED", "MATERIALS", "PRODUCTS", "WHY"]]
        for s in run.steps {
            rows.append([s.name, s.status.rawValue, s.record == nil || s.cached ? "-" : formatMs(s.durationMs),
                         s.cached ? "yes" : "no", s.record?.materialsDigest.short ?? "-", s.record?.productsDigest.short ?? "-",
                         s.status.isSuccess || s.status == .notRun ? s.why : "\(s.why); \(s.detail ?? "")"])
        }
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max()! }
        var text = ""
        for r in rows {
            text += r.enumerated().map { i, cell in i == r.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ") + "\n"
        }
        text += "pipeline \(run.status) in \(formatMs(run.durationMs))\n"
        lock.lock(); defer { lock.unlock() }
        clearProgress()
        write(outFD, Array(text.utf8))
        for s in run.steps where s.violation != nil {
            write(2, Array("imprint: error: \(s.violation!.description)\n".utf8))
        }
    }
}

/// Appends the run as a Markdown table to the GitHub Actions step summary file.
func appendGitHubSummary(_ run: PipelineRun, to path: String) {
    var md = "### imprint pipeline: \(run.status)\n\n| step | status | duration | cached | materials | products | why |\n|---|---|---|---|---|---|---|\n"
    for s in run.steps {
        let why = (s.status.isSuccess || s.status == .notRun ? s.why : "\(s.why); \(s.detail ?? "")").replacingOccurrences(of: "|", with: "\\|")
        md += "| \(s.name) | \(s.status.rawValue) | \(s.record == nil || s.cached ? "-" : formatMs(s.durationMs)) | \(s.cached ? "yes" : "no") | "
        md += "`\(s.record?.materialsDigest.short ?? "-")` | `\(s.record?.productsDigest.short ?? "-")` | \(why) |\n"
    }
    md += "\n"
    guard let h = FileHandle(forWritingAtPath: path) ?? (FileManager.default.createFile(atPath: path, contents: nil) ? FileHandle(forWritingAtPath: path) : nil) else {
        Console.err("imprint: warning: cannot write the GitHub step summary \(path)")
        return
    }
    h.seekToEndOfFile()
    h.write(Data(md.utf8))
    try? h.close()
}

/// `850ms`, `12.3s`, `4m05s`.
func formatMs(_ ms: Int64) -> String {
    if ms < 1000 { return "\(ms)ms" }
    if ms < 60_000 { return String(format: "%.1fs", Double(ms) / 1000) }
    return String(format: "%dm%02ds", ms / 60_000, (ms % 60_000) / 1000)
}
