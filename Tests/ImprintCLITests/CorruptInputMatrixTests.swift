import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Every reader, through every command that reads it, on damaged copies of real inputs: truncated, bytes flipped in
/// headers, bodies and trailers, absurd sizes and counts, broken digests, missing blobs.
///
/// Whatever the damage: no trap, no hang; exit 0, 1 or 2, and a 2 is exactly one `imprint: error:` line; no output
/// file is left behind and nothing is written outside it. Damage a command must notice (a blob it reads, a stamp's
/// base) must be exit 2. The outcome counts are printed (the closing note quotes them).
@Suite(.serialized) struct CorruptInputMatrixTests {
    struct Outcome { var exit0 = 0, exit1 = 0, exit2 = 0 }

    /// Where a file is damaged: its first bytes (headers), middle (bodies), last bytes (trailers).
    static func offsets(_ size: Int) -> [Int] {
        Array(Set([0, 1, 3, 100, 148, 156, 257, 512, 600, size / 3, size / 2, size - 1030, size - 20, size - 1].filter { $0 >= 0 && $0 < size })).sorted()
    }

    static func truncations(_ size: Int) -> [Int] {
        Array(Set([0, 1, 100, 511, 512, 1024, size / 2, size - 1].filter { $0 >= 0 && $0 < size })).sorted()
    }

    static func flip(_ path: String, at offset: Int) throws {
        var d = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        d[offset] ^= 0xA5
        try Data(d).write(to: URL(fileURLWithPath: path))
    }

    static func truncate(_ path: String, to size: Int) { Glibc.truncate(path, off_t(size)) }

    /// Runs one command in an empty working directory with an empty TMPDIR and checks the rules above.
    func check(_ args: [String], output: String? = nil, mustFail: Bool, stdinFile: String? = nil, label: String,
               outcome: inout Outcome, sourceLocation: SourceLocation = #_sourceLocation) throws {
        if let output { try? FileManager.default.removeItem(atPath: output) }
        try withTempDir { scratch in
            try FileManager.default.createDirectory(atPath: scratch + "/cwd", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: scratch + "/tmp", withIntermediateDirectories: true)
            let r = try run(TestEnv.imprintPath, args, cwd: scratch + "/cwd", stdinFile: stdinFile,
                            env: ["TMPDIR": scratch + "/tmp", "IMPRINT_HISTORY": scratch + "/cwd/never-created"])
            #expect([0, 1, 2].contains(r.status), "\(label): exit \(r.status) for \(args): \(r.err.prefix(400))", sourceLocation: sourceLocation)
            if mustFail { #expect(r.status == 2, "\(label): expected exit 2 for \(args), got \(r.status)", sourceLocation: sourceLocation) }
            switch r.status {
            case 0: outcome.exit0 += 1
            case 1: outcome.exit1 += 1
            default:
                outcome.exit2 += 1
                let lines = r.err.split(separator: "\n")
                #expect(lines.count == 1 && lines[0].hasPrefix("imprint: error: "), "\(label): \(args): \(r.err.prefix(600))", sourceLocation: sourceLocation)
                if let output { #expect(!FileManager.default.fileExists(atPath: output), "\(label): \(output) left behind", sourceLocation: sourceLocation) }
            }
            let strays = ((try? FileManager.default.contentsOfDirectory(atPath: scratch + "/cwd")) ?? [])
                + ((try? FileManager.default.contentsOfDirectory(atPath: scratch + "/tmp")) ?? [])
            #expect(strays.isEmpty, "\(label): wrote \(strays) outside its output", sourceLocation: sourceLocation)
        }
    }

    @Test(.tags(.engine)) func imagesDamagedEveryWay() throws {
        let img = try BuiltImage.get()
        var outcome = Outcome()
        try withTempDir { t in
            #expect(try imprint("fingerprint", img.context, "-q", "-o", t + "/m.json").status == 0)
            for (kind, original) in [("oci-archive", img.ociArchive), ("docker-archive", img.dockerArchive)] {
                let size = Int((try FileManager.default.attributesOfItem(atPath: original)[.size] as? NSNumber)?.intValue ?? 0)
                var mutants: [(String, (String) throws -> Void)] = []
                for o in Self.offsets(size) { mutants.append(("flip@\(o)", { try Self.flip($0, at: o) })) }
                for n in Self.truncations(size) { mutants.append(("truncate@\(n)", { Self.truncate($0, to: n) })) }
                for (name, mutate) in mutants {
                    let bad = "\(t)/\(kind)-\(name).tar"
                    try sh("cp '\(original)' '\(bad)'")
                    try mutate(bad)
                    let label = "\(kind) \(name)"
                    try check(["verify", bad, "--manifest", t + "/m.json", "--at", "/app", "-o", t + "/report.txt"], output: t + "/report.txt",
                              mustFail: false, label: label, outcome: &outcome)
                    try check(["extract", bad, "-o", t + "/x.json"], output: t + "/x.json", mustFail: false, label: label, outcome: &outcome)
                    try check(["inspect", bad, "--tree-digest"], mustFail: false, label: label, outcome: &outcome)
                    try check(["diff", bad, original, "-o", t + "/d.txt"], output: t + "/d.txt", mustFail: false, label: label, outcome: &outcome)
                    // A base that is damaged anywhere it matters never comes out stamped.
                    let stamped = t + "/stamped.tar"
                    try check(["stamp", bad, "--manifest", t + "/m.json", "-o", stamped], output: stamped, mustFail: false, label: label, outcome: &outcome)
                    if FileManager.default.fileExists(atPath: stamped) {
                        // Whatever stamp accepted must read back whole.
                        let back = try imprint("inspect", stamped, "--tree-digest")
                        #expect(back.status == 0, "\(label): stamp wrote an image that does not read back: \(back.err)")
                        try FileManager.default.removeItem(atPath: stamped)
                    }
                }
            }
            // OCI layout: each blob damaged or removed in turn; stamp must refuse and leave the layout as it was.
            let blobs = try FileManager.default.contentsOfDirectory(atPath: img.layout + "/blobs/sha256").sorted()
            for blob in blobs {
                for damage in ["flip", "truncate", "remove"] {
                    let layout = "\(t)/layout-\(blob.prefix(8))-\(damage)"
                    try sh("cp -a '\(img.layout)' '\(layout)'")
                    let p = "\(layout)/blobs/sha256/\(blob)"
                    switch damage {
                    case "flip": try Self.flip(p, at: 10)
                    case "truncate": Self.truncate(p, to: 10)
                    default: try FileManager.default.removeItem(atPath: p)
                    }
                    let label = "oci layout blob \(blob.prefix(12)) \(damage)"
                    let indexBefore = try Data(contentsOf: URL(fileURLWithPath: layout + "/index.json"))
                    try check(["stamp", layout, "--manifest", t + "/m.json"], mustFail: true, label: label, outcome: &outcome)
                    #expect(try Data(contentsOf: URL(fileURLWithPath: layout + "/index.json")) == indexBefore, "\(label): index.json changed")
                    try check(["inspect", layout, "--tree-digest"], mustFail: true, label: label, outcome: &outcome)
                    try check(["verify", layout, "--manifest", t + "/m.json", "--at", "/app"], mustFail: true, label: label, outcome: &outcome)
                    try check(["diff", layout, img.layout], mustFail: true, label: label, outcome: &outcome)
                }
            }
        }
        print("corrupt-input matrix (images): \(outcome.exit0 + outcome.exit1 + outcome.exit2) runs: exit 0 \(outcome.exit0), exit 1 \(outcome.exit1), exit 2 \(outcome.exit2)")
        #expect(outcome.exit2 > 0)
    }

    @Test(.tags(.engine)) func streamsManifestsAndHistoriesDamagedEveryWay() throws {
        let img = try BuiltImage.get()
        var outcome = Outcome()
        try withTempDir { t in
            try sh("tar -C '\(img.context)' -cf '\(t)/fs.tar' . && gzip -k '\(t)/fs.tar'")
            #expect(try imprint("fingerprint", img.context, "-q", "-o", t + "/m.json").status == 0)
            // Filesystem tar streams (plain and gzip), on stdin and as files.
            for original in [t + "/fs.tar", t + "/fs.tar.gz"] {
                let size = Int((try FileManager.default.attributesOfItem(atPath: original)[.size] as? NSNumber)?.intValue ?? 0)
                for (name, mutate) in Self.offsets(size).map({ o in ("flip@\(o)", { (p: String) in try Self.flip(p, at: o) }) })
                    + Self.truncations(size).map({ n in ("truncate@\(n)", { (p: String) in Self.truncate(p, to: n) }) }) {
                    let bad = t + "/bad-" + (original as NSString).lastPathComponent
                    try sh("cp '\(original)' '\(bad)'")
                    try mutate(bad)
                    let label = "\((original as NSString).lastPathComponent) \(name)"
                    try check(["verify", "-", "--manifest", t + "/m.json"], mustFail: false, stdinFile: bad, label: label, outcome: &outcome)
                    try check(["inspect", bad, "--tree-digest"], mustFail: false, label: label, outcome: &outcome)
                }
            }
            // Manifests: damaged JSON, absurd sizes and counts, a broken digest.
            let manifest = try String(contentsOfFile: t + "/m.json", encoding: .utf8)
            let variants: [(String, String)] = [
                ("truncated", String(manifest.prefix(manifest.count / 2))),
                ("negative size", manifest.replacingOccurrences(of: "\"size\":", with: "\"size\":-")),
                ("huge size", manifest.replacingOccurrences(of: "\"size\":", with: "\"size\":9999999999999999999")),
                ("fractional size", manifest.replacingOccurrences(of: "\"size\":1", with: "\"size\":1.5")),
                ("broken digest", manifest.replacingOccurrences(of: "\"digest\": \"sha256:", with: "\"digest\": \"sha256:0")),
                ("altered entry", manifest.replacingOccurrences(of: "\"mode\":\"0644\"", with: "\"mode\":\"0600\"")),
                ("not json", "\u{1}\u{2}garbage"),
            ]
            for (name, text) in variants {
                try writeFile(t + "/bad.json", text)
                try check(["verify", img.context, "--manifest", t + "/bad.json"], mustFail: true, label: "manifest \(name)", outcome: &outcome)
                try check(["diff", t + "/bad.json", t + "/m.json"], mustFail: true, label: "manifest \(name)", outcome: &outcome)
            }
            // History export archives and stored objects.
            let store = t + "/store"
            #expect(try imprint("history", "add", t + "/m.json", "--history", store).status == 0)
            #expect(try imprint("history", "export", "-o", t + "/h.gz", "--history", store).status == 0)
            try sh("gzip -dc '\(t)/h.gz' > '\(t)/h.raw'")
            let raw = Array(try Data(contentsOf: URL(fileURLWithPath: t + "/h.raw")))
            let nl = raw.firstIndex(of: 0x0A) ?? 0
            var archives: [(String, [UInt8])] = []
            for o in Self.offsets(raw.count) where o > nl { var r = raw; r[o] ^= 0xA5; archives.append(("flip@\(o)", r)) }
            for n in Self.truncations(raw.count) { archives.append(("truncate@\(n)", Array(raw[..<n]))) }
            let index = String(decoding: raw[..<nl], as: UTF8.self)
            for (name, count) in [("negative count", "-3"), ("huge count", "99999999999"), ("fractional count", "1.5")] {
                let changed = index.replacingOccurrences(of: #""objects":\d+"#, with: "\"objects\":\(count)", options: .regularExpression)
                archives.append((name, Array(changed.utf8) + Array(raw[nl...])))
            }
            var hugeBody = raw
            if nl + 41 < hugeBody.count { hugeBody[nl + 38] = 0x7F; archives.append(("huge body length", hugeBody)) }
            for (name, bytes) in archives {
                try Data(bytes).write(to: URL(fileURLWithPath: t + "/bad.raw"))
                try sh("gzip -c '\(t)/bad.raw' > '\(t)/bad.gz'")
                let fresh = t + "/import-\(name.replacingOccurrences(of: " ", with: "-"))"
                try check(["history", "import", t + "/bad.gz", "--history", fresh], mustFail: !name.hasPrefix("flip"), label: "export \(name)", outcome: &outcome)
                // A failed import leaves no record and no staging directory behind.
                let left = (try? FileManager.default.contentsOfDirectory(atPath: fresh + "/records")) ?? []
                let sound = left.isEmpty ? true : (try imprint("history", "fsck", "--history", fresh)).status == 0
                #expect(sound, "export \(name): partial import")
                #expect(((try? FileManager.default.contentsOfDirectory(atPath: fresh)) ?? []).allSatisfy { !$0.hasPrefix(".import-") })
            }
            // Stored objects damaged in place: fsck reports (exit 1), reads fail in one line (exit 2).
            let objects = try FileManager.default.subpathsOfDirectory(atPath: store + "/objects").filter { $0.count > 10 }
            for (i, rel) in objects.enumerated() {
                let copy = t + "/store-copy-\(i)"
                try sh("cp -a '\(store)' '\(copy)' && chmod -R u+w '\(copy)'")
                let p = copy + "/objects/" + rel
                if i % 2 == 0 { try Self.flip(p, at: 50) } else {
                    // The header claims a huge body (the 45-byte header case).
                    var d = Array(try Data(contentsOf: URL(fileURLWithPath: p)))
                    d[9] = 0x0F; d[10] = 0xFF
                    try Data(d).write(to: URL(fileURLWithPath: p))
                }
                let fsck = try imprint("history", "fsck", "--history", copy)
                #expect(fsck.status == 1, "fsck of a damaged object: \(fsck.out) \(fsck.err)")
                try check(["history", "show", "@", "--format", "json", "--history", copy], mustFail: true, label: "object \(rel)", outcome: &outcome)
            }
        }
        print("corrupt-input matrix (streams, manifests, history): \(outcome.exit0 + outcome.exit1 + outcome.exit2) runs: exit 0 \(outcome.exit0), exit 1 \(outcome.exit1), exit 2 \(outcome.exit2)")
        #expect(outcome.exit2 > 0)
    }
}
