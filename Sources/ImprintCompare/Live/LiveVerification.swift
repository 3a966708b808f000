import Foundation

/// Verifying a running container: the manifest (stamped, emitted, or given), the application's directory read
/// straight through `/proc/PID/root` (only that directory when it can be found), then its processes.
package struct LiveVerification {
    package var source: LiveSource
    /// The manifest the target must hold (`--manifest`); nil to use the one embedded in the target.
    package var manifest: Manifest?
    package var manifestSource: String?
    /// Where the context root is (`--at`); nil to find it.
    package var at: String?
    /// The interpreter that proves timestamp pycs by recompiling (nil: `python3`).
    package var python: String?
    /// Parsed manifests shared between verifications (`imprint watch`).
    package var manifestCache: ManifestCache?

    package init(source: LiveSource) { self.source = source }

    /// What `verify` compares for a live target.
    package struct Prepared {
        package var target: VerifyTarget
        package var manifest: Manifest
        package var manifestSource: String
        /// The context root in the target, when known (the verifier locates it otherwise).
        package var at: String?
        /// True for an emitted manifest (its own path is left out by its `excluded` list).
        package var emitted: Bool
    }

    /// Finds the manifest and the context's directory, and reads what is needed.
    /// - Throws: `notFound` when there is no manifest and none was given; read errors naming the path.
    package func prepare() throws -> Prepared {
        var manifest = self.manifest
        var source = manifestSource ?? ""
        var at = self.at
        var emitted = false
        var signature: [UInt8]?
        var embeddedBytes: [UInt8]?
        let processes = self.source.processes()
        let candidates = self.source.likelyContextRoots(processes)
        if manifest == nil {
            if let bytes = try self.source.readFile("/" + Imprint.defaultStampPath) {
                manifest = try manifestCache?.parse(bytes, source: "/" + Imprint.defaultStampPath) ?? Manifest.parse(bytes, source: "/" + Imprint.defaultStampPath)
                source = "/" + Imprint.defaultStampPath
                embeddedBytes = bytes
                signature = try self.source.readFile("/" + ManifestSignature.path(besideManifest: Imprint.defaultStampPath))
            } else {
                for d in candidates {
                    let p = d + "/" + Imprint.defaultStampPath
                    guard let bytes = try self.source.readFile(p),
                          let m = try? Manifest.parse(bytes, source: p), m.metadata.excluded.contains(Imprint.defaultStampPath) else { continue }
                    manifest = m
                    source = p
                    embeddedBytes = bytes
                    signature = try self.source.readFile(ManifestSignature.path(besideManifest: p))
                    if at == nil { at = d }
                    emitted = true
                    break
                }
            }
        }
        guard let manifest else {
            throw ImprintError(.notFound, "\(self.source.spec) holds no imprint manifest (/\(Imprint.defaultStampPath), or .imprint/manifest.json in \(candidates.joined(separator: ", "))); pass --manifest")
        }
        // The context's directory: given, else the first likely place whose digest is the manifest's.
        var tree: Tree?
        if let a = at {
            tree = try self.source.walk(a)
        } else {
            for d in candidates {
                let t = try self.source.walk(d)
                let compared = Verifier.withoutExcluded(t, excluded: manifest.metadata.excluded)
                compared.computeDigests()
                if compared.rootDigest == manifest.rootDigest { tree = t; at = d; break }
            }
        }
        let full: Tree
        if let tree, let a = at {
            full = Tree()
            let rel = TreePath(a).bytes
            if rel.isEmpty { full.root.setSortedChildren(tree.root.sortedChildren) } else { full.insert(rel, tree.root) }
            full.computeDigests()
        } else {
            // Nowhere obvious: the whole filesystem (pseudo file systems left out), and the verifier locates it.
            full = try self.source.walk("/")
        }
        if let bytes = embeddedBytes, source == "/" + Imprint.defaultStampPath {
            // The stamp itself sits at the root, outside the context: keep the tree as the verifier expects it.
            full.insert(Array(Imprint.defaultStampPath.utf8), TreeNode(type: .file, mode: 0o644, size: UInt64(bytes.count), digest: SHA256.hash(bytes)))
        }
        let live = self.source
        let python = self.python
        let bytecode: (Tree, Bytes) -> [BytecodeFinding] = { subtree, atPath in
            let dir = live.root + live.resolve("/" + atPath.lossyString)
            return BytecodeChecker.check(tree: subtree, content: BytecodeChecker.directoryReader(root: dir))
                + BytecodeEquivalence(python: python).findings(tree: subtree, root: dir)
        }
        var embedded: EmbeddedManifest?
        if let bytes = embeddedBytes {
            embedded = EmbeddedManifest(manifest: manifest, bytes: bytes, source: source, contextRoot: emitted ? at : nil, signatureBytes: signature)
        }
        return Prepared(target: VerifyTarget(tree: full, kind: "container", embedded: embedded, bytecode: bytecode),
                        manifest: manifest, manifestSource: source, at: at, emitted: emitted)
    }
}

extension VerifyReport {
    /// The report with `more` findings added and the verdict decided again.
    package func adding(_ more: [VerifyFinding]) -> VerifyReport {
        var r = self
        r.findings += more
        r.verdict = r.findings.contains { $0.severity == .error } ? .mismatch : .verified
        return r
    }
}
