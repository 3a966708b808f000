import Foundation
import Testing
@testable import ImprintCore

/// Helpers for the archive and image unit tests (namespaced so they cannot clash with other suites' helpers).
enum ArchiveFixture {
    /// Runs a bash script; fails the test with its stderr when it exits non-zero. Returns stdout.
    @discardableResult
    static func shell(_ script: String, cwd: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-euo", "pipefail", "-c", script]
        p.currentDirectoryURL = URL(fileURLWithPath: cwd)
        let out = URL(fileURLWithPath: cwd).appendingPathComponent(".out-\(UUID().uuidString)")
        let err = URL(fileURLWithPath: cwd).appendingPathComponent(".err-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out); try? FileManager.default.removeItem(at: err) }
        let outH = try FileHandle(forWritingTo: out), errH = try FileHandle(forWritingTo: err)
        defer { try? outH.close(); try? errH.close() }
        p.standardOutput = outH
        p.standardError = errH
        try p.run()
        p.waitUntilExit()
        let o = String(decoding: try Data(contentsOf: out), as: UTF8.self)
        let e = String(decoding: try Data(contentsOf: err), as: UTF8.self)
        #expect(p.terminationStatus == 0, "script failed: \(script)\n\(e)", sourceLocation: sourceLocation)
        return o
    }

    /// Fails (never skips) when a tool is missing.
    static func require(_ tool: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let found = ["/usr/bin/", "/bin/", "/usr/local/bin/"].contains { FileManager.default.isExecutableFile(atPath: $0 + tool) }
        if !found {
            Issue.record("required tool '\(tool)' is not installed (run ci/install-deps.sh)", sourceLocation: sourceLocation)
            throw CancellationError()
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    static func withTemp<T>(_ body: (String) throws -> T) throws -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imprint-archive-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        return try body(dir)
    }

    static func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func write(_ path: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// All entries of an archive (content hashed), read through `TarReader`.
    static func entries(_ source: ByteSource, name: String = "test") throws -> [(TarEntry, Digest)] {
        let r = TarReader(source, name: name, bufferSize: 4096)
        var out: [(TarEntry, Digest)] = []
        let h = SHA256()
        while let e = try r.next() {
            try r.forEachContentChunk { h.update($0) }
            out.append((e, h.finish()))
        }
        return out
    }

    /// An archive built with `TarWriter` in memory.
    static func tar(_ build: (TarWriter) throws -> Void) throws -> [UInt8] {
        var out: [UInt8] = []
        let w = TarWriter { out.append(contentsOf: $0) }
        try build(w)
        try w.finish()
        return out
    }
}
