import Foundation

/// `imprint diff` of two images that share their bottom layers, at about the cost of the layers they do not share.
///
/// Layers `0..<k` are shared when both images have the same diff_id at the same position (or, with no diff_ids,
/// the same blob digest). Whatever no layer above `k` touches is identical on both sides by construction, so it
/// cannot be a difference. The diff therefore:
///
/// 1. reads each side's own layers (`k…`) first, hashing their files and recording every path they write, whiteout
///    (`.wh.x`) and opaque directory;
/// 2. streams the shared layers once, from side A, in parallel: every entry's header is taken (the structure,
///    layer attribution, `.pyc` headers and `.py` source hashes the bytecode checks need, the embedded manifest),
///    but a file's content is hashed only when some side's own layers touch it: the path itself or one of its
///    parents is written, a whiteout or opaque directory covers it, a non-directory replaces a directory above it,
///    or a hard link points to it. Other files get a placeholder digest (`LayerFlattener.placeholderDigest`) that
///    is the same on both sides;
/// 3. copies that base tree, applies each side's own layers to its copy, and compares the two trees as usual:
///    the placeholders sit in identical subtrees, which `TreeComparison` never enters.
///
/// A shared layer's blob is read (and verified) once, from A's image; B's copy, having the same digest, is not
/// read. Should a change ever reference a placeholder (a hard link inside the shared layers to a file only a link
/// points to), both images are flattened in full instead, so the report never depends on a skipped content.
/// With placeholders in a tree its root digest is not the image's fingerprint: `DiffSide.digestKnown` is false.
package enum LayeredDiff {
    /// What the shared-layer diff read and skipped (for tests and `IMPRINT_DIFF_STATS`).
    package struct Statistics: Sendable {
        /// Layers shared at the bottom of both images.
        package var sharedLayers = 0
        /// Files in shared layers whose content was hashed (touched above the shared layers) and their bytes.
        package var sharedFilesHashed = 0
        package var sharedBytesHashed: UInt64 = 0
        /// Files in shared layers whose content was skipped without hashing, and their bytes.
        package var sharedFilesSkipped = 0
        package var sharedBytesSkipped: UInt64 = 0
        /// Layers read that are not shared (both sides).
        package var ownLayers = 0
        /// True when a change referenced skipped content and both images were flattened in full instead.
        package var fellBack = false

        /// One line of JSON.
        package var json: String {
            "{\"sharedLayers\":\(sharedLayers),\"sharedFilesHashed\":\(sharedFilesHashed),\"sharedBytesHashed\":\(sharedBytesHashed)," +
            "\"sharedFilesSkipped\":\(sharedFilesSkipped),\"sharedBytesSkipped\":\(sharedBytesSkipped),\"ownLayers\":\(ownLayers),\"fellBack\":\(fellBack)}"
        }
    }

    /// The outcome: both sides as loaded, the report, and what was read.
    package struct Result {
        package var a: LoadedSource
        package var b: LoadedSource
        package var report: DiffReport
        package var statistics: Statistics
    }

    /// An image opened without reading its layers.
    package struct OpenedImage {
        package var kind: LoadedSource.Kind
        package var path: String
        package var reader: ImageReader
        package var info: ImageInfo
    }

    /// Compares two image specs sharing bottom layers, or returns nil when the shared-layer diff does not apply
    /// (a side is not an image, or the images share no layer): the caller then loads both sides in full.
    /// - Parameters:
    ///   - a, b: source specs as `SourceLoader.load` takes them (`oci:`, archives, `registry://`).
    ///   - platform: `os/arch[/variant]` to choose from an index.
    ///   - differ: the comparison settings (filters, metadata, bytecode checker).
    /// - Throws: what reading the images throws (missing or corrupt blobs, bad tar entries...).
    package static func compare(_ a: String, _ b: String, platform: String? = nil, stampPath: String = Imprint.defaultStampPath,
                               differ: ImageDiff, registry: RegistryOptions = RegistryOptions()) throws -> Result? {
        let chosen = try platform.map { try Platform(parsing: $0) }
        guard let ia = try open(a, platform: chosen, registry: registry) else { return nil }
        guard let ib = try open(b, platform: chosen, registry: registry) else { return nil }
        let k = sharedPrefix(ia.info.layers, ib.info.layers)
        if k == 0 { return nil }
        let capture = TreePath(stampPath).bytes
        var stats = Statistics()
        stats.sharedLayers = k
        stats.ownLayers = (ia.info.layers.count - k) + (ib.info.layers.count - k)

        // 1. Each side's own layers, recorded (hashed) in parallel.
        let recorder = LayerFlattener(capturePath: capture)
        var own: [(image: OpenedImage, index: Int)] = []
        for i in k..<ia.info.layers.count { own.append((ia, i)) }
        for i in k..<ib.info.layers.count { own.append((ib, i)) }
        let ownJobs = ParallelJobs(count: own.count) { j in try record(own[j].image, own[j].index, recorder) }
        var ownRecordings: [LayerRecording] = []
        for j in own.indices { ownRecordings.append(try ownJobs.result(j)) }
        let split = ia.info.layers.count - k
        let recA = Array(ownRecordings[..<split]), recB = Array(ownRecordings[split...])

        // 2. The shared layers, once, hashing only what the own layers touch.
        let touched = Touched(recA + recB)
        let baseRecorder = LayerFlattener(capturePath: capture)
        baseRecorder.hashContent = { touched.needsContent($0) }
        let base = LayerFlattener(capturePath: capture)
        let sharedJobs = ParallelJobs(count: k) { i in try record(ia, i, baseRecorder) }
        for i in 0..<k { try base.replay(try sharedJobs.result(i), layer: i, source: SourceLoader.layerName(ia.info, i)) }
        stats.sharedFilesHashed = base.skipped.filesHashed
        stats.sharedBytesHashed = base.skipped.bytesHashed
        stats.sharedFilesSkipped = base.skipped.filesSkipped
        stats.sharedBytesSkipped = base.skipped.bytesSkipped

        // 3. Each side's own layers over its copy of the base.
        let copyB = Tree(root: LoadedSource.deepCopy(base.tree.root))
        let flatA = LayerFlattener(capturePath: capture, tree: base.tree, captured: base.captured)
        for (j, rec) in recA.enumerated() { try flatA.replay(rec, layer: k + j, source: SourceLoader.layerName(ia.info, k + j)) }
        let flatB = LayerFlattener(capturePath: capture, tree: copyB, captured: base.captured)
        for (j, rec) in recB.enumerated() { try flatB.replay(rec, layer: k + j, source: SourceLoader.layerName(ib.info, k + j)) }
        let srcA = loaded(ia, flatA.finish(), flatA.capturedFinal, stampPath)
        let srcB = loaded(ib, flatB.finish(), flatB.capturedFinal, stampPath)
        var sideA = DiffSide(loaded: srcA, name: a), sideB = DiffSide(loaded: srcB, name: b)
        let placeholders = base.placeholders
        sideA.digestKnown = placeholders.isEmpty
        sideB.digestKnown = placeholders.isEmpty
        let report = try differ.compare(sideA, sideB)
        let usesPlaceholder = report.changes.contains { c in
            [c.left, c.right].contains { n in n.map { $0.type == .file && placeholders.contains($0.digest) } ?? false }
        }
        if !usesPlaceholder { return Result(a: srcA, b: srcB, report: report, statistics: stats) }

        // A change reached skipped content: flatten both in full.
        stats.fellBack = true
        let (treeA, capA) = try SourceLoader.flatten(ia.reader, ia.info, capture: capture)
        let (treeB, capB) = try SourceLoader.flatten(ib.reader, ib.info, capture: capture)
        let fullA = loaded(ia, treeA, capA, stampPath), fullB = loaded(ib, treeB, capB, stampPath)
        let full = try differ.compare(DiffSide(loaded: fullA, name: a), DiffSide(loaded: fullB, name: b))
        return Result(a: fullA, b: fullB, report: full, statistics: stats)
    }

    /// How many bottom layers two images share: same diff_id, or with no diff_ids, the same blob digest.
    package static func sharedPrefix(_ a: [ImageLayer], _ b: [ImageLayer]) -> Int {
        var k = 0
        while k < a.count, k < b.count {
            let x = a[k], y = b[k]
            let same = (x.diffID != nil || y.diffID != nil) ? x.diffID == y.diffID : x.descriptor.digest == y.descriptor.digest
            if !same { break }
            k += 1
        }
        return k
    }

    /// Opens `spec` as an image (manifest and config only), or nil when it is something else.
    package static func open(_ spec: String, platform: Platform?, registry: RegistryOptions) throws -> OpenedImage? {
        if spec == "-" || spec.hasPrefix("history:") { return nil }
        if RegistryReference.isRegistry(spec) {
            let reader = try RegistryImageReader(RegistryReference(parsing: spec), options: registry)
            return OpenedImage(kind: .registry, path: spec, reader: reader, info: try reader.resolve(reference: nil, platform: platform))
        }
        let parsed = try SourceLoader.parse(spec)
        guard parsed.kind.isImage else { return nil }
        let location = try SourceLoader.openImage(parsed)
        let info = try location.reader.resolve(reference: location.reference, platform: platform)
        return OpenedImage(kind: location.kind, path: location.path, reader: location.reader, info: info)
    }

    /// Reads, verifies and records layer `i` of `image`.
    package static func record(_ image: OpenedImage, _ i: Int, _ flattener: LayerFlattener) throws -> LayerRecording {
        let pipeline = SourceLoader.layerPipeline(image.reader, image.info, i)
        defer { pipeline.cancel(); pipeline.waitUntilDone() }
        let rec = try flattener.record(TarReader(pipeline, name: SourceLoader.layerName(image.info, i)), layer: i)
        // Drain what follows the end-of-archive blocks so verification (and its errors) complete.
        try pipeline.forEachChunk(bufferSize: 64 << 10) { _ in }
        return rec
    }

    package static func loaded(_ image: OpenedImage, _ tree: Tree, _ captured: [UInt8]?, _ stampPath: String) -> LoadedSource {
        SourceLoader.finish(LoadedSource(kind: image.kind, path: image.path, tree: tree, image: image.info, stampPath: stampPath), captured)
    }

    /// The paths the own layers touch, and which shared-layer files therefore need their content hashed.
    package struct Touched: Sendable {
        /// Paths written, whited out or made opaque, with all their parents, and hard-link targets.
        package var paths: Set<Bytes> = []
        /// Paths below which every shared file is needed: whiteouts, opaque directories, non-directories written
        /// (they replace a directory and everything in it).
        package var subtrees: Set<Bytes> = []

        package init(_ recordings: [LayerRecording]) {
            func withParents(_ p: Bytes) {
                var comps = p.pathComponents
                while !comps.isEmpty {
                    if paths.insert(comps.joinedPath).inserted == false { break }
                    comps.removeLast()
                }
            }
            for rec in recordings {
                for c in rec.changes {
                    // Where the entry lands when no symlink is in the way; a change that lands elsewhere through a
                    // symlink and reaches unhashed content is caught by the placeholder check after the diff.
                    let p = TreePath(c.name).bytes
                    var comps = p.pathComponents
                    let base = comps.popLast() ?? []
                    if base == RuntimeFilesystem.opaqueMarker {
                        let dir = comps.joinedPath
                        withParents(dir); subtrees.insert(dir)
                        continue
                    }
                    if base.starts(with: RuntimeFilesystem.whiteoutPrefix) {
                        let target = (comps + [Array(base.dropFirst(RuntimeFilesystem.whiteoutPrefix.count))]).joinedPath
                        withParents(target); subtrees.insert(target)
                        continue
                    }
                    withParents(p)
                    switch c {
                    case .entry(_, let node, _, _):
                        if node.type != .directory { subtrees.insert(p) }
                    case .hardlink(_, let target, _, _):
                        subtrees.insert(p)
                        withParents(TreePath(GoPath.clean(target)).bytes)
                    case .global:
                        subtrees.insert(p)
                    case .unsupported:
                        break
                    }
                }
            }
        }

        /// True when the content of the shared file at `path` may show in the diff.
        package func needsContent(_ path: Bytes) -> Bool {
            if paths.contains(path) || subtrees.contains([]) { return true }
            if subtrees.isEmpty { return false }
            var prefix = Bytes()
            for (i, c) in path.pathComponents.enumerated() {
                if i > 0 { prefix.append(UInt8(ascii: "/")) }
                prefix.append(contentsOf: c)
                if subtrees.contains(prefix) { return true }
            }
            return false
        }
    }
}

/// Runs `count` jobs on their own threads, at most `width` at once, and hands out results in any order asked.
// why @unchecked: each result slot is written by one job thread before its semaphore is signalled and read
// only after waiting on it.
package final class ParallelJobs<T>: @unchecked Sendable {
    private final class Slot {
        package var result: Swift.Result<T, Error>?
        package let done = DispatchSemaphore(value: 0)
    }
    private let slots: [Slot]
    private let lock = NSLock()
    private var stop = false

    package init(count: Int, width: Int = max(2, ProcessInfo.processInfo.activeProcessorCount), _ body: @escaping (Int) throws -> T) {
        slots = (0..<count).map { _ in Slot() }
        let free = DispatchSemaphore(value: width)
        // `body` runs on the job threads; its callers give each call its own layer to read.
        let body = UnsafeTransfer(body)
        let launcher = Thread { [self] in
            for i in 0..<count {
                free.wait()
                let t = Thread { [self] in
                    lock.lock(); let skip = stop; lock.unlock()
                    let r: Swift.Result<T, Error> = skip ? .failure(CancellationError()) : Swift.Result { try body.value(i) }
                    slots[i].result = r
                    if case .failure = r { lock.lock(); stop = true; lock.unlock() }
                    free.signal()
                    slots[i].done.signal()
                }
                t.stackSize = 1 << 20
                t.start()
            }
        }
        launcher.start()
    }

    /// Waits for job `i` and returns its result. On an error, jobs not yet started are skipped, the running ones
    /// are waited for (no thread outlives the call that threw), and the first real error in job order is thrown.
    package func result(_ i: Int) throws -> T {
        slots[i].done.wait()
        if case .success(let v) = slots[i].result! { return v }
        lock.lock(); stop = true; lock.unlock()
        for (j, s) in slots.enumerated() where j != i { s.done.wait(); s.done.signal() }
        for s in slots {
            if case .failure(let e) = s.result!, !(e is CancellationError) { throw e }
        }
        throw CancellationError()
    }
}
