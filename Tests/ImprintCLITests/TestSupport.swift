import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The result of running a process.
struct RunResult {
    var status: Int32
    var stdout: Data
    var stderr: Data
    var out: String { String(decoding: stdout, as: UTF8.self) }
    var err: String { String(decoding: stderr, as: UTF8.self) }
}

enum TestEnv {
    /// The package root (two levels above this file's directory).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The built `imprint` binary next to the test bundle.
    static let imprintPath: String = {
        if let p = ProcessInfo.processInfo.environment["IMPRINT_BIN"] { return p }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<5 {
            let candidate = dir.appendingPathComponent("imprint").path
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDir), !isDir.boolValue { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return packageRoot.appendingPathComponent(".build/debug/imprint").path
    }()
}

/// Starts `process` with every other start in this test process held off, after checking that the process holds
/// no leaked descriptors. Foundation's `Process.run()` on Linux lists `/proc/self/fd` to close every inherited
/// descriptor, and its listing copies 256 bytes per directory entry: once about 1,360 descriptors are open, the
/// last entry of a full `readdir` buffer lies at the buffer's end and the copy reads past it (a SIGSEGV in
/// `memcpy`, seen on a full run). A leak therefore fails the test that finds it, with the descriptors named,
/// long before that point.
func launchProcess(_ process: Process) throws {
    launchLock.lock()
    defer { launchLock.unlock() }
    if OpenDescriptors.count() > OpenDescriptors.limit {
        throw OpenDescriptors.Leak(open: OpenDescriptors.current())
    }
    try process.run()
    // The child holds its own copies of the files it was given. The parent's are closed now: a Process with a
    // termination handler is never freed, and would keep them open for the rest of the test process.
    let shared = [FileHandle.nullDevice, .standardInput, .standardOutput, .standardError]
    for case let handle as FileHandle in [process.standardInput, process.standardOutput, process.standardError]
    where !shared.contains(where: { $0 === handle }) {
        try? handle.close()
    }
}

/// The descriptors this test process holds, read from `/proc/self/fd`.
enum OpenDescriptors {
    /// Far above what the tests hold at once (a few dozen), far below the ~1,360 at which `Process.run()` crashes.
    static let limit = 512

    /// This process's open descriptors (`/proc/self/fd`).
    static func numbers() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    }

    static func count() -> Int { numbers().count }

    /// What each descriptor is open on.
    static func current() -> [String] {
        numbers().map { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) ?? "?" }
    }

    struct Leak: Error, CustomStringConvertible {
        var open: [String]
        var description: String {
            let kinds = Dictionary(grouping: open) { $0.replacingOccurrences(of: #"[0-9]+"#, with: "N", options: .regularExpression) }
                .map { ($0.key, $0.value.count) }.sorted { $0.1 > $1.1 }.prefix(5)
            return "the test process holds \(open.count) descriptors (a leak; most: "
                + kinds.map { "\($0.1) × \($0.0)" }.joined(separator: ", ") + ")"
        }
    }
}

private let launchLock = NSLock()

/// Runs a program with stdout/stderr sent to files (no pipe deadlocks on large output).
@discardableResult
func run(_ executable: String, _ args: [String], cwd: String? = nil, stdin: Data? = nil,
         stdinFile: String? = nil, env: [String: String] = [:], timeout: Double = Watchdog.defaultSeconds,
         onTimeout: ((String) -> Void)? = nil) throws -> RunResult {
    if let host = env["DOCKER_HOST"], Watchdog.isHung(host) {
        throw Watchdog.EngineHung(host: host)
    }
    let p = Process()
    if executable.hasPrefix("/") {
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
    } else {
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [executable] + args
    }
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    var environment = ProcessInfo.processInfo.environment
    for (k, v) in env { environment[k] = v }
    p.environment = environment
    let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("imprint-run-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: tmp) }
    let outURL = tmp.appendingPathComponent("out"), errURL = tmp.appendingPathComponent("err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let outH = try FileHandle(forWritingTo: outURL), errH = try FileHandle(forWritingTo: errURL)
    defer { try? outH.close(); try? errH.close() }
    p.standardOutput = outH
    p.standardError = errH
    // Every handle opened here is closed here: a Process with a termination handler is never freed, so a handle
    // left to it stays open for the rest of the test process.
    var inH: FileHandle?
    if let stdinFile {
        inH = FileHandle(forReadingAtPath: stdinFile)
    } else if let stdin {
        let inURL = tmp.appendingPathComponent("in")
        try stdin.write(to: inURL)
        inH = FileHandle(forReadingAtPath: inURL.path)
    }
    p.standardInput = inH ?? FileHandle.nullDevice
    defer { try? inH?.close() }
    let exited = DispatchSemaphore(value: 0)
    p.terminationHandler = { _ in exited.signal() }
    try launchProcess(p)
    if exited.wait(timeout: .now() + timeout) == .timedOut {
        // A command that hangs (an engine left unusable by a failed `rm`, a server that never answers) fails its
        // test in bounded time instead of holding the whole run: it and everything it started are killed.
        Watchdog.killTree(p.processIdentifier)
        // Bounded too: a daemon that left the tree can hold Foundation's exit watch of the killed process open.
        _ = exited.wait(timeout: .now() + 30)
        if let host = env["DOCKER_HOST"] { Watchdog.markHung(host) }
        let message = "\(executable) \(args.joined(separator: " ").prefix(300)) did not finish within \(Int(timeout)) s; killed"
        if let onTimeout { onTimeout(message) } else { Issue.record(Comment(rawValue: message)) }
    }
    return RunResult(status: p.terminationStatus, stdout: try Data(contentsOf: outURL), stderr: try Data(contentsOf: errURL))
}

/// Bounds every command the tests run. A command on an engine that once hung fails at once afterwards: the engine is
/// not trusted again in this test process.
enum Watchdog {
    static let defaultSeconds: Double = 600
    private static let lock = NSLock()
    nonisolated(unsafe) private static var hung: Set<String> = []

    struct EngineHung: Error, CustomStringConvertible {
        var host: String
        var description: String { "the engine at \(host) hung on an earlier command; not used again" }
    }

    static func isHung(_ host: String) -> Bool { lock.withLock { hung.contains(host) } }
    static func markHung(_ host: String) { _ = lock.withLock { hung.insert(host) } }

    /// SIGKILL to `pid` and its descendants, found through /proc first, then killed parent first (a parent killed
    /// after its children could see them end and exit on its own, with a status of its choosing).
    static func killTree(_ pid: Int32) {
        var parents: [Int32: [Int32]] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let child = Int32(name),
                  let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let ppid = Int32(fields[1]) { parents[ppid, default: []].append(child) }
        }
        var order: [Int32] = [], queue = [pid]
        while let next = queue.popLast() {
            order.append(next)
            queue.append(contentsOf: parents[next] ?? [])
        }
        for victim in order { kill(victim, SIGKILL) }
    }
}

/// Runs the built imprint binary.
@discardableResult
func imprint(_ args: String..., cwd: String? = nil, stdin: Data? = nil, stdinFile: String? = nil,
             env: [String: String] = [:]) throws -> RunResult {
    try run(TestEnv.imprintPath, args, cwd: cwd, stdin: stdin, stdinFile: stdinFile, env: env)
}

@discardableResult
func imprint(_ args: [String], cwd: String? = nil, stdin: Data? = nil, stdinFile: String? = nil,
             env: [String: String] = [:]) throws -> RunResult {
    try run(TestEnv.imprintPath, args, cwd: cwd, stdin: stdin, stdinFile: stdinFile, env: env)
}

/// Runs a shell script with bash -euo pipefail; records a test failure (with its stderr) when it fails.
@discardableResult
func sh(_ script: String, cwd: String? = nil, env: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation) throws -> RunResult {
    let r = try run("/bin/bash", ["-euo", "pipefail", "-c", script], cwd: cwd, env: env)
    #expect(r.status == 0, "script failed (\(r.status)): \(script)\n\(r.err)", sourceLocation: sourceLocation)
    return r
}

/// A fresh temporary directory, removed afterwards.
func withTempDir<T>(_ body: (String) throws -> T) throws -> T {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imprint-test-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { _ = try? run("/bin/rm", ["-rf", dir]) }
    return try body(dir)
}

/// Fails the test when an external tool is missing: in CI a missing tool must fail the run, never skip it.
func requireTool(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let r = try run("/bin/sh", ["-c", "command -v \(name)"])
    if r.status != 0 {
        Issue.record("required tool '\(name)' is not installed (run ci/install-deps.sh)", sourceLocation: sourceLocation)
        throw ToolMissing(name: name)
    }
}

struct ToolMissing: Error { var name: String }

/// Validates a JSON document against a schema in `schemas/` with python3's jsonschema (Draft 2020-12).
func expectValidJSON(_ json: Data, schema: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let schemaPath = TestEnv.packageRoot.appendingPathComponent("schemas/\(schema)").path
    let script = """
    import json, sys, jsonschema
    schema = json.load(open(sys.argv[1]))
    jsonschema.Draft202012Validator.check_schema(schema)
    doc = json.load(sys.stdin)
    errors = sorted(jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).iter_errors(doc), key=lambda e: list(e.path))
    for e in errors[:5]:
        print(list(e.path), e.message)
    sys.exit(1 if errors else 0)
    """
    let r = try run("python3", ["-c", script, schemaPath], stdin: json)
    #expect(r.status == 0, "JSON does not validate against \(schema):\n\(r.out)\(r.err)", sourceLocation: sourceLocation)
}

func writeFile(_ path: String, _ content: String, mode: Int = 0o644) throws {
    let dir = (path as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    try Data(content.utf8).write(to: URL(fileURLWithPath: path))
    chmod(path, mode_t(mode))
}

func jsonObject(_ data: Data) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: data) as! [String: Any]
}

/// What a test needs beyond this machine's build: `ci/test --fast` skips these (the whole suite runs them).
extension Tag {
    /// A container engine or builder: podman and the docker CLI, buildah, containerd, docker-compose.
    @Tag static var engine: Self
    /// A registry on 127.0.0.1 (Distribution).
    @Tag static var registry: Self
    /// A browser (Chromium) rendering a report.
    @Tag static var browser: Self
    /// The release build (ci/release).
    @Tag static var release: Self
}

/// Starts `process` with its stdout piped (stderr to /dev/null) and returns the first line it prints: how the
/// servers the tests start say where they listen.
func startAndReadFirstLine(_ process: Process) throws -> String {
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try launchProcess(process)
    var line = Data()
    while !line.contains(0x0A) {
        let d = out.fileHandleForReading.availableData
        if d.isEmpty { break }
        line.append(d)
    }
    return String(decoding: line, as: UTF8.self)
}

/// Directories of the fixtures every test of the process shares (the release build, the built image): removed when
/// the test process exits, so a run leaves nothing behind in the temporary directory.
enum ProcessFixtures {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var dirs: [String] = []
    nonisolated(unsafe) private static var registered = false

    static func removeAtExit(_ dir: String) {
        lock.withLock {
            dirs.append(dir)
            if !registered {
                registered = true
                atexit { ProcessFixtures.removeAll() }
            }
        }
    }

    private static func removeAll() {
        for dir in lock.withLock({ dirs }) { try? FileManager.default.removeItem(atPath: dir) }
    }
}
