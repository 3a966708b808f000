import ArgumentParser
import Foundation
import ImprintCore
#if canImport(Glibc)
import Glibc
#endif

/// Output for people: stdout for results, stderr for diagnostics and progress.
enum Console {
    static func out(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }
    static func outRaw(_ b: [UInt8]) { FileHandle.standardOutput.write(Data(b)) }
    static func err(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

    static var stderrIsTTY: Bool { isatty(2) == 1 }
    static var stdoutIsTTY: Bool { isatty(1) == 1 }
    static var colour: Bool { stdoutIsTTY && ProcessInfo.processInfo.environment["NO_COLOR"] == nil }

    /// A progress line on stderr, only on a terminal; rate-limited.
    final class Progress {
        private var last = Date.distantPast
        private let enabled: Bool
        private let lock = NSLock()
        init(enabled: Bool = Console.stderrIsTTY) { self.enabled = enabled }
        func update(_ text: @autoclosure () -> String) {
            guard enabled else { return }
            lock.lock(); defer { lock.unlock() }
            let now = Date()
            guard now.timeIntervalSince(last) > 0.1 else { return }
            last = now
            FileHandle.standardError.write(Data("\r\u{1B}[K\(text())".utf8))
        }
        func done() {
            guard enabled else { return }
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        }
    }
}

/// Runs a command body, turning imprint errors into one line on stderr and exit status 2.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ImprintError {
        Console.err("imprint: error: \(e.message)")
        throw ExitCode(2)
    } catch let e as ExitCode {
        throw e
    } catch let e as CleanExit {
        throw e
    } catch {
        Console.err("imprint: error: \(error)")
        throw ExitCode(2)
    }
}

/// Writes `bytes` to `path` atomically, or to stdout when `path` is nil or `-`.
func writeOutput(_ bytes: [UInt8], to path: String?) throws {
    if let path, path != "-" {
        var st = stat()
        if stat(path, &st) == 0 && (st.st_mode & S_IFMT) != S_IFREG {
            // /dev/null, a FIFO, /dev/stdout: nothing to replace atomically.
            guard let h = FileHandle(forWritingAtPath: path) else { throw ImprintError.posix("open", path) }
            h.write(Data(bytes))
            try h.close()
            return
        }
        try AtomicFile.write(bytes, to: path)
    } else {
        Console.outRaw(bytes)
    }
}

extension IgnoreSemantics: ExpressibleByArgument {}

/// Reads a manifest given as a file path or as `history:REF` (a record of the history store).
func loadManifest(_ spec: String) throws -> (Manifest, String) {
    if spec.hasPrefix("history:") {
        let ref = String(spec.dropFirst("history:".count))
        let store = try HistoryStore(at: HistoryStore.defaultLocation(), create: false)
        let entry = try store.resolve(ref)
        return (try store.manifest(for: entry), "history record \(entry.record.short) (\(ref))")
    }
    return (try Manifest.parse(try readFile(spec, what: "manifest"), source: spec), spec)
}
