import Foundation

/// `imprint diff A B`: loads both sides (sharing image layers when it can), aligns a manifest with the context's
/// place in the other side, and compares.
package struct DiffRequest {
    package var a: String
    package var b: String
    package var platform: String?
    /// For a manifest against an image or tree: where the context is in the other side (found when nil).
    package var at: String?
    package var differ = ImageDiff()
    /// Compare images that share bottom layers without hashing the shared files.
    package var layerSharing = true
    /// How `registry://` sides are reached.
    package var registry = RegistryOptions()
    /// Unified diffs of modified text files (at most `maxContentDiffs` files, `maxDiffBytes` of each).
    package var contentDiffs = true
    package var maxDiffBytes = 256 << 10
    package var maxContentDiffs = 500
    /// Package changes and RECORD checks.
    package var packages = true
    /// Report packages only.
    package var packagesOnly = false
    /// Files of `.dockerignore`-syntax patterns whose paths are left out, as `differ.ignore`.
    package var ignoreFiles: [String] = []
    /// Layer boundaries, build history and creation time make no difference (`DiffReport.semantic`).
    package var semantic = false
    /// A CPython whose disassembly of modified `.pyc` files is diffed (nil: none).
    package var python: String?

    package init(a: String, b: String) { self.a = a; self.b = b }

    /// Whether the layer-sharing statistics are printed (`IMPRINT_DIFF_STATS` set: for the benchmarks and tests
    /// that check what sharing skipped).
    package static var statisticsRequested: Bool { ProcessInfo.processInfo.environment["IMPRINT_DIFF_STATS"] != nil }

    /// - Returns: the report and, when layers were shared, what was skipped.
    package func run() throws -> (report: DiffReport, statistics: LayeredDiff.Statistics?) {
        var request = self
        for file in ignoreFiles {
            let text = String(decoding: try readFile(file, what: "ignore file"), as: UTF8.self)
            request.differ.ignore += text.split(whereSeparator: \.isNewline).map(String.init)
        }
        var (report, statistics) = try request.compareTrees()
        try request.addForensics(&report)
        return (report, statistics)
    }

    /// Reads again what the trees cannot show — the modified files' content and the package databases — and adds
    /// content diffs, package changes and RECORD mismatches to `report`.
    func addForensics(_ report: inout DiffReport) throws {
        report.packagesOnly = packagesOnly
        report.semantic = semantic
        guard contentDiffs || packages || packagesOnly else { return }
        if report.a.kind == "manifest" || report.b.kind == "manifest" {
            report.forensicsNote = "contents and packages are not compared: a manifest holds digests, not content"
            if packagesOnly { throw ImprintError.badInput("--packages-only needs two sides with content (images, trees, tar files), not a manifest") }
            return
        }
        var limitsA: [Bytes: Int] = [:], limitsB: [Bytes: Int] = [:]
        let modified = contentDiffs && !packagesOnly
            ? report.changes.filter { $0.kind == .content && $0.left?.type == .file && $0.right?.type == .file }.map(\.path) : []
        for p in modified.prefix(maxContentDiffs) { limitsA[p] = maxDiffBytes; limitsB[p] = maxDiffBytes }
        if packages || packagesOnly {
            for p in PackageInventory.databaseFiles(report.a.tree) { limitsA[p] = 64 << 20 }
            for p in PackageInventory.databaseFiles(report.b.tree) { limitsB[p] = 64 << 20 }
        }
        let filesA = try SourceContent.read(a, tree: report.a.tree, limits: limitsA, platform: platform, registry: registry)
        let filesB = try SourceContent.read(b, tree: report.b.tree, limits: limitsB, platform: platform, registry: registry)
        for p in modified.prefix(maxContentDiffs) {
            var c = UnifiedDiff.compare(path: "/" + p.lossyString, a: filesA[p], b: filesB[p])
            if let python, p.lossyString.hasSuffix(".pyc"), let fa = filesA[p], let fb = filesB[p], fa.complete, fb.complete {
                c = BytecodeDisassembly.diff(path: "/" + p.lossyString, a: fa.bytes, b: fb.bytes, python: python) ?? c
            }
            report.contents.append(c)
        }
        if modified.count > maxContentDiffs {
            report.forensicsNote = "content diffs of the first \(maxContentDiffs) of \(modified.count) modified files"
        }
        if packages || packagesOnly {
            report.packages = PackageInventory.changes(PackageInventory.packages(filesA), PackageInventory.packages(filesB))
            report.installedFiles = PackageInventory.recordMismatches(report.a.tree, files: filesA, side: "a")
                + PackageInventory.recordMismatches(report.b.tree, files: filesB, side: "b")
        }
        if packagesOnly {
            report.changes = []
            report.config = []
            report.manifestChanges = []
        }
    }

    func compareTrees() throws -> (report: DiffReport, statistics: LayeredDiff.Statistics?) {
        if a == "-" && b == "-" { throw ImprintError.badInput("only one side can be - (stdin)") }
        if layerSharing, let r = try LayeredDiff.compare(a, b, platform: platform, differ: differ, registry: registry) {
            return (r.report, r.statistics)
        }
        var sideA = try DiffSide.load(a, platform: platform, registry: registry)
        var sideB = try DiffSide.load(b, platform: platform, registry: registry)
        // A manifest against a container or image: compare the manifest with the context's subtree.
        if sideA.kind == "manifest", sideB.kind != "manifest" {
            try align(manifestSide: a, other: &sideB)
        } else if sideB.kind == "manifest", sideA.kind != "manifest" {
            try align(manifestSide: b, other: &sideA)
        }
        return (try differ.compare(sideA, sideB), nil)
    }

    private func align(manifestSide spec: String, other: inout DiffSide) throws {
        let m = try ManifestReference.load(spec).manifest
        let (sub, path) = try ImageDiff.align(m, in: other.tree, at: at)
        other.tree = sub
        other.name += " at \(path)"
        other.manifest = nil
    }
}
