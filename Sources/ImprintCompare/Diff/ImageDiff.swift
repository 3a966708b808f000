import Foundation

/// One side of `imprint diff`: a tree plus, for images, the config and layers.
package struct DiffSide {
    package var name: String
    package var kind: String
    package var tree: Tree
    /// The image config, when the side is an image.
    package var config: ImageConfig?
    /// Layers bottom to top, when the side is an image.
    package var layers: [DiffLayer]
    /// The imprint manifest embedded in the side, if any.
    package var manifest: Manifest?
    /// Whether the tree carries owners and hard links (tar streams, images, directories walked with stat).
    package var hasOwners: Bool
    /// False when `tree`'s root digest is not the side's fingerprint: files the two sides share by construction
    /// were not hashed (see `LayeredDiff`). Reports then leave the digest out.
    package var digestKnown = true
    /// Reads file content for the bytecode checks when the side is a directory on disk (nil: what was captured
    /// while streaming).
    package var contentReader: BytecodeChecker.ContentReader?

    package init(name: String, kind: String, tree: Tree, config: ImageConfig? = nil, layers: [DiffLayer] = [],
                manifest: Manifest? = nil, hasOwners: Bool = false) {
        self.name = name; self.kind = kind; self.tree = tree; self.config = config; self.layers = layers
        self.manifest = manifest; self.hasOwners = hasOwners
    }
}

extension DiffSide {
    /// A side as `SourceLoader` read it: the tree, and for images the config and layers (with history).
    package init(loaded src: LoadedSource, name: String) {
        var layers: [DiffLayer] = []
        var config: ImageConfig?
        if let image = src.image {
            config = image.config
            let history = image.config.layerHistory
            for (i, l) in image.layers.enumerated() {
                layers.append(DiffLayer(digest: l.descriptor.digest.prefixed, diffID: l.diffID?.prefixed,
                                        size: Int64(l.descriptor.size), mediaType: l.descriptor.mediaType,
                                        createdBy: i < history.count ? history[i] : nil))
            }
        }
        self.init(name: name, kind: src.kind.rawValue, tree: src.tree, config: config, layers: layers,
                  manifest: src.kind == .manifestFile ? nil : src.embeddedManifest,
                  hasOwners: src.kind != .manifestFile && src.kind != .directory)
    }
}

/// A layer as `diff` reports it.
package struct DiffLayer {
    package var digest: String
    package var diffID: String?
    package var size: Int64
    package var mediaType: String
    package var createdBy: String?
    package init(digest: String, diffID: String?, size: Int64, mediaType: String, createdBy: String? = nil) {
        self.digest = digest; self.diffID = diffID; self.size = size; self.mediaType = mediaType; self.createdBy = createdBy
    }
}

/// A difference in the image configs.
package struct ConfigChange {
    /// `Env.PATH`, `Labels.version`, `Cmd`, `ExposedPorts.8080/tcp`, `history[3]`...
    package var field: String
    package var a: String?
    package var b: String?
}

/// The result of `imprint diff`.
package struct DiffReport: ExitStatusReporting {
    package var a: DiffSide
    package var b: DiffSide
    package var changes: [TreeChange]
    package var config: [ConfigChange]
    /// Layers by position: `shared` while both images have the same diff_id at the same position.
    package var sharedLayers: Int
    package var manifestChanges: [TreeChange]
    package var bytecodeA: [BytecodeFinding]
    package var bytecodeB: [BytecodeFinding]
    package var directoriesVisited: Int
    /// What changed inside modified files (`DiffRequest.contentDiffs`).
    package var contents: [ContentDiff] = []
    /// Packages added, removed or at another version, from the package managers' databases.
    package var packages: [PackageChange] = []
    /// Installed Python files that do not match their package's RECORD, on either side.
    package var installedFiles: [RecordMismatch] = []
    /// Why contents or packages were not compared, when they were not.
    package var forensicsNote: String?
    /// Only packages are reported (`--packages-only`): the sides are identical when their packages are.
    package var packagesOnly = false
    /// What differs without meaning is no difference (`--semantic`): how the files are cut into layers, and the
    /// config's build history and creation time, when the flattened trees and the rest of the config are equal.
    package var semantic = false

    /// 1 when the sides differ in what was compared.
    package var exitStatus: Int32 { Self.status(ok: identical) }

    package var identical: Bool {
        if packagesOnly { return packages.isEmpty && installedFiles.isEmpty }
        if semantic {
            return changes.isEmpty && config.allSatisfy { $0.field.hasPrefix("history") || $0.field == "created" }
                && manifestChanges.isEmpty && a.manifest?.rootDigest == b.manifest?.rootDigest && bytecodeDifferences.isEmpty
        }
        return changes.isEmpty && config.isEmpty && manifestChanges.isEmpty && a.manifest?.rootDigest == b.manifest?.rootDigest
            && bytecodeDifferences.isEmpty && layersDiffer == false
    }

    package var layersDiffer: Bool {
        !a.layers.isEmpty && !b.layers.isEmpty && (a.layers.map(\.diffID) != b.layers.map(\.diffID))
    }

    /// Which side of a diff something was found on.
    package enum Side: String, Sendable { case a, b }

    /// Bytecode findings present on one side and not the other (same class and path).
    package var bytecodeDifferences: [(side: Side, finding: BytecodeFinding)] {
        struct Key: Hashable { var kind: BytecodeFinding.Kind; var path: Bytes }
        let ka = Set(bytecodeA.map { Key(kind: $0.kind, path: $0.path) }), kb = Set(bytecodeB.map { Key(kind: $0.kind, path: $0.path) })
        return bytecodeA.filter { !kb.contains(Key(kind: $0.kind, path: $0.path)) }.map { (Side.a, $0) }
            + bytecodeB.filter { !ka.contains(Key(kind: $0.kind, path: $0.path)) }.map { (Side.b, $0) }
    }
}

/// Compares two sides: files, config, layers, embedded manifests.
package struct ImageDiff {
    package var metadata = false
    /// `--only` globs (`.dockerignore` syntax): compare only matching paths.
    package var only: [String] = []
    /// `--ignore` globs: leave matching paths out.
    package var ignore: [String] = []
    /// The bytecode checks of a side (default: verify's checks on what the side holds).
    package var bytecode: (DiffSide) -> [BytecodeFinding] = { $0.bytecodeFindings() }

    package init() {}

    package func compare(_ a: DiffSide, _ b: DiffSide) throws -> DiffReport {
        var cmp = TreeComparison()
        cmp.compareOwners = a.hasOwners && b.hasOwners
        cmp.compareTimes = metadata
        let onlyIg = try only.isEmpty ? nil : DockerIgnore.parse(Array(only.joined(separator: "\n").utf8), file: "--only").checked()
        let ignoreIg = try ignore.isEmpty ? nil : DockerIgnore.parse(Array(ignore.joined(separator: "\n").utf8), file: "--ignore").checked()
        if onlyIg != nil || ignoreIg != nil {
            cmp.filter = { path, _ in
                if let onlyIg, !((try? onlyIg.matches(path, parent: nil).excluded) ?? false) { return false }
                if let ignoreIg, (try? ignoreIg.matches(path, parent: nil).excluded) ?? false { return false }
                return true
            }
        }
        let changes = cmp.compare(a.tree, b.tree)
        var manifestChanges: [TreeChange] = []
        if let ma = a.manifest, let mb = b.manifest, ma.rootDigest != mb.rootDigest {
            var mc = TreeComparison()
            manifestChanges = mc.compare(ma.tree, mb.tree)
        }
        var shared = 0
        while shared < a.layers.count, shared < b.layers.count, a.layers[shared].diffID != nil,
              a.layers[shared].diffID == b.layers[shared].diffID { shared += 1 }
        let ba = bytecode(a), bb = bytecode(b)
        return DiffReport(a: a, b: b, changes: changes, config: ImageDiff.configChanges(a.config, b.config),
                          sharedLayers: shared, manifestChanges: manifestChanges, bytecodeA: ba, bytecodeB: bb,
                          directoriesVisited: cmp.directoriesVisited)
    }

    /// Field-by-field differences of two image configs (OCI image-spec `config`, `history`, platform).
    package static func configChanges(_ a: ImageConfig?, _ b: ImageConfig?) -> [ConfigChange] {
        // Only two images have configs to compare; a tree or manifest side has none.
        guard let a, let b else { return [] }
        var out: [ConfigChange] = []
        let ca = a.config ?? ImageConfig.ContainerConfig(), cb = b.config ?? ImageConfig.ContainerConfig()
        func text<T: Encodable>(_ v: T?) -> String? {
            guard let v else { return nil }
            if let s = v as? String { return s }
            if let j = v as? JSONValue, j == .null { return nil }
            return (try? OCIJSON.encode(v)).map { String(decoding: $0, as: UTF8.self) }
        }
        func scalar<T: Encodable>(_ field: String, _ x: T?, _ y: T?) {
            let tx = text(x), ty = text(y)
            if tx != ty { out.append(ConfigChange(field: field, a: tx, b: ty)) }
        }
        scalar("architecture", a.architecture, b.architecture)
        scalar("os", a.os, b.os)
        scalar("variant", a.variant, b.variant)
        scalar("Entrypoint", ca.entrypoint, cb.entrypoint)
        scalar("Cmd", ca.cmd, cb.cmd)
        scalar("WorkingDir", ca.workingDir, cb.workingDir)
        scalar("User", ca.user, cb.user)
        scalar("StopSignal", ca.stopSignal, cb.stopSignal)
        // Docker's own fields, outside the OCI spec.
        for k in ["Shell", "Healthcheck", "OnBuild"] { scalar(k, ca.unknown.values[k], cb.unknown.values[k]) }
        // Env as NAME=value: compare per variable.
        func env(_ c: ImageConfig.ContainerConfig) -> [String: String] {
            var d: [String: String] = [:]
            for e in c.env ?? [] {
                let parts = e.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                d[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            return d
        }
        func keyed(_ name: String, _ x: [String: String], _ y: [String: String]) {
            for k in Set(x.keys).union(y.keys).sorted() where x[k] != y[k] {
                out.append(ConfigChange(field: "\(name).\(k)", a: x[k], b: y[k]))
            }
        }
        keyed("Env", env(ca), env(cb))
        keyed("Labels", ca.labels ?? [:], cb.labels ?? [:])
        func keys(_ v: [String: JSONValue]?) -> [String: String] {
            var d: [String: String] = [:]
            for k in (v ?? [:]).keys { d[k] = "present" }
            return d
        }
        keyed("ExposedPorts", keys(ca.exposedPorts), keys(cb.exposedPorts))
        keyed("Volumes", keys(ca.volumes), keys(cb.volumes))
        let ha = a.history ?? [], hb = b.history ?? []
        for i in 0..<max(ha.count, hb.count) {
            let x = i < ha.count ? ha[i].createdBy ?? "" : nil
            let y = i < hb.count ? hb[i].createdBy ?? "" : nil
            if x != y { out.append(ConfigChange(field: "history[\(i)]", a: x, b: y)) }
        }
        return out
    }
}

extension ImageDiff {
    /// For a mixed pair (a context manifest against an image or container tree): the subtree of `tree` where the
    /// context lives — `at` when given, else found by digest or by names as `verify` does — without the files
    /// imprint itself wrote there. Returns the subtree and its path.
    package static func align(_ manifest: Manifest, in tree: Tree, at: String?) throws -> (Tree, String) {
        let path: Bytes
        if let at {
            path = TreePath(at).bytes
        } else if let p = Verifier.locate(manifest.rootDigest, in: tree, excluded: manifest.metadata.excluded)
                    ?? Verifier.locateByNames(manifest.tree, in: tree) {
            path = p
        } else {
            throw ImprintError.badInput("cannot tell where the manifest's context is in the other side; pass --at (for example --at /app)")
        }
        guard let node = tree.node(at: path), node.type == .directory else {
            throw ImprintError.badInput("the other side has no directory /\(path.lossyString)")
        }
        return (Verifier.withoutExcluded(Tree(root: node), excluded: manifest.metadata.excluded), "/" + path.lossyString)
    }
}

extension DiffSide {
    /// Verify's bytecode checks on this side (headers and source hashes captured while streaming, or the files on
    /// disk for a directory).
    package func bytecodeFindings() -> [BytecodeFinding] {
        var hashes: [Bytes: [UInt32: UInt64]] = [:]
        tree.walk { path, node in if let h = node.pySourceHashes { hashes[path] = h } }
        return BytecodeChecker(content: contentReader, sourceHashes: hashes).check(tree)
    }

    /// A side of `imprint diff`: anything `SourceLoader` reads, or `history:REF`.
    package static func load(_ spec: String, platform: String?, registry: RegistryOptions = RegistryOptions()) throws -> DiffSide {
        if ManifestReference.isHistory(spec) {
            let (m, name) = try ManifestReference.load(spec)
            return DiffSide(name: name, kind: "manifest", tree: m.tree)
        }
        let src = try SourceLoader.load(spec, platform: platform, registry: registry)
        var side = DiffSide(loaded: src, name: spec == "-" ? "stdin" : spec)
        if src.kind == .directory { side.contentReader = BytecodeChecker.directoryReader(root: src.path) }
        return side
    }
}
