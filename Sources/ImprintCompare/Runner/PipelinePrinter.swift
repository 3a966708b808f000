import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Prints a pipeline's live output with a `[step] ` prefix per line, a progress line on a terminal, and the
/// final table.
// why @unchecked Sendable: every mutable field is guarded by `lock` (steps report from their own threads).
package final class PipelinePrinter: PipelineObserver, @unchecked Sendable {
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
    package weak var runner: PipelineRunner?

    package init(toStderr: Bool, quiet: Bool) {
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

    package func note(_ line: String) {
        lock.lock(); defer { lock.unlock() }
        clearProgress()
        write(2, Array((line + "\n").utf8))
    }

    package func output(step: String, stream: ChildProcess.Stream, bytes: UnsafeRawBufferPointer) {
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

    package func started(step: String, why: String) {
        lock.lock(); defer { lock.unlock() }
        startedAt[step] = Clock.monotonicMs()
        clearProgress()
        write(2, Array("imprint: ▶ \(step) (\(why))\n".utf8))
    }

    package func finished(_ o: StepOutcome) {
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

    package func startProgress(total: Int) {
        self.total = total
        guard progressEnabled else { return }
        let t = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "imprint.progress"))
        t.schedule(deadline: .now() + 0.5, repeating: 0.5)
        t.setEventHandler { [weak self] in self?.drawProgress() }
        t.resume()
        ticker = t
    }

    package func stopProgress() {
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
    package func table(_ run: PipelineRun) {
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

/// The run as a Markdown table for the GitHub Actions step summary.
package func gitHubSummary(_ run: PipelineRun) -> String {
    var md = "### imprint pipeline: \(run.status)\n\n| step | status | duration | cached | materials | products | why |\n|---|---|---|---|---|---|---|\n"
    for s in run.steps {
        let why = (s.status.isSuccess || s.status == .notRun ? s.why : "\(s.why); \(s.detail ?? "")").replacingOccurrences(of: "|", with: "\\|")
        md += "| \(s.name) | \(s.status.rawValue) | \(s.record == nil || s.cached ? "-" : formatMs(s.durationMs)) | \(s.cached ? "yes" : "no") | "
        md += "`\(s.record?.materialsDigest.short ?? "-")` | `\(s.record?.productsDigest.short ?? "-")` | \(why) |\n"
    }
    md += "\n"
    return md
}

/// `850ms`, `12.3s`, `4m05s`.
package func formatMs(_ ms: Int64) -> String {
    if ms < 1000 { return "\(ms)ms" }
    if ms < 60_000 { return String(format: "%.1fs", Double(ms) / 1000) }
    return String(format: "%dm%02ds", ms / 60_000, (ms % 60_000) / 1000)
}
