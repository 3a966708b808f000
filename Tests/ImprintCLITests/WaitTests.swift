import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A real HTTP server on 127.0.0.1 (python3), stopped by `stop()`.
final class TestServer {
    let process = Process()
    let port: Int

    /// Starts `script` with `args` (and `env`); the script binds port 0 and prints "listening on HOST:PORT".
    init(script: String, args: [String] = [], env: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-u", script] + args
        var environment = ProcessInfo.processInfo.environment
        environment["PORT"] = "0"
        for (k, v) in env { environment[k] = v }
        process.environment = environment
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try launchProcess(process)
        // The first line names the port; EOF (the server died) ends the read.
        var line = Data()
        while !line.contains(0x0A) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let p = text.split(separator: "\n").first?.split(separator: ":").last.flatMap({ Int($0) }) else {
            process.terminate()
            process.waitUntilExit()
            throw ServerFailed(output: text)
        }
        port = p
    }

    func stop() {
        // why SIGKILL, not terminate(): a child that Foundation's Process spawns from a test thread inherits
        // that thread's signal mask, in which SIGTERM is blocked, so SIGTERM would stay pending forever.
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    struct ServerFailed: Error { var output: String }
}

/// A health endpoint whose answers follow a script: `responses` in order, one per request, then `final` forever.
/// Optional `require_header` [name, value]: requests without it get 401.
private let scriptedServer = #"""
import json, os, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
plan = json.load(open(sys.argv[1]))
lock = threading.Lock()
count = [0]
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        with lock:
            i = count[0]; count[0] += 1
        need = plan.get("require_header")
        if need and self.headers.get(need[0]) != need[1]:
            status, body = 401, '{"error":"unauthorized"}'
        else:
            status, body = plan["responses"][i] if i < len(plan["responses"]) else plan["final"]
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a): pass
s = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H)
print("listening on 127.0.0.1:%d" % s.server_address[1], flush=True)
s.serve_forever()
"""#

private let oldDigest = "sha256:" + String(repeating: "0a", count: 32)
private let newDigest = "sha256:" + String(repeating: "b7", count: 32)

private func health(_ digest: String) -> String { #"{"status":"ok","imprint":{"digest":"\#(digest)"}}"# }

/// Starts the scripted server in `dir`, runs `body` with its base URL, always stops the server.
private func withScriptedServer<T>(_ dir: String, responses: [(Int, String)], final: (Int, String),
                                   requireHeader: [String]? = nil, _ body: (String) throws -> T) throws -> T {
    try writeFile(dir + "/server.py", scriptedServer)
    var plan: [String: Any] = ["responses": responses.map { [$0.0, $0.1] }, "final": [final.0, final.1]]
    if let requireHeader { plan["require_header"] = requireHeader }
    try JSONSerialization.data(withJSONObject: plan).write(to: URL(fileURLWithPath: dir + "/plan.json"))
    let server = try TestServer(script: dir + "/server.py", args: [dir + "/plan.json"])
    defer { server.stop() }
    return try body("http://127.0.0.1:\(server.port)/healthz")
}

@Suite struct WaitTests {
    @Test func completesWhenTheServerSwitchesToTheNewDigest() throws {
        try requireTool("python3")
        try withTempDir { tmp in
            try withScriptedServer(tmp, responses: [(503, "starting"), (200, health(oldDigest)), (200, health(oldDigest))],
                                   final: (200, health(newDigest))) { url in
                // Bare hex in upper case is the same digest.
                let expect = String(newDigest.dropFirst(7)).uppercased()
                let start = Date()
                let r = try imprint("wait", url, "--expect", expect, "--interval", "0.3", "--timeout", "30")
                #expect(r.status == 0, "\(r.out)\(r.err)")
                #expect(Date().timeIntervalSince(start) < 15)
                #expect(r.out.hasPrefix("rollout complete: \(url) serves \(newDigest), after 4 polls, "), "\(r.out)")
                let lines = r.err.split(separator: "\n").map(String.init)
                #expect(lines.count == 4, "\(r.err)")
                guard lines.count == 4 else { return }
                #expect(lines[0].hasPrefix("poll 1 at "))
                #expect(lines[0].contains("HTTP 503, body is not JSON"))
                #expect(lines[1].contains("HTTP 200, imprint.digest \(oldDigest) (waiting for \(newDigest))"))
                #expect(lines[3].contains("HTTP 200, imprint.digest \(newDigest) (expected)"))
            }
        }
    }

    @Test func timesOutWhenTheDigestNeverAppears() throws {
        try requireTool("python3")
        try withTempDir { tmp in
            try withScriptedServer(tmp, responses: [], final: (200, health(oldDigest))) { url in
                let start = Date()
                let r = try imprint("wait", url, "--expect", newDigest, "--timeout", "2", "--interval", "0.2")
                let took = Date().timeIntervalSince(start)
                #expect(r.status == 1, "\(r.out)\(r.err)")
                #expect(took >= 2 && took < 10, "\(took)")
                #expect(r.out.hasPrefix("timed out after 2."), "\(r.out)")
                #expect(r.out.contains("last seen HTTP 200, imprint.digest \(oldDigest) from \(url), expected \(newDigest)"), "\(r.out)")
                let polls = r.err.split(separator: "\n").count
                #expect(polls >= 5 && polls <= 12, "\(r.err)")
                #expect(r.out.contains("(\(polls) polls)"))
            }
        }
    }

    @Test func unreachablePortKeepsPollingAndTimesOut() throws {
        try requireTool("python3")
        // A port that was free a moment ago and has no listener now.
        let free = try run("python3", ["-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"])
        let url = "http://127.0.0.1:\(free.out.trimmingCharacters(in: .whitespacesAndNewlines))/healthz"
        let r = try imprint("wait", url, "--expect", newDigest, "--timeout", "1.5", "--interval", "0.3")
        #expect(r.status == 1, "\(r.out)\(r.err)")
        #expect(r.out.hasPrefix("timed out after 1."), "\(r.out)")
        #expect(r.out.contains(" s: last seen no answer: 127.0.0.1:\(free.out.trimmingCharacters(in: .whitespacesAndNewlines)): connection refused from \(url)"), "\(r.out)")
        #expect(r.err.split(separator: "\n").count >= 3, "\(r.err)")
        #expect(r.err.split(separator: "\n").allSatisfy { $0.contains("connection refused") })
    }

    @Test func fieldHeaderAndTopLevelDigest() throws {
        try requireTool("python3")
        try withTempDir { tmp in
            // A top-level "digest" is found without --field.
            try withScriptedServer(tmp, responses: [], final: (200, #"{"digest":"\#(newDigest)"}"#)) { url in
                let r = try imprint("wait", url, "--expect", newDigest, "--timeout", "5", "--interval", "0.2")
                #expect(r.status == 0, "\(r.out)\(r.err)")
                #expect(r.err.contains("digest \(newDigest) (expected)"))
            }
            // A custom path, and a server that wants a header.
            try withScriptedServer(tmp, responses: [], final: (200, #"{"build":{"items":[{"sha":"\#(newDigest)"}]}}"#),
                                   requireHeader: ["X-Token", "s3cret"]) { url in
                let no = try imprint("wait", url, "--expect", newDigest, "--field", "build.items.0.sha", "--timeout", "0.5", "--interval", "0.2")
                #expect(no.status == 1)
                #expect(no.out.contains("last seen HTTP 401, no field build.items.0.sha"), "\(no.out)")
                let yes = try imprint("wait", url, "--expect", newDigest, "--field", "build.items.0.sha",
                                      "--header", "X-Token: s3cret", "--timeout", "5", "--interval", "0.2", "--quiet")
                #expect(yes.status == 0, "\(yes.out)\(yes.err)")
                #expect(yes.err.isEmpty)
                #expect(yes.out.contains("after 1 poll, "))
            }
            // The right digest with a failing status is not a completed rollout.
            try withScriptedServer(tmp, responses: [], final: (503, health(newDigest))) { url in
                let r = try imprint("wait", url, "--expect", newDigest, "--timeout", "0.5", "--interval", "0.2")
                #expect(r.status == 1)
                #expect(r.err.contains("HTTP 503, imprint.digest \(newDigest) (expected digest, but not a 2xx status)"), "\(r.err)")
            }
        }
    }

    @Test(arguments: [
        (["ftp://127.0.0.1/x", "--expect", newDigest], "is not an http:// or https:// URL"),
        (["not a url", "--expect", newDigest], "is not an http:// or https:// URL"),
        (["http://127.0.0.1:9/", "--expect", "sha256:abc"], "is not a full SHA-256 digest"),
        (["http://127.0.0.1:9/", "--expect", String(repeating: "g", count: 64)], "is not a full SHA-256 digest"),
        (["http://127.0.0.1:9/", "--expect", newDigest, "--interval", "0"], "--interval must be"),
        (["http://127.0.0.1:9/", "--expect", newDigest, "--timeout=-1"], "--timeout must be"),
        (["http://127.0.0.1:9/", "--expect", newDigest, "--header", "no colon"], "is not 'Name: value'"),
        (["http://127.0.0.1:9/", "--expect", newDigest, "--field", "a..b"], "is not a dot path"),
    ])
    func badArgumentsExitTwoWithOneLine(args: [String], message: String) throws {
        let r = try imprint(["wait"] + args)
        #expect(r.status == 2, "\(r.status) \(r.err)")
        #expect(r.err.hasPrefix("imprint: error: "))
        #expect(r.err.contains(message), "\(r.err)")
        #expect(r.err.split(separator: "\n").count == 1)
        #expect(r.out.isEmpty)
    }

    /// The example app server from ci/examples serves what `imprint fingerprint` wrote; the gate sees it.
    @Test func exampleServerServesTheEmbeddedManifestDigest() throws {
        try requireTool("python3")
        try withTempDir { tmp in
            try writeFile(tmp + "/ctx/app.py", "print('hello')\n")
            let fp = try imprint("fingerprint", tmp + "/ctx", "--emit", ".imprint/manifest.json", "--digest-only", "--quiet")
            #expect(fp.status == 0, "\(fp.err)")
            let digest = fp.out.trimmingCharacters(in: .whitespacesAndNewlines)
            let script = TestEnv.packageRoot.appendingPathComponent("ci/examples/serve-digest.py").path
            let server = try TestServer(script: script, env: ["IMPRINT_MANIFEST": tmp + "/ctx/.imprint/manifest.json"])
            defer { server.stop() }
            let url = "http://127.0.0.1:\(server.port)/healthz"
            let r = try imprint("wait", url, "--expect", digest, "--timeout", "5", "--interval", "0.2")
            #expect(r.status == 0, "\(r.out)\(r.err)")
            #expect(r.out.contains("serves \(digest), after 1 poll"), "\(r.out)")
            // The files are replaced in place (a new manifest), the process is not restarted: it still serves the
            // digest it started with, so the gate must not declare the new rollout complete.
            try writeFile(tmp + "/ctx/app.py", "print('new')\n")
            let fp2 = try imprint("fingerprint", tmp + "/ctx", "--emit", ".imprint/manifest.json", "--digest-only", "--quiet")
            let newDigest = fp2.out.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(newDigest != digest)
            let stale = try imprint("wait", url, "--expect", newDigest, "--timeout", "0.5", "--interval", "0.2")
            #expect(stale.status == 1, "\(stale.out)")
            #expect(stale.out.contains("last seen HTTP 200, imprint.digest \(digest)"), "\(stale.out)")
            // A restarted process serves the new digest.
            let restarted = try TestServer(script: script, env: ["IMPRINT_MANIFEST": tmp + "/ctx/.imprint/manifest.json"])
            defer { restarted.stop() }
            let done = try imprint("wait", "http://127.0.0.1:\(restarted.port)/healthz", "--expect", newDigest, "--timeout", "5")
            #expect(done.status == 0, "\(done.out)")
        }
    }
}
