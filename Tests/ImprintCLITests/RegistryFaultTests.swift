import Foundation
import ImprintCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `Support/fault_registry.py`: an in-memory registry on 127.0.0.1 that breaks its answers on request.
final class FaultRegistry {
    let process = Process()
    let port: Int
    var host: String { "127.0.0.1:\(port)" }
    private let client = HTTPClient()

    init() throws {
        try requireTool("python3")
        let script = TestEnv.packageRoot.appendingPathComponent("Tests/ImprintCLITests/Support/fault_registry.py").path
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script]
        process.standardInput = FileHandle.nullDevice
        let line = try startAndReadFirstLine(process)
        guard let p = Int(line.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            throw ToolMissing(name: "fault_registry.py did not start")
        }
        port = p
    }

    deinit { stop() }

    func stop() {
        // SIGKILL: a signal mask inherited from the test runner's thread may block SIGTERM.
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }

    private func post(_ path: String, _ json: String) throws {
        let r = try client.send(HTTPRequest(method: "POST", url: URL(string: "http://\(host)\(path)")!,
                                            headers: ["Content-Type": "application/json"], body: Array(json.utf8)))
        _ = try r.readBody(what: "control")
        #expect(r.status == 200)
    }

    /// Breaks the next `times` requests whose path matches `match` (-1: all of them).
    func fault(_ mode: String, match: String = ".*", times: Int = -1) throws {
        try post("/_fault", #"{"mode":"\#(mode)","match":"\#(match)","times":\#(times)}"#)
    }

    func clear() throws { try post("/_fault", "{}") }
    func auth(_ mode: String) throws { try post("/_auth", #"{"mode":"\#(mode)"}"#) }

    /// The digest the tag points at, from a clean HEAD.
    func tagDigest(_ repo: String, _ tag: String) throws -> String? {
        let r = try client.send(HTTPRequest(method: "HEAD", url: URL(string: "http://\(host)/v2/\(repo)/manifests/\(tag)")!))
        r.discard()
        return r.status == 200 ? r.header("Docker-Content-Digest") : nil
    }
}

@Suite("RegistryFaultTests", .serialized)
struct RegistryFaultTests {
    /// One record in a fresh store under `dir/name`; returns the store path and the record id.
    func store(_ dir: String, _ name: String, content: String) throws -> (String, String) {
        let ctx = dir + "/ctx-" + name
        try writeFile(ctx + "/app.py", content)
        let store = dir + "/store-" + name
        let r = try imprint("fingerprint", ctx, "-q", "--record", "--history", store)
        #expect(r.status == 0, "\(r.err)")
        let list = try imprint("history", "list", "--json", "--history", store)
        let arr = try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]] ?? []
        return (store, arr.first?["record"] as? String ?? "")
    }

    func records(_ store: String) throws -> Set<String> {
        let list = try imprint("history", "list", "--json", "--history", store)
        let arr = try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]] ?? []
        return Set(arr.compactMap { $0["record"] as? String })
    }

    /// A command's failure is exactly one `imprint: error:` line, exit 2, never a trap.
    func expectCleanFailure(_ r: RunResult, contains: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 2, "exit \(r.status): \(r.err)", sourceLocation: sourceLocation)
        let lines = r.err.split(separator: "\n").filter { !$0.hasPrefix("imprint: merged") }
        #expect(lines.count == 1 && lines[0].hasPrefix("imprint: error: "), "\(r.err)", sourceLocation: sourceLocation)
        if let contains { #expect(r.err.contains(contains), "\(r.err)", sourceLocation: sourceLocation) }
    }

    static let readFaults = ["lying-digest", "oversized-body", "short-body", "corrupt-body", "redirect-loop",
                             "broken-chunked", "close-silently", "partial-headers", "slow-drip", "redirect-dead-host"]

    @Test(arguments: readFaults + ["blob-not-found"])
    func historyPushNeverLosesARemoteRecord(_ mode: String) throws {
        try withTempDir { dir in
            let reg = try FaultRegistry()
            defer { reg.stop() }
            let repo = "registry://\(reg.host)/ci/history"
            let (storeA, recordA) = try store(dir, "a", content: "print('a')\n")
            #expect(try imprint("history", "push", repo, "--history", storeA).status == 0)
            let before = try reg.tagDigest("ci/history", "imprint-history-default")
            #expect(before != nil)

            let (storeB, _) = try store(dir, "b", content: "print('b')\n")
            if mode == "blob-not-found" {
                try reg.fault("not-found", match: "/blobs/")
            } else {
                try reg.fault(mode, match: "/manifests/|/blobs/")
            }
            let start = Deadline.now()
            let r = try imprint("history", "push", repo, "--history", storeB,
                                env: ["IMPRINT_REQUEST_TIMEOUT": "3", "IMPRINT_REGISTRY_TIMEOUT": "2", "IMPRINT_REGISTRY_RETRIES": "2"])
            expectCleanFailure(r)
            #expect(start.remaining > -30, "push took \(-start.remaining) s")
            try reg.clear()
            // The shared history is untouched and still holds A's record.
            #expect(try reg.tagDigest("ci/history", "imprint-history-default") == before)
            let storeC = dir + "/store-c"
            #expect(try imprint("history", "pull", repo, "--history", storeC).status == 0)
            #expect(try records(storeC).contains(recordA))
        }
    }

    @Test func historyPushMergesWhenNothingIsWrong() throws {
        try withTempDir { dir in
            let reg = try FaultRegistry()
            defer { reg.stop() }
            let repo = "registry://\(reg.host)/ci/history"
            let (storeA, recordA) = try store(dir, "a", content: "a\n")
            let (storeB, recordB) = try store(dir, "b", content: "b\n")
            #expect(try imprint("history", "push", repo, "--history", storeA).status == 0)
            #expect(try imprint("history", "push", repo, "--history", storeB).status == 0)
            let storeC = dir + "/store-c"
            #expect(try imprint("history", "pull", repo, "--history", storeC).status == 0)
            #expect(try records(storeC) == [recordA, recordB])
        }
    }

    @Test(arguments: readFaults)
    func readCommandsFailCleanly(_ mode: String) throws {
        try withTempDir { dir in
            let reg = try FaultRegistry()
            defer { reg.stop() }
            let (storeA, _) = try store(dir, "a", content: "x\n")
            #expect(try imprint("history", "push", "registry://\(reg.host)/h", "--history", storeA).status == 0)
            try reg.fault(mode, match: "/manifests/|/blobs/")
            let env = ["IMPRINT_REQUEST_TIMEOUT": "3", "IMPRINT_REGISTRY_TIMEOUT": "2", "IMPRINT_REGISTRY_RETRIES": "2"]
            for args in [["history", "pull", "registry://\(reg.host)/h", "--history", dir + "/s"],
                         ["inspect", "registry://\(reg.host)/h:imprint-history-default"],
                         ["extract", "registry://\(reg.host)/h:imprint-history-default"]] {
                let start = Deadline.now()
                let r = try imprint(args, env: env)
                expectCleanFailure(r)
                #expect(start.remaining > -30)
            }
        }
    }

    @Test func partialHeadersThenCloseIsOneLineNotATrap() throws {
        try withTempDir { dir in
            let reg = try FaultRegistry()
            defer { reg.stop() }
            let (storeA, _) = try store(dir, "a", content: "p\n")
            #expect(try imprint("history", "push", "registry://\(reg.host)/h", "--history", storeA).status == 0)
            try reg.fault("partial-headers")
            let r = try imprint("inspect", "registry://\(reg.host)/h:imprint-history-default", env: ["IMPRINT_REGISTRY_RETRIES": "1"])
            expectCleanFailure(r, contains: "connection closed in the middle of the response headers")
        }
    }

    @Test func slowDripHitsTheRequestDeadlineAndSaysSo() throws {
        try withTempDir { dir in
            let reg = try FaultRegistry()
            defer { reg.stop() }
            let (storeA, _) = try store(dir, "a", content: "y\n")
            #expect(try imprint("history", "push", "registry://\(reg.host)/h", "--history", storeA).status == 0)
            try reg.fault("slow-drip", match: "/blobs/")
            let start = Deadline.now()
            let r = try imprint("history", "pull", "registry://\(reg.host)/h", "--history", dir + "/s",
                                env: ["IMPRINT_REQUEST_TIMEOUT": "2", "IMPRINT_REGISTRY_RETRIES": "1"])
            expectCleanFailure(r, contains: "took longer than its 2s limit (IMPRINT_REQUEST_TIMEOUT)")
            #expect(start.remaining > -10)
            // The command deadline, too.
            let r2 = try imprint("history", "pull", "registry://\(reg.host)/h", "--history", dir + "/s", "--deadline", "2",
                                 env: ["IMPRINT_REGISTRY_RETRIES": "1"])
            expectCleanFailure(r2, contains: "ran past its 2s deadline")
        }
    }

    @Test func aFailureAfterARedirectNamesTheHostThatFailed() throws {
        try withTempDir { dir in
            let reg = try FaultRegistry()
            defer { reg.stop() }
            let (storeA, _) = try store(dir, "a", content: "q\n")
            #expect(try imprint("history", "push", "registry://\(reg.host)/h", "--history", storeA).status == 0)
            try reg.fault("redirect-dead-host", match: "/manifests/")
            let r = try imprint("inspect", "registry://\(reg.host)/h:imprint-history-default", env: ["IMPRINT_REGISTRY_RETRIES": "1"])
            expectCleanFailure(r, contains: "connection refused (redirected from \(reg.host))")
            #expect(!r.err.contains("127.0.0.1:\(reg.port): connection refused"))
        }
    }

    @Test(arguments: [
        ("bearer-missing-challenge", "without a WWW-Authenticate challenge"),
        ("bearer-malformed-challenge", "an authentication challenge imprint cannot answer: WWW-Authenticate: Negotiate"),
        ("bearer-looping-realm", "answered 401 with another challenge"),
        ("bearer-refused-token", "refused the token its token service issued"),
        ("bearer-huge-token", "more than the 16 KiB a request header can carry"),
    ])
    func authenticationFailuresSayWhatHappened(_ mode: String, _ message: String) throws {
        try withTempDir { dir in
            let reg = try FaultRegistry()
            defer { reg.stop() }
            try reg.auth(mode)
            let r = try imprint("inspect", "registry://\(reg.host)/app:1", env: ["IMPRINT_REGISTRY_RETRIES": "1"])
            expectCleanFailure(r, contains: message)
        }
    }

    @Test func retryAfterAsAnHTTPDateIsHonoured() throws {
        try withTempDir { dir in
            let reg = try FaultRegistry()
            defer { reg.stop() }
            let (storeA, _) = try store(dir, "a", content: "z\n")
            #expect(try imprint("history", "push", "registry://\(reg.host)/h", "--history", storeA).status == 0)
            try reg.fault("retry-after-date", match: "/manifests/imprint-history", times: 1)
            let start = Deadline.now()
            let r = try imprint("history", "pull", "registry://\(reg.host)/h", "--history", dir + "/s")
            #expect(r.status == 0, "\(r.err)")
            #expect(start.remaining < -0.3, "the retry waited for the date the registry named")
        }
    }
}
