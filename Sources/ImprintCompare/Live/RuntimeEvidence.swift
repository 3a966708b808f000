import Foundation

/// What a running Python process says it loaded, as the probe (`PythonProbe`) serves it
/// (`schemas/probe-evidence.schema.json`), and the judgment of it against a manifest.
package struct RuntimeEvidence: Sendable {
    package struct Module: Sendable {
        package enum Origin: String, Sendable { case source, bytecode, sourceless }
        package var name: String
        /// Relative to the application root.
        package var path: String
        package var origin: Origin
        /// SHA-256 of the bytes the code came from (the source, or the pyc used).
        package var sha256: String?
        package var pyc: String?
        /// For bytecode: the source file on disk at import time.
        package var sourceSha256: String?
        /// For bytecode: whether the pyc's code is that source compiled.
        package var codeMatchesSource: Bool?
        /// What the manifest the process read at start lists for `path`.
        package var manifestSha256: String?
        package var sourceError: String?
    }

    package var pid: Int
    /// The probe's identity of the process (boot id, mount namespace, pid, start time, hashed): distinct for every
    /// process of every container on every machine. Nil from older probes.
    package var instance: String?
    /// The process's start time in clock ticks since boot, as `/proc/PID/stat` gives it.
    package var startTicks: Int64?
    package var hostname: String
    package var startedAt: String
    package var python: String
    package var root: String
    /// The digest of the manifest the process read at start (nil: it found none).
    package var manifestDigest: Digest?
    package var manifestPath: String?
    package var modules: [Module]
    /// Every live process of the same container that imported the probe, this one included, as the answering
    /// process read their evidence files (empty from older probes).
    package var processes: [RuntimeEvidence] = []

    /// The processes to judge: all of `processes` when the probe listed them, else this one.
    package var allProcesses: [RuntimeEvidence] { processes.isEmpty ? [self] : processes }

    /// Parses the probe's document.
    /// - Throws: `badInput` naming `source` when it is not probe evidence.
    package static func parse(_ bytes: [UInt8], source: String) throws -> RuntimeEvidence {
        let o = try JSONRead.object(bytes, what: source)
        guard let probe = o["probe"] as? String, probe.hasPrefix("imprint-probe/") else {
            throw ImprintError.badInput("\(source) is not imprint probe evidence (no \"probe\": \"\(PythonProbe.identifier)\")")
        }
        var mods: [Module] = []
        for (i, m) in (o["modules"] as? [[String: Any]] ?? []).enumerated() {
            guard let name = m["module"] as? String, let path = m["path"] as? String,
                  let origin = (m["loadedFrom"] as? String).flatMap(Module.Origin.init(rawValue:)) else {
                throw ImprintError.badInput("\(source): module \(i + 1) lacks module, path or loadedFrom")
            }
            mods.append(Module(name: name, path: path, origin: origin, sha256: m["sha256"] as? String, pyc: m["pyc"] as? String,
                               sourceSha256: m["sourceSha256"] as? String, codeMatchesSource: m["codeMatchesSource"] as? Bool,
                               manifestSha256: m["manifestSha256"] as? String, sourceError: m["sourceError"] as? String))
        }
        let manifest = o["manifest"] as? [String: Any]
        let identity = o["identity"] as? [String: Any]
        var e = RuntimeEvidence(pid: (o["pid"] as? NSNumber)?.intValue ?? 0, instance: o["instance"] as? String,
                                startTicks: (identity?["startTicks"] as? NSNumber)?.int64Value, hostname: o["hostname"] as? String ?? "",
                                startedAt: o["startedAt"] as? String ?? "", python: o["python"] as? String ?? "",
                                root: o["root"] as? String ?? "", manifestDigest: (manifest?["digest"] as? String).flatMap(Digest.init(hex:)),
                                manifestPath: manifest?["path"] as? String, modules: mods)
        if let others = o["processes"] as? [[String: Any]] {
            for (i, p) in others.enumerated() {
                guard let data = try? JSONSerialization.data(withJSONObject: p) else { continue }
                e.processes.append(try parse(Array(data), source: "\(source) (process \(i + 1))"))
            }
        }
        return e
    }

    /// The evidence inside a health answer: the document itself, or its `imprint` member.
    package static func find(in bytes: [UInt8], source: String) throws -> RuntimeEvidence {
        if let o = try? JSONRead.object(bytes, what: source), o["probe"] == nil, let inner = o["imprint"] as? [String: Any],
           inner["probe"] != nil, let data = try? JSONSerialization.data(withJSONObject: inner) {
            return try parse(Array(data), source: source)
        }
        return try parse(bytes, source: source)
    }

    /// What every process ran (`allProcesses`), judged against `manifest` (nil: the entries each process read from its
    /// own manifest) and the digest CI recorded.
    package func judge(manifest: Manifest?, expected: Digest?) -> [VerifyFinding] {
        var listed: [String: String]?
        if let manifest {
            var l: [String: String] = [:]
            manifest.tree.walk { path, node in if node.type == .file { l[path.lossyString] = node.digest.hex } }
            listed = l
        }
        return allProcesses.flatMap { $0.judgeOne(manifest: manifest, listed: listed, expected: expected) }
    }

    private func judgeOne(manifest: Manifest?, listed: [String: String]?, expected: Digest?) -> [VerifyFinding] {
        var out: [VerifyFinding] = []
        func add(_ detail: String, _ path: String, _ message: String, severity: VerifyFinding.Severity = .error,
                 expected: [(String, String)] = [], actual: [(String, String)] = []) {
            out.append(VerifyFinding(.runtime, severity, path: path, message: message, expected: expected, actual: actual, detail: detail))
        }
        let who = "process \(pid) on \(hostname) (started \(startedAt))"
        if let expected, manifestDigest != expected {
            add("manifest-digest", "", "\(who) started with manifest \(manifestDigest?.prefixed ?? "none"), not the one CI recorded: an old process, or an old deploy",
                expected: [("digest", expected.prefixed)], actual: [("digest", manifestDigest?.prefixed ?? "none")])
        }
        if let manifest, let d = manifestDigest, manifest.rootDigest != d {
            add("manifest-digest", "", "\(who) started with manifest \(d.prefixed), not \(manifest.rootDigest.prefixed)",
                expected: [("digest", manifest.rootDigest.prefixed)], actual: [("digest", d.prefixed)])
        }
        let judgeable = manifest != nil || manifestDigest != nil
        if !judgeable {
            add("manifest-digest", "", "\(who) found no imprint manifest at start and none was given (--manifest): its modules cannot be compared with a build", severity: .warning)
        }
        for m in modules {
            let want = listed != nil ? listed?[m.path] : m.manifestSha256
            switch m.origin {
            case .source:
                guard judgeable else { continue }
                guard let want else {
                    add("unlisted-module", m.path, "\(who): \(m.name) was loaded from a file the manifest does not list", actual: [("sha256", m.sha256 ?? "?")])
                    continue
                }
                if m.sha256 != want {
                    add("stale-module", m.path, "\(who): \(m.name) was loaded from source bytes other than the manifest's (the file was replaced after the import, or the process predates the deploy)",
                        expected: [("sha256", want)], actual: [("sha256", m.sha256 ?? "?")])
                }
            case .bytecode:
                if judgeable {
                    if let want, let s = m.sourceSha256, s != want {
                        add("stale-module", m.path, "\(who): \(m.name) was loaded while its source differed from the manifest's",
                            expected: [("sha256", want)], actual: [("source", s)])
                    } else if want == nil {
                        add("unlisted-module", m.path, "\(who): \(m.name) was loaded for a source the manifest does not list")
                    }
                }
                if m.codeMatchesSource == false {
                    add("stale-bytecode-module", m.pyc ?? m.path, "\(who): \(m.name) ran bytecode from \(m.pyc ?? "a pyc") that is not \(m.path) compiled: the OLD code runs",
                        expected: [("source", m.path)], actual: [("pyc", m.pyc ?? "?")])
                } else if let e = m.sourceError {
                    add("stale-bytecode-module", m.pyc ?? m.path, "\(who): \(m.name) ran bytecode the probe could not compare with its source: \(e)", severity: .warning)
                }
            case .sourceless:
                // Code with no source: nothing shows what it was compiled from, listed in the manifest or not (the
                // legacy pyc a build context kept runs whatever the old helper was).
                let note = want == nil ? "the manifest does not list it" : (want == m.sha256 ? "it is the manifest's pyc, but no source shows what it was compiled from" : "it is not the manifest's pyc")
                add("sourceless-module", m.path, "\(who): \(m.name) was imported from a sourceless pyc (\(note)): whatever it was compiled from runs",
                    expected: want.map { [("sha256", $0)] } ?? [], actual: [("sha256", m.sha256 ?? "?")])
            }
        }
        return out
    }

    /// GETs the evidence at `url` (the document itself, or a health answer holding it under `imprint`).
    /// - Throws: `failure` naming the URL when it does not answer 200 with evidence.
    package static func fetch(_ url: String, client: HTTPClient) throws -> RuntimeEvidence {
        guard let u = URL(string: url), u.host != nil else { throw ImprintError.badInput("\(url) is not a URL") }
        let r: HTTPResponse
        do { r = try client.send(HTTPRequest(method: "GET", url: u, headers: ["Accept": "application/json"])) } catch let e as TransportError {
            throw ImprintError(.failure, "cannot get the probe evidence from \(url): \(e.message)")
        }
        let body = try r.readBody(limit: 64 << 20, what: "probe evidence from \(url)")
        guard r.status == 200 else { throw ImprintError(.failure, "\(url) answered \(r.status), not the probe evidence") }
        return try find(in: body, source: url)
    }

    /// A verify report for this evidence.
    package func report(target: String, manifest: Manifest?, manifestSource: String?, expected: Digest?) -> VerifyReport {
        let findings = judge(manifest: manifest, expected: expected)
        let verdict: VerifyReport.Verdict = findings.contains { $0.severity == .error } ? .mismatch : .verified
        let trust: VerifyReport.Trust = expected != nil && expected == manifestDigest ? .expectedDigest : .none
        return VerifyReport(verdict: verdict, trust: trust, manifestSource: manifestSource ?? manifestPath ?? "the process's own manifest",
                            manifestDigest: manifest?.rootDigest ?? manifestDigest ?? .empty, expectedDigest: expected,
                            target: target, targetKind: "python-process", at: root, actualDigest: nil, findings: findings,
                            warnings: [], entriesChecked: allProcesses.reduce(0) { $0 + $1.modules.count })
    }
}

extension ServingProcess {
    /// The probe's evidence for process `p`, parsed; nil when there is none or it does not parse.
    package static func evidence(of p: RunningProcess, proc: String, live: Set<Int32>) -> RuntimeEvidence? {
        guard let (file, bytes) = evidenceFile(of: p, proc: proc) else { return nil }
        return try? RuntimeEvidence.parse(bytes, source: file)
    }
}
