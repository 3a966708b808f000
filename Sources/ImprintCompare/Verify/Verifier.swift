import Foundation

/// One finding of `imprint verify`.
package struct VerifyFinding {
    package enum Class: String, CaseIterable, Sendable {
        case modified, mode, type
        case symlinkTarget = "symlink-target"
        case device
        case missing, extra
        case extraAllowed = "extra-allowed"
        case digestMismatch = "digest-mismatch"
        case signature
        case bytecode
        /// A running process of a live target (`detail`: deleted-executable, stale-process…).
        case process
        /// What the container engine says (`detail`: stale-image, mount-overlay).
        case container
        /// What a running Python process imported, from its probe (`detail`: stale-module…).
        case runtime
        /// A required attestation attached to the image (`--require-attestation`): missing, unsigned, or about
        /// another image.
        case attestation
        /// What a site serves (`verify URL --served`; `detail`: stale-cache, stale-origin, missing-asset,
        /// unknown-reference, stale-precache, fetch-failed).
        case served
    }
    package enum Severity: String, Sendable { case error, warning, info }

    package var findingClass: Class
    package var severity: Severity
    /// Context-relative path ("" for findings about the whole manifest).
    package var path: String
    package var message: String
    /// What the manifest (or CI) says, and what the target has.
    package var expected: [(String, String)] = []
    package var actual: [(String, String)] = []
    /// For bytecode findings: the bytecode class (`stale-timestamp-pyc`, ...).
    package var detail: String?

    package init(_ c: Class, _ severity: Severity, path: String, message: String,
                expected: [(String, String)] = [], actual: [(String, String)] = [], detail: String? = nil) {
        findingClass = c; self.severity = severity; self.path = path; self.message = message
        self.expected = expected; self.actual = actual; self.detail = detail
    }
}

/// The result of `imprint verify`.
package struct VerifyReport {
    package enum Verdict: String, Sendable { case verified = "VERIFIED", mismatch = "MISMATCH" }
    /// How the expected state was authenticated.
    package enum Trust: String, Sendable {
        case expectedDigest = "expected-digest", signature, both, none
    }

    package var verdict: Verdict
    package var trust: Trust
    package var manifestSource: String
    package var manifestDigest: Digest
    package var expectedDigest: Digest?
    package var target: String
    package var targetKind: String
    /// Where the context root sits in the target ("/" for a directory holding the context itself).
    package var at: String
    /// The digest of the target's tree at `at`, after leaving out what the manifest excludes.
    package var actualDigest: Digest?
    package var findings: [VerifyFinding]
    package var warnings: [String]
    package var entriesChecked: Int
    /// False for `--stamp-only`: only the embedded manifest was checked, no file was compared.
    package var filesCompared = true
    /// For an image target: its digest as loaded (what an attestation about it names), so it is not loaded again.
    package var imageDigest: Digest?

    /// Findings that make the verdict MISMATCH.
    package var failures: [VerifyFinding] { findings.filter { $0.severity == .error } }

    /// The command's exit status for this report: 1 for MISMATCH, and with `requireTrust` for an expected state
    /// that nothing authenticated (then with the reason to print); else 0.
    package func exitStatus(requireTrust: Bool) -> (status: Int32, problem: String?) {
        if verdict == .mismatch { return (1, nil) }
        if requireTrust && trust == .none {
            return (1, filesCompared ? "not authenticated: pass --expect DIGEST or --pubkey KEY (--require-trust)" : nil)
        }
        return (0, nil)
    }

    package func count(_ c: VerifyFinding.Class) -> Int { findings.filter { $0.findingClass == c }.count }
}

/// Compares a target tree with a context manifest.
package struct Verifier {
    /// Where the context root is inside the target (`--at /app`); nil to find it.
    package var at: String?
    /// Only manifest entries matching these `.dockerignore`-syntax globs are checked (`--include`).
    package var include: [String] = []
    /// Extra entries matching these globs are allowed (`--allow-extra`).
    package var allowExtra: [String] = []
    package var expectedDigest: Digest?
    /// With `--pubkey`: the key the manifest must be signed with, and the signature found (nil when none).
    package var publicKey: Ed25519PublicKey?
    package var signature: ManifestSignature?
    package var signatureSource: String?
    /// Paths of the whole target that are imprint's own (the stamp: `.imprint/manifest.json` and its signature),
    /// removed before anything is compared.
    package var targetExcluded: [String] = []
    /// Runs the Python bytecode checks on the target's context subtree (paths relative to the context root).
    package var bytecode: ((Tree, _ at: Bytes) -> [BytecodeFinding])?

    package init() {}

    /// Verifies `target` against `manifest`: finds the context in the target, compares the two trees, and adds what
    /// the digests alone cannot say (altered sizes, stale bytecode, the layer that wrote each difference).
    /// - Throws: `badInput` when the context root cannot be found in the target or a glob is invalid.
    package func verify(manifest: Manifest, manifestSource: String, target: Tree, targetName: String,
                       targetKind: String, emittedAt: String? = nil, copies plan: CopyPlan? = nil,
                       layerHistory: [String?] = []) throws -> VerifyReport {
        var warnings: [String] = []
        var (findings, signatureValid) = try trustFindings(manifest)
        let target = Verifier.withoutExcluded(target, excluded: targetExcluded)
        let (expectedTree, atPath) = try locateContext(manifest, in: target, targetName: targetName, emittedAt: emittedAt,
                                                      copies: plan, warnings: &warnings)
        let atDisplay = "/" + atPath.lossyString
        // As a process in the container reaches it: `/app` may be a symlink to `/srv/app`.
        guard let actualRoot = target.reach(atPath), actualRoot.type == .directory else {
            throw ImprintError.badInput("\(targetName) has no directory \(atDisplay)")
        }
        // The manifest's own excluded paths (an --emit'ed manifest) are not compared.
        let actual = plan.map { Verifier.restricted(target, to: expectedTree, wholeDirectories: $0.wholeDirectories.map(\.imagePath)) }
            ?? Verifier.withoutExcluded(Tree(root: actualRoot), excluded: manifest.metadata.excluded)

        var differences = try treeFindings(expected: expectedTree, actual: actual)
        if plan != nil { Verifier.attributeToLayers(&differences, actual: actual, history: layerHistory) }
        findings += differences
        findings += Verifier.alteredSizeFindings(expected: expectedTree, actual: actual)
        let bytecodeScopes: [(Tree, Bytes)] = plan.map { p in p.wholeDirectories.compactMap { d in
            actual.node(at: d.imagePath).map { (Tree(root: $0), d.imagePath) } } } ?? [(actual, atPath)]
        findings += bytecodeScopes.flatMap { bytecode?($0.0, $0.1) ?? [] }.map(Verifier.finding(for:))
        if manifest.findings.contains(where: { $0.kind == .secret }) {
            warnings.append("the manifest records likely secrets in the context (see `imprint extract` findings)")
        }
        var checked = 0
        expectedTree.walk { _, _ in checked += 1 }
        actual.computeDigests()
        let verdict: VerifyReport.Verdict = findings.contains { $0.severity == .error } ? .mismatch : .verified
        return VerifyReport(verdict: verdict, trust: trust(signatureValid),
                            manifestSource: manifestSource, manifestDigest: manifest.rootDigest,
                            expectedDigest: expectedDigest, target: targetName, targetKind: targetKind,
                            at: atDisplay, actualDigest: actual.rootDigest, findings: findings, warnings: warnings,
                            entriesChecked: checked)
    }

    /// What is compared and where: the manifest's tree at the context root (`--at`, the emitted place, the directory
    /// whose digest is the manifest's root, else the one its file names best match), or with the Dockerfile's copies
    /// every file where its COPY puts it (at the target's root).
    private func locateContext(_ manifest: Manifest, in target: Tree, targetName: String, emittedAt: String?,
                               copies plan: CopyPlan?, warnings: inout [String]) throws -> (expected: Tree, at: Bytes) {
        if let plan {
            for u in plan.unmatched {
                warnings.append("Dockerfile line \(plan.dockerfile.copies[u.copy].line): source \(u.source) matches nothing in the context")
            }
            return (plan.expectedTree(), [])
        }
        if let at { return (manifest.tree, TreePath(at).bytes) }
        if let emittedAt { return (manifest.tree, TreePath(emittedAt).bytes) }
        if let found = Verifier.locate(manifest.rootDigest, in: target, excluded: manifest.metadata.excluded) {
            return (manifest.tree, found)
        }
        if let guess = Verifier.locateByNames(manifest.tree, in: target) {
            warnings.append("the context root was located by its file names at /\(guess.lossyString) (pass --at to say where it is)")
            return (manifest.tree, guess)
        }
        throw ImprintError.badInput("cannot tell where the context is inside \(targetName): no directory matches \(manifest.rootDigest.short); pass --at (for example --at /app)")
    }

    /// One finding per difference between the trees, as `--include` narrows and `--allow-extra` allows. Owners,
    /// hard links, times and xattrs are not what a context fixes.
    private func treeFindings(expected: Tree, actual: Tree) throws -> [VerifyFinding] {
        let includeIgnore = try include.isEmpty ? nil : DockerIgnore.parse(Array(include.joined(separator: "\n").utf8), file: "--include").checked()
        let allowIgnore = try allowExtra.isEmpty ? nil : DockerIgnore.parse(Array(allowExtra.joined(separator: "\n").utf8), file: "--allow-extra").checked()
        var cmp = TreeComparison()
        if let includeIgnore {
            cmp.filter = { path, _ in (try? includeIgnore.matches(path, parent: nil).excluded) ?? false }
        }
        var findings: [VerifyFinding] = []
        for c in cmp.compare(expected, actual) {
            let p = c.path.lossyString
            switch c.kind {
            case .removed:
                findings.append(VerifyFinding(.missing, .error, path: p, message: "in the manifest but not in the target", expected: Verifier.describe(c.left)))
            case .added:
                // Bytecode caches written at run time are judged by the bytecode checks, not as extra files.
                if Verifier.isBytecodeCache(c.path) { continue }
                if let allowIgnore, (try? allowIgnore.matches(c.path, parent: nil).excluded) ?? false {
                    findings.append(VerifyFinding(.extraAllowed, .info, path: p, message: "not in the manifest (allowed)", actual: Verifier.describe(c.right)))
                } else {
                    findings.append(VerifyFinding(.extra, .error, path: p, message: "in the target but not in the manifest", actual: Verifier.describe(c.right)))
                }
            case .content:
                findings.append(VerifyFinding(.modified, .error, path: p, message: "content differs", expected: Verifier.describe(c.left), actual: Verifier.describe(c.right)))
            case .mode:
                findings.append(VerifyFinding(.mode, .error, path: p, message: "permissions differ",
                                              expected: [("mode", octalMode(c.left!.canonicalMode))], actual: [("mode", octalMode(c.right!.canonicalMode))]))
            case .type:
                findings.append(VerifyFinding(.type, .error, path: p, message: "\(c.left!.type.rawValue) became \(c.right!.type.rawValue)", expected: Verifier.describe(c.left), actual: Verifier.describe(c.right)))
            case .symlinkTarget:
                findings.append(VerifyFinding(.symlinkTarget, .error, path: p, message: "symlink points elsewhere",
                                              expected: [("target", c.left!.target?.lossyString ?? "")], actual: [("target", c.right!.target?.lossyString ?? "")]))
            case .device:
                findings.append(VerifyFinding(.device, .error, path: p, message: "device numbers differ", expected: Verifier.describe(c.left), actual: Verifier.describe(c.right)))
            case .owner, .hardlink, .mtime, .xattrs:
                continue
            }
        }
        return findings
    }

    /// Sizes are not part of the digests: a manifest entry whose size was changed would otherwise pass unnoticed.
    private static func alteredSizeFindings(expected: Tree, actual: Tree) -> [VerifyFinding] {
        var findings: [VerifyFinding] = []
        expected.walk { path, node in
            guard node.type == .file, let other = actual.node(at: path), other.type == .file,
                  other.digest == node.digest, other.size != node.size else { return }
            findings.append(VerifyFinding(.modified, .error, path: path.lossyString,
                                          message: "the manifest records a size the content does not have (the manifest was altered)",
                                          expected: [("size", String(node.size))], actual: [("size", String(other.size))]))
        }
        return findings
    }

    /// A bytecode check's finding as a verify finding (class `bytecode`, its kind as the detail).
    private static func finding(for b: BytecodeFinding) -> VerifyFinding {
        let sev: VerifyFinding.Severity = b.severity == .error ? .error : (b.severity == .warning ? .warning : .info)
        var expected: [(String, String)] = []
        var actualSide: [(String, String)] = []
        if let s = b.sourceSide { expected.append(("source", s)) }
        if let p = b.pycSide { actualSide.append(("pyc", p)) }
        if b.runsStaleCode { actualSide.append(("runs", "stale bytecode")) }
        return VerifyFinding(.bytecode, sev, path: b.path.lossyString, message: b.detail,
                             expected: expected, actual: actualSide, detail: b.kind.rawValue)
    }

    /// The target's entries at the places `expected` names, and everything inside the directories that receive a
    /// whole directory's contents; directories take the expected modes (COPY does not say what they are).
    package static func restricted(_ target: Tree, to expected: Tree, wholeDirectories: [Bytes]) -> Tree {
        let out = Tree()
        expected.walk { path, node in
            // Where COPY put it, through symlinks on the way (a destination `/app` that links to `/srv/app`).
            guard case .found(let a) = target.lookup(path.pathComponents, followLast: node.type == .directory) else { return }
            if a.type == .directory && node.type == .directory {
                _ = out.insert(path, TreeNode.directory(mode: node.mode & 0o7777))
            } else {
                _ = out.insert(path, a.shallowCopy())
            }
        }
        for d in wholeDirectories {
            guard let root = target.reach(d), root.type == .directory else { continue }
            Tree(root: root).walk { rel, node in
                let path = d.isEmpty ? rel : d + [0x2F] + rel
                if out.node(at: path) != nil { return }
                let n = node.type == .directory ? TreeNode.directory(mode: expected.node(at: path)?.mode ?? node.mode) : node.shallowCopy()
                if node.type == .directory { n.layer = node.layer }
                _ = out.insert(path, n)
            }
        }
        out.computeDigests()
        return out
    }

    /// Names the image layer (and its instruction, from the config history) that last wrote each differing file,
    /// when that layer is not a COPY or ADD: a file changed after its COPY by a later RUN.
    private static func attributeToLayers(_ findings: inout [VerifyFinding], actual: Tree, history: [String?]) {
        for i in findings.indices {
            let f = findings[i]
            guard [.modified, .mode, .extra, .type, .symlinkTarget].contains(f.findingClass),
                  let layer = actual.node(at: Array(f.path.utf8))?.layer, layer < history.count, let createdBy = history[layer] else { continue }
            let instruction = createdBy.replacingOccurrences(of: "/bin/sh -c #(nop) ", with: "").trimmingCharacters(in: .whitespaces)
            let upper = instruction.uppercased()
            if upper.hasPrefix("COPY") || upper.hasPrefix("ADD") { continue }
            findings[i].message += " (written after its COPY by layer \(layer): \(instruction.prefix(120)))"
            findings[i].detail = "run-modified"
            findings[i].actual.append(("layer", "\(layer): \(instruction.prefix(200))"))
        }
    }

    /// The checks of the manifest itself: the expected digest and the signature.
    private func trustFindings(_ manifest: Manifest) throws -> ([VerifyFinding], Bool) {
        var findings: [VerifyFinding] = []
        if let expectedDigest, expectedDigest != manifest.rootDigest {
            findings.append(VerifyFinding(.digestMismatch, .error, path: "",
                                          message: "the manifest in the target is not the one CI recorded",
                                          expected: [("digest", expectedDigest.prefixed)],
                                          actual: [("digest", manifest.rootDigest.prefixed)]))
        }
        var signatureValid = false
        if let publicKey {
            if let signature {
                let verdict = try signature.verdict(rootDigest: manifest.rootDigest, publicKey: publicKey)
                if verdict.isValid {
                    signatureValid = true
                } else {
                    findings.append(VerifyFinding(.signature, .error, path: "", message: "\(verdict) (\(signatureSource ?? "signature"))",
                                                  expected: [("keyId", publicKey.keyId), ("digest", manifest.rootDigest.prefixed)],
                                                  actual: [("keyId", signature.keyId), ("digest", signature.digest.prefixed)]))
                }
            } else {
                findings.append(VerifyFinding(.signature, .error, path: "", message: "no signature found for the manifest (expected \(signatureSource ?? "a .sig file beside it"))",
                                              expected: [("keyId", publicKey.keyId)]))
            }
        }
        return (findings, signatureValid)
    }

    private func trust(_ signatureValid: Bool) -> VerifyReport.Trust {
        switch (expectedDigest != nil, signatureValid) {
        case (true, true): return .both
        case (true, false): return .expectedDigest
        case (false, true): return .signature
        case (false, false): return .none
        }
    }

    /// `--stamp-only`: checks that the target carries the expected (or validly signed) manifest without comparing
    /// files — for a registry image this needs only the manifest, config and stamp layer.
    package func verifyStamp(manifest: Manifest, manifestSource: String, targetName: String, targetKind: String) throws -> VerifyReport {
        let (findings, signatureValid) = try trustFindings(manifest)
        var report = VerifyReport(verdict: findings.isEmpty ? .verified : .mismatch, trust: trust(signatureValid),
                                  manifestSource: manifestSource, manifestDigest: manifest.rootDigest, expectedDigest: expectedDigest,
                                  target: targetName, targetKind: targetKind, at: "/", actualDigest: nil, findings: findings,
                                  warnings: ["--stamp-only: the files were not compared with the manifest"], entriesChecked: 0)
        report.filesCompared = false
        return report
    }

    /// `pkg/__pycache__/x.pyc`: written by Python at run time.
    package static func isBytecodeCache(_ path: Bytes) -> Bool {
        let comps = path.pathComponents
        guard let last = comps.last else { return false }
        if last == Array("__pycache__".utf8) { return true }
        return comps.count >= 2 && comps[comps.count - 2] == Array("__pycache__".utf8)
    }

    /// The directory whose digest equals `digest` (breadth-first, so the shallowest wins), or nil.
    package static func locate(_ digest: Digest, in tree: Tree, excluded: [String]) -> Bytes? {
        if !excluded.isEmpty {
            // An emitted manifest sits inside the context; its directory is the context root.
            for e in excluded {
                let rel = TreePath(e).bytes
                var found: Bytes?
                tree.walk { path, node in
                    guard found == nil, node.type == .directory else { return }
                    if tree.node(at: path.appendingPath(rel)) != nil,
                       withoutExcluded(Tree(root: node), excluded: excluded).rootDigest == digest { found = path }
                }
                if let found { return found }
            }
        }
        if tree.root.digest == digest { return [] }
        var level: [(Bytes, TreeNode)] = [([], tree.root)]
        while !level.isEmpty {
            var next: [(Bytes, TreeNode)] = []
            for (path, node) in level {
                for (name, child) in node.sortedChildren where child.type == .directory {
                    let p = path.appendingPath(name)
                    if child.digest == digest { return p }
                    next.append((p, child))
                }
            }
            level = next
        }
        return nil
    }

    /// When no directory has the manifest's digest (something changed): the directory whose child names best
    /// match the manifest root's (at least half of the union), shallowest first. Deterministic.
    package static func locateByNames(_ manifest: Tree, in tree: Tree) -> Bytes? {
        let want = Set(manifest.root.children.keys)
        guard !want.isEmpty else { return nil }
        var best: (score: Double, depth: Int, path: Bytes)?
        func consider(_ path: Bytes, _ node: TreeNode, depth: Int) {
            let have = Set(node.children.keys)
            let score = Double(want.intersection(have).count) / Double(want.union(have).count)
            if score >= 0.5, best == nil || score > best!.score || (score == best!.score && depth < best!.depth) {
                best = (score, depth, path)
            }
        }
        consider([], tree.root, depth: 0)
        tree.walk { path, node in
            let depth = path.pathComponents.count
            if node.type == .directory && depth <= 6 { consider(path, node, depth: depth) }
        }
        return best?.path
    }

    /// A copy of `tree` without `excluded` paths and the directories that held only them.
    package static func withoutExcluded(_ tree: Tree, excluded: [String]) -> Tree {
        guard !excluded.isEmpty else { return tree }
        let copy = Tree(root: tree.root.shallowCopy())
        func clone(_ from: TreeNode, _ to: TreeNode) {
            for (name, child) in from.children {
                let c = child.shallowCopy()
                if child.type == .directory { clone(child, c) }
                to.children[name] = c
            }
        }
        clone(tree.root, copy.root)
        // A signature beside an excluded manifest (`manifest.sig`) is imprint's too.
        for e in excluded + excluded.map({ ManifestSignature.path(besideManifest: $0) }) {
            let path = TreePath(e)
            copy.remove(path.bytes)
            var parent = Array(path.components.dropLast())
            while !parent.isEmpty, let n = copy.node(at: parent.joinedPath), n.type == .directory, n.children.isEmpty {
                copy.remove(parent.joinedPath)
                parent.removeLast()
            }
        }
        copy.computeDigests()
        return copy
    }

    package static func describe(_ n: TreeNode?) -> [(String, String)] {
        guard let n else { return [] }
        var out: [(String, String)] = [("type", n.type.rawValue), ("mode", octalMode(n.canonicalMode))]
        switch n.type {
        case .file: out += [("size", String(n.size)), ("sha256", n.digest.hex)]
        case .symlink: out.append(("target", n.target?.lossyString ?? ""))
        case .directory: out.append(("digest", n.digest.prefixed))
        default: break
        }
        if let l = n.layer { out.append(("layer", String(l))) }
        return out
    }
}
