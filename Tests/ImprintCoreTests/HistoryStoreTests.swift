import Foundation
import Testing
@testable import ImprintCore

/// A small manifest: `files` distinct files spread over four directories, plus a subtree shared by every seed.
func historyManifest(seed: Int, files: Int = 12) -> Manifest {
    let t = Tree()
    for i in 0..<files {
        t.insert(Bytes(utf8: "src/d\(i % 4)/f\(i).py"),
                 TreeNode(type: .file, mode: 0o644, size: UInt64(seed * 1000 + i), digest: SHA256.hash(Bytes(utf8: "\(seed)-\(i)"))))
    }
    for i in 0..<5 {
        t.insert(Bytes(utf8: "vendor/lib/m\(i).so"), TreeNode(type: .file, mode: 0o755, size: UInt64(i), digest: SHA256.hash(Bytes(utf8: "lib\(i)"))))
    }
    t.insert(Bytes(utf8: "vendor/current"), .symlink(Bytes(utf8: "lib/m0.so")))
    t.insert(Bytes(utf8: "dev/null"), .device(.charDevice, mode: 0o666, major: 1, minor: 3))
    t.insert(Bytes(utf8: "run/fifo"), TreeNode(type: .fifo, mode: 0o600, digest: .empty))
    t.insert(Bytes([0x62, 0x61, 0x64, 0xFF, 0x6E]), TreeNode(type: .file, mode: 0o600, size: 3, digest: SHA256.hash([1, 2, 3])))
    t.computeDigests()
    var meta = ManifestMetadata()
    meta.created = "2024-05-01T10:00:00Z"
    meta.gitCommit = String(format: "%040x", seed)
    meta.gitBranch = "main"
    meta.gitDirty = seed % 2 == 0
    meta.ci = [("CI_JOB_ID", "\(seed)"), ("GITHUB_SHA", "abc")]
    return Manifest(tree: t, findings: [HygieneFinding(kind: .bytecode, path: "x.pyc", message: "compiled")], metadata: meta)
}

func withStore<T>(_ body: (HistoryStore, String) throws -> T) throws -> T {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imprint-hist-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    return try body(try HistoryStore(at: dir + "/store"), dir)
}

@Suite struct HistoryStoreTests {
    @Test func directoryObjectRoundTripsAndItsIdIsTheMerkleDigest() throws {
        let m = historyManifest(seed: 1)
        var dirs: [TreeNode] = [m.tree.root]
        m.tree.walk { _, n in if n.type == .directory { dirs.append(n) } }
        for dir in dirs {
            let (body, ilen) = DirectoryObject.encode(dir)
            let id = SHA256.hash(Array(body[..<ilen]))
            #expect(id == dir.digest)
            let file = try ObjectStore.encode(kind: .directory, body: body, identifiedLength: ilen)
            let o = try ObjectStore.decode(file, id: id)
            let kids = try DirectoryObject.decode(o)
            #expect(kids.map(\.name) == dir.sortedChildren.map(\.name))
            for ((_, a), (_, b)) in zip(kids, dir.sortedChildren) {
                #expect(a.sameContent(as: b))
                if b.type != .directory { #expect(a.size == b.size) }
                #expect(a.target == b.target)
                #expect(a.devMajor == b.devMajor && a.devMinor == b.devMinor)
            }
        }
    }

    @Test func everyFlippedByteIsDetected() throws {
        let m = historyManifest(seed: 2)
        let (body, ilen) = DirectoryObject.encode(m.tree.root)
        let file = try ObjectStore.encode(kind: .directory, body: body, identifiedLength: ilen)
        for i in 0..<file.count {
            var bad = file
            bad[i] ^= 0x01
            #expect(throws: ImprintError.self) { try ObjectStore.decode(bad, id: m.rootDigest) }
        }
    }

    @Test func manifestRoundTripsByteForByte() throws {
        try withStore { store, _ in
            let m = historyManifest(seed: 3)
            var r = BuildRecord(manifest: m)
            r.tags = ["release", "v1"]
            r.imageDigest = "sha256:" + String(repeating: "ab", count: 32)
            try r.addStepRecord(Bytes(utf8: #"{"step":"build","exit":0,"ok":true}"#))
            try r.attach("sbom", json: Bytes(utf8: #"[1,2,"x"]"#))
            let e = try store.add(r, tree: m.tree)
            #expect(try store.manifest(for: e).jsonBytes() == m.jsonBytes())
            let back = try store.record(e.record)
            #expect(back.jsonBytes() == r.jsonBytes())
            #expect(back.steps.count == 1)
            #expect(try store.resolve("release") == e)
            #expect(try store.resolve(String(e.root.hex.prefix(8))) == e)
            #expect(try store.resolve("@~0") == e)
        }
    }

    @Test func sharedSubtreesAreStoredOnce() throws {
        try withStore { store, _ in
            let a = historyManifest(seed: 10), b = historyManifest(seed: 11)
            try store.add(a)
            let before = store.objects.enumerate().objects.count
            try store.add(b)
            let after = store.objects.enumerate().objects.count
            // b adds: root, src, src/d0..d3 (all differ), its record. vendor, vendor/lib, dev, run are shared.
            #expect(after - before == 1 + 1 + 4 + 1)
            let vendor = a.tree.node(at: Bytes(utf8: "vendor"))!.digest
            #expect(vendor == b.tree.node(at: Bytes(utf8: "vendor"))!.digest)
            #expect(store.objects.contains(vendor))
        }
    }

    @Test func diffWalksOnlyDifferingSubtrees() throws {
        try withStore { store, _ in
            let a = historyManifest(seed: 20)
            let b = historyManifest(seed: 20)
            b.tree.node(at: Bytes(utf8: "src/d1/f1.py"))!.digest = SHA256.hash([9])
            b.tree.remove(Bytes(utf8: "vendor/lib"))
            b.tree.insert(Bytes(utf8: "new/x"), TreeNode(type: .file, mode: 0o644, size: 1, digest: SHA256.hash([7])))
            b.tree.computeDigests()
            let ea = try store.add(a), eb = try store.add(b)
            let changes = try store.diff(from: ea.root, to: eb.root)
            let lines = changes.map { "\($0.kind.rawValue) \($0.path.lossyString)" }
            #expect(lines == ["added new", "added new/x", "modified src/d1/f1.py", "removed vendor/lib",
                              "removed vendor/lib/m0.so", "removed vendor/lib/m1.so", "removed vendor/lib/m2.so",
                              "removed vendor/lib/m3.so", "removed vendor/lib/m4.so"])
            #expect(try store.diff(from: ea.root, to: ea.root).isEmpty)
        }
    }

    @Test func exportImportPruneAndFsck() throws {
        try withStore { store, dir in
            var entries: [HistoryEntry] = []
            for s in 0..<5 { entries.append(try store.add(historyManifest(seed: 30 + s), tags: s == 0 ? ["keep"] : [])) }
            try store.export(entries, to: dir + "/x.gz")
            let other = try HistoryStore(at: dir + "/other")
            let r1 = try other.importArchive(dir + "/x.gz")
            #expect(r1.recordsAdded == 5)
            let r2 = try other.importArchive(dir + "/x.gz")
            #expect(r2.recordsAdded == 0 && r2.objectsWritten == 0)
            #expect(try other.entries() == store.entries())

            let pr = try store.prune(HistoryPrunePolicy(keepLast: 2, keepTags: ["keep"]))
            #expect(pr.removedRecords.count == 2 && pr.keptRecords == 3)
            #expect(pr.removedObjects > 0)
            let report = try store.fsck()
            #expect(report.isClean && report.unreferenced.isEmpty)
            for e in try store.entries() { _ = try store.manifest(for: e) }
        }
    }

    @Test func timesRoundTrip() {
        for n: Int64 in [0, 1_700_000_000_123_456_789, 1_234_000_000_000_000_001] {
            #expect(HistoryTime.parse(HistoryTime.rfc3339(nanos: n)) == n)
        }
        #expect(HistoryTime.parse("2024-01-02") == Int64(1_704_153_600) * 1_000_000_000)
        #expect(HistoryTime.parse("@10") == Int64(10_000_000_000))
        #expect(HistoryTime.parse("yesterday") == nil)
    }
}

@Suite struct RFC3339Tests {
    /// The formatter against glibc's gmtime_r over a spread of times, before and after the epoch.
    @Test func agreesWithGmtime() {
        var seconds: Int64 = -62_135_596_800   // 0001-01-01
        while seconds < 253_402_300_799 {      // 9999-12-31
            var t = time_t(seconds)
            var tmv = tm()
            gmtime_r(&t, &tmv)
            func p(_ v: Int32, _ n: Int) -> String { String(repeating: "0", count: max(0, n - String(v).count)) + String(v) }
            let expected = "\(p(tmv.tm_year + 1900, 4))-\(p(tmv.tm_mon + 1, 2))-\(p(tmv.tm_mday, 2))T\(p(tmv.tm_hour, 2)):\(p(tmv.tm_min, 2)):\(p(tmv.tm_sec, 2))Z"
            #expect(RFC3339.format(seconds: seconds) == expected)
            seconds += 86_399 * 97 + 7_919
        }
        #expect(RFC3339.format(seconds: 1_700_000_000, fraction: 5, fractionDigits: 9) == "2023-11-14T22:13:20.000000005Z")
        #expect(RFC3339.format(seconds: 0, fraction: 7, fractionDigits: 3) == "1970-01-01T00:00:00.007Z")
        #expect(HistoryTime.rfc3339(nanos: -1) == "1969-12-31T23:59:59.999999999Z")
        #expect(HistoryTime.parse(HistoryTime.rfc3339(nanos: Int64.max)) == Int64.max)
        #expect(HistoryTime.parse(HistoryTime.rfc3339(nanos: Int64.min)) == Int64.min)
    }
}

@Suite struct SummaryIndexTests {
    /// records.index is a cache: what another process adds, a damaged index, a deleted ref file — the listing is
    /// always what the ref files say.
    @Test func theListingIsAlwaysWhatTheRefFilesSay() throws {
        try withStore { store, dir in
            for seed in 1...5 { _ = try store.add(historyManifest(seed: seed)) }
            let first = try store.entries()
            #expect(first.count == 5)
            #expect(FileManager.default.fileExists(atPath: dir + "/store/records.index"))
            #expect(try store.entries().map(\.record) == first.map(\.record))
            // Another process adds a record.
            let other = try HistoryStore(at: dir + "/store", create: false)
            _ = try other.add(historyManifest(seed: 6))
            #expect(try store.entries().count == 6)
            // A damaged index: a record id swapped for another.
            var text = try String(contentsOfFile: dir + "/store/records.index", encoding: .utf8)
            let lines = text.split(separator: "\n")
            text = text.replacingOccurrences(of: String(lines[0].split(separator: "\t")[0]), with: String(lines[1].split(separator: "\t")[0]))
            try text.write(toFile: dir + "/store/records.index", atomically: true, encoding: .utf8)
            #expect(Set(try store.entries().map(\.record)).count == 6)
            try "garbage\n".write(toFile: dir + "/store/records.index", atomically: true, encoding: .utf8)
            #expect(try store.entries().count == 6)
            // A ref file removed by hand.
            let refs = try FileManager.default.contentsOfDirectory(atPath: dir + "/store/records").filter { !$0.hasPrefix(".") }.sorted()
            try FileManager.default.removeItem(atPath: dir + "/store/records/" + refs[0])
            #expect(try store.entries().count == 5)
        }
    }
}
