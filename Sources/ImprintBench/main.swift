// Benchmark drivers for ci/bench-*.sh: in-process measurements the shipped `imprint` binary has no business
// carrying. Usage:
//   imprint-bench history-build --history DIR --manifest M --builds N --changes K --sample-dir D --sample-every S
//   imprint-bench history-diff --history DIR --from REF --to REF --json-a A --json-b B [--iterations N]
//   imprint-bench ignore-match PATTERN PATH [--iterations N]
//   imprint-bench process-scan pid:N|docker:NAME [--iterations N]
import Foundation
import ImprintCore

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("imprint-bench: \(message)\n".utf8))
    exit(2)
}

/// `--name value` options after the subcommand.
func options(_ args: ArraySlice<String>) -> [String: String] {
    var out: [String: String] = [:]
    var i = args.startIndex
    while i < args.endIndex {
        guard args[i].hasPrefix("--"), i + 1 < args.endIndex else { fail("bad argument \(args[i])") }
        out[String(args[i].dropFirst(2))] = args[i + 1]
        i += 2
    }
    return out
}

func required(_ o: [String: String], _ k: String) -> String {
    guard let v = o[k] else { fail("missing --\(k)") }
    return v
}

/// Replays BUILDS builds of one manifest, each changing CHANGES random files at the tree level, through the same
/// `HistoryStore.add` path as `imprint history add`; writes builds n and n+1 for n a multiple of SAMPLE.
func historyBuild(_ o: [String: String]) throws {
    let manifestPath = required(o, "manifest")
    let builds = Int(o["builds"] ?? "1000") ?? 1000, changes = Int(o["changes"] ?? "10") ?? 10
    let sampleDir = required(o, "sample-dir"), sampleEvery = Int(o["sample-every"] ?? "100") ?? 100
    let m = try Manifest.parse(try readFile(manifestPath, what: "manifest"), source: manifestPath)
    let store = try HistoryStore(at: required(o, "history"), create: true)
    let files = m.tree.entries.filter { $0.node.type == .file }.map(\.path)
    var rng = SplitMix64(seed: 42)
    var rawBytes = 0
    var addSeconds = 0.0
    let start = Date()
    for b in 0..<builds {
        if b > 0 {
            for _ in 0..<changes {
                let p = files[Int(rng.next() % UInt64(files.count))]
                guard let node = m.tree.node(at: p) else { continue }
                node.digest = SHA256.hash(Array(String(rng.next()).utf8))
                node.size = rng.next() % 100_000
            }
            m.tree.computeDigests()
        }
        var meta = m.metadata
        meta.created = ManifestMetadata.rfc3339(1_700_000_000 + Int64(b) * 600)
        meta.gitCommit = String(format: "%040x", b)
        let built = Manifest(tree: m.tree, findings: m.findings, metadata: meta)
        let json = built.jsonBytes()
        rawBytes += json.count
        if b % sampleEvery == 0 || b % sampleEvery == 1 { try AtomicFile.write(json, to: sampleDir + "/build-\(b).json") }
        let t0 = Date()
        try store.add(built, tags: b % sampleEvery == 0 ? ["sample-\(b)"] : [])
        addSeconds += Date().timeIntervalSince(t0)
    }
    print("{\"builds\": \(builds), \"rawJSONBytes\": \(rawBytes), \"addSeconds\": \(String(format: "%.3f", addSeconds)), \"totalSeconds\": \(String(format: "%.3f", Date().timeIntervalSince(start)))}")
}

/// Times, in one process, a history diff of two records against parsing and diffing their two JSON manifests.
func historyDiff(_ o: [String: String]) throws {
    let store = try HistoryStore(at: required(o, "history"), create: false)
    let iterations = Int(o["iterations"] ?? "10") ?? 10
    let all = try store.entries()
    let a = try store.resolve(required(o, "from"), in: all), b = try store.resolve(required(o, "to"), in: all)
    var changes = 0
    var t = Date()
    for _ in 0..<iterations { changes = try store.diff(from: a.root, to: b.root).count }
    let storeMs = Date().timeIntervalSince(t) * 1000 / Double(iterations)
    let jsonA = required(o, "json-a"), jsonB = required(o, "json-b")
    var manifestChanges = 0
    t = Date()
    for _ in 0..<iterations {
        let ma = try Manifest.parse(try readFile(jsonA), source: jsonA)
        let mb = try Manifest.parse(try readFile(jsonB), source: jsonB)
        var left: [Bytes: TreeNode] = [:]
        ma.tree.walk { p, n in left[p] = n }
        manifestChanges = 0
        mb.tree.walk { p, n in
            if let old = left.removeValue(forKey: p) {
                if n.type != .directory && !old.sameContent(as: n) { manifestChanges += 1 }
            } else { manifestChanges += 1 }
        }
        manifestChanges += left.count
    }
    let manifestMs = Date().timeIntervalSince(t) * 1000 / Double(iterations)
    print(String(format: "{\"storeDiffMs\": %.3f, \"storeChanges\": %d, \"manifestParseDiffMs\": %.3f, \"manifestChanges\": %d}", storeMs, changes, manifestMs, manifestChanges))
}

/// The median time to decide one path against one `.dockerignore` pattern (parsing excluded).
func ignoreMatch(_ pattern: String, _ path: String, iterations: Int) throws {
    let ig = try DockerIgnore.parse(Array(pattern.utf8), file: ".dockerignore")
    let p = Array(path.utf8)
    var times: [Double] = []
    var excluded = false
    for _ in 0..<iterations {
        let t = Deadline.now()
        excluded = try ig.decide(p, parent: nil).excluded
        times.append(Double(Deadline.now().nanos - t.nanos) / 1e6)
    }
    times.sort()
    print(String(format: "{\"medianMs\": %.4f, \"maxMs\": %.4f, \"excluded\": %@}", times[times.count / 2], times.last ?? 0, excluded ? "true" : "false"))
}

/// The time to list a live target's processes and run every process check on them (no files compared).
func processScan(_ spec: String, iterations: Int) throws {
    let source = try LiveSource.open(spec)
    var times: [Double] = []
    var count = 0
    var findings = 0
    for _ in 0..<iterations {
        let t = Deadline.now()
        let procs = source.processes()
        findings = ProcessChecks.check(source, processes: procs, tree: nil, at: "/", manifest: nil).count
        count = procs.count
        times.append(Double(Deadline.now().nanos - t.nanos) / 1e6)
    }
    times.sort()
    print(String(format: "{\"processes\": %d, \"findings\": %d, \"medianMs\": %.2f}", count, findings, times[times.count / 2]))
}

let args = CommandLine.arguments.dropFirst()
do {
    switch args.first {
    case "history-build": try historyBuild(options(args.dropFirst()))
    case "history-diff": try historyDiff(options(args.dropFirst()))
    case "process-scan":
        let rest = Array(args.dropFirst())
        guard let spec = rest.first else { fail("usage: imprint-bench process-scan SPEC [--iterations N]") }
        try processScan(spec, iterations: Int(options(rest.dropFirst()[...])["iterations"] ?? "9") ?? 9)
    case "ignore-match":
        let rest = Array(args.dropFirst())
        guard rest.count >= 2 else { fail("usage: imprint-bench ignore-match PATTERN PATH [--iterations N]") }
        try ignoreMatch(rest[0], rest[1], iterations: Int(options(rest.dropFirst(2)[...])["iterations"] ?? "101") ?? 101)
    default: fail("usage: imprint-bench history-build|history-diff|ignore-match …")
    }
} catch let e as ImprintError {
    fail(e.message)
}
