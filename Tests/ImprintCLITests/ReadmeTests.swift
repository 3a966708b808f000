import Foundation
import ImprintCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Runs every shell example of README.md, literally, and checks it ends as the README says.
///
/// Each ```sh block is preceded by a marker: `<!-- readme: run SCENARIO [expect "TEXT"] [expect-exit N] -->` (blocks
/// of one scenario run in order in one sandbox), `<!-- readme: release (…) -->` (install examples, run by ReleaseTests
/// with the published release URL pointing at a local copy) or `<!-- readme: not-run (REASON) -->`. A sandbox is an application
/// directory (the README's Dockerfile, an app.py, a .dockerignore) beside an empty `../out`, with the real `docker`
/// CLI talking to podman, `imprint` first on PATH, `$REGISTRY` a Distribution registry on 127.0.0.1 and `$APP_URL` a
/// service serving the application's digest.
@Suite(.serialized) struct ReadmeTests {
    struct Block {
        var scenario: String?
        var code: String
        var expects: [String]
        var exit: Int32
        var line: Int
    }

    static func readme() throws -> String {
        try String(contentsOf: TestEnv.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
    }

    /// Every fenced block with its marker. A ```sh block without a marker is an error.
    static func blocks(_ text: String) -> (sh: [Block], dockerfile: String?, unmarked: [Int]) {
        let lines = text.components(separatedBy: "\n")
        var out: [Block] = []
        var dockerfile: String?
        var unmarked: [Int] = []
        var i = 0
        var marker: String?
        while i < lines.count {
            let l = lines[i]
            if l.hasPrefix("<!-- readme:") { marker = l; i += 1; continue }
            if l.hasPrefix("```") {
                let lang = String(l.dropFirst(3))
                var body: [String] = []
                let start = i + 1
                i += 1
                while i < lines.count && !lines[i].hasPrefix("```") { body.append(lines[i]); i += 1 }
                let code = body.joined(separator: "\n")
                if lang == "dockerfile" { dockerfile = code }
                if lang == "sh" {
                    if let m = marker, m.contains("readme: run ") {
                        let words = m.replacingOccurrences(of: "<!-- readme: run ", with: "").replacingOccurrences(of: " -->", with: "")
                        let scenario = String(words.split(separator: " ").first ?? "")
                        var expects: [String] = []
                        var rest = Substring(words)
                        while let r = rest.range(of: "expect \"") {
                            let after = rest[r.upperBound...]
                            guard let close = after.firstIndex(of: "\"") else { break }
                            expects.append(String(after[..<close]))
                            rest = after[after.index(after: close)...]
                        }
                        var exit: Int32 = 0
                        if let r = words.range(of: "expect-exit ") { exit = Int32(words[r.upperBound...].prefix { $0.isNumber }) ?? 0 }
                        out.append(Block(scenario: scenario, code: code, expects: expects, exit: exit, line: start))
                    } else if marker?.contains("readme: not-run (") != true && marker?.contains("readme: release (") != true {
                        unmarked.append(start)
                    }
                }
                marker = nil
            } else if !l.trimmingCharacters(in: .whitespaces).isEmpty {
                marker = nil
            }
            i += 1
        }
        return (out, dockerfile, unmarked)
    }

    @Test func everyShellExampleIsRunOrSaysWhyNot() throws {
        let (sh, dockerfile, unmarked) = Self.blocks(try Self.readme())
        #expect(unmarked.isEmpty, "README.md shell blocks without a readme marker at lines \(unmarked)")
        #expect(sh.count >= 8)
        #expect(dockerfile != nil)
        let notRun = try Self.readme().components(separatedBy: "readme: not-run").count - 1
        #expect(notRun <= 1, "only the two commands that start the tests themselves may go unrun")
    }

    @Test(.tags(.engine, .registry)) func examplesRunAndEndAsTheReadmeSays() throws {
        let (shellBlocks, dockerfile, _) = Self.blocks(try Self.readme())
        let engine = try ContainerEngine()
        defer { engine.stop() }
        try engine.buildBusyboxBase()
        try withTempDir { dir in
            let registry = try LocalRegistry(dir: dir + "/registry-data")
            defer { registry.stop() }
            var scenarios: [String] = []
            for b in shellBlocks where !scenarios.contains(b.scenario!) { scenarios.append(b.scenario!) }
            for scenario in scenarios {
                let root = "\(dir)/\(scenario)"
                let app = root + "/app"
                try writeFile(app + "/Dockerfile", (dockerfile ?? "") + "\n")
                try writeFile(app + "/app.py", "print('hello from the app')\n")
                try writeFile(app + "/lib/util.py", "X = 1\n")
                try writeFile(app + "/.dockerignore", "**/__pycache__\n**/*.pyc\n.git\n")
                try FileManager.default.createDirectory(atPath: root + "/out", withIntermediateDirectories: true)
                var env = ["REGISTRY": registry.host, "IMPRINT_HISTORY": root + "/history", "HOME": root]
                var server: Process?
                if scenario == "wait" || scenario == "probe" {
                    // The application: ci/examples/serve-digest.py with the probe beside it, serving the digest of the
                    // manifest it started with (/healthz) and what it loaded (/imprint).
                    try sh("cp '\(TestEnv.packageRoot.path)/ci/examples/serve-digest.py' server.py", cwd: app)
                    #expect(try run(TestEnv.imprintPath, ["probe", "python", "-o", "imprint_probe.py"], cwd: app).status == 0)
                    #expect(try run(TestEnv.imprintPath, ["fingerprint", ".", "-q", "--emit", ".imprint/manifest.json",
                                                          "--digest-file", "../out/digest.txt"], cwd: app).status == 0)
                    let (p, port) = try startDigestServer(script: app + "/server.py", manifest: app + "/.imprint/manifest.json")
                    server = p
                    env["APP_URL"] = "http://127.0.0.1:\(port)"
                }
                if scenario == "served" {
                    // The site: the context served as it is by CPython's http.server.
                    let p = Process()
                    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                    p.arguments = ["python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", app]
                    p.standardInput = FileHandle.nullDevice
                    let line = try startAndReadFirstLine(p)
                    server = p
                    guard let port = line.components(separatedBy: " port ").last?.split(separator: " ").first else {
                        Issue.record("http.server did not start: \(line)"); continue
                    }
                    env["SITE_URL"] = "http://127.0.0.1:\(port)"
                }
                defer { if let server, server.isRunning { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() } }
                for b in shellBlocks where b.scenario == scenario {
                    let r = try run("/bin/bash", ["-eo", "pipefail", "-c", b.code], cwd: app, env: engine.scriptEnv(env))
                    let all = r.out + r.err
                    print("README line \(b.line) (\(scenario)): exit \(r.status): \(all.split(separator: "\n").last ?? "")")
                    #expect(r.status == b.exit, "README line \(b.line) (\(scenario)) exited \(r.status), expected \(b.exit):\n\(b.code)\n\(all)")
                    for e in b.expects {
                        #expect(all.contains(e), "README line \(b.line) (\(scenario)) output lacks \"\(e)\":\n\(all)")
                    }
                }
            }
        }
    }

    /// The README's Flask health handler, run literally: the digest it serves is the one read at start.
    @Test func theHealthSnippetReadsTheDigestOnceAtStart() throws {
        try requireTool("python3")
        let readme = try Self.readme()
        guard let start = readme.range(of: "```python\n"), let end = readme[start.upperBound...].range(of: "```") else {
            Issue.record("README has no python example"); return
        }
        let snippet = String(readme[start.upperBound..<end.lowerBound])
        try withTempDir { dir in
            try writeFile(dir + "/ctx/app.py", "print(1)\n")
            #expect(try imprint("fingerprint", dir + "/ctx", "-q", "-o", dir + "/m.json", "--digest-file", dir + "/d.txt").status == 0)
            let digest = try String(contentsOfFile: dir + "/d.txt", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            try writeFile(dir + "/app.py", "import json, os\nfrom flask import Flask\napp = Flask(__name__)\n" + snippet + """

            import shutil
            first = app.test_client().get("/healthz").get_json()["imprint"]["digest"]
            # the file is replaced in place; the process keeps reporting what it started with
            with open(os.environ["IMPRINT_MANIFEST"], "w") as f:
                f.write('{"digest": "sha256:' + "0" * 64 + '"}')
            second = app.test_client().get("/healthz").get_json()["imprint"]["digest"]
            print(first, second)
            """)
            let r = try run("python3", [dir + "/app.py"], env: ["IMPRINT_MANIFEST": dir + "/m.json"])
            #expect(r.status == 0, "\(r.err)")
            #expect(r.out.trimmingCharacters(in: .whitespacesAndNewlines) == "\(digest) \(digest)", "\(r.out)")
        }
    }

    /// `script` (serve-digest.py) on a free port, serving `manifest`.
    func startDigestServer(script: String, manifest: String) throws -> (Process, Int) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script]
        var env = ProcessInfo.processInfo.environment
        env["IMPRINT_MANIFEST"] = manifest
        env["PORT"] = "0"
        p.environment = env
        let text = try startAndReadFirstLine(p)
        guard let port = text.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else {
            kill(p.processIdentifier, SIGKILL)
            throw ToolMissing(name: "serve-digest.py did not start: \(text)")
        }
        return (p, port)
    }
}
