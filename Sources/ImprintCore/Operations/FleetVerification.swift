import Foundation

/// What a fleet verification found: a row per container and one verdict.
package struct FleetReport: ExitStatusReporting {
    package struct Row {
        package var member: FleetMember
        package var report: VerifyReport?
        /// Why there is no report (not running, no manifest, an error reading it).
        package var problem: String?
        package var verdict: String { report?.verdict.rawValue ?? (member.target == nil ? "NOT RUNNING" : "ERROR") }
    }

    package var target: String
    package var rows: [Row]

    /// VERIFIED when every container was verified; a container that could not be judged is no proof.
    package var verdict: VerifyReport.Verdict {
        !rows.isEmpty && rows.allSatisfy { $0.report?.verdict == .verified } ? .verified : .mismatch
    }

    package var exitStatus: Int32 { Self.status(ok: verdict == .verified) }

    /// The verdict line and a row per container, then each container's findings.
    package func text() -> String {
        let ok = rows.filter { $0.report?.verdict == .verified }.count
        var out = "\(verdict.rawValue): \(target): \(rows.count) container\(rows.count == 1 ? "" : "s"), \(ok) verified"
        if ok < rows.count { out += ", \(rows.count - ok) not" }
        out += "\n"
        func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: max(n, s.count), withPad: " ", startingAt: 0) }
        let width = rows.map(\.member.name.count).max() ?? 10
        for r in rows {
            let errors = r.report?.findings.filter { $0.severity == .error } ?? []
            var summary = r.problem ?? ""
            if summary.isEmpty, !errors.isEmpty {
                let kinds = errors.map { $0.detail ?? $0.findingClass.rawValue }
                var seen: [String] = []
                for k in kinds where !seen.contains(k) { seen.append(k) }
                summary = "\(errors.count) finding\(errors.count == 1 ? "" : "s"): " + seen.prefix(4).joined(separator: ", ")
            }
            let svc = r.member.service + (r.member.number.map { " #\($0)" } ?? "")
            out += "  \(pad(r.member.name, width))  \(pad(svc, 14))  \(pad(r.verdict, 11))  \(summary)\n"
        }
        for r in rows where r.report?.verdict == .mismatch {
            out += "\n\(r.member.name):\n"
            for line in VerifyReportFormat.text(r.report!, colour: false, limit: 20).split(separator: "\n", omittingEmptySubsequences: false) {
                out += "  " + line + "\n"
            }
        }
        return out
    }

    /// `schemas/fleet-report.schema.json`.
    package func json() -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.string("target", target)
        w.string("verdict", verdict.rawValue)
        w.beginArray("containers")
        for r in rows {
            w.beginObject()
            w.string("name", r.member.name)
            w.string("service", r.member.service)
            if let n = r.member.number { w.int("number", n) }
            if let p = r.member.pod { w.string("pod", p) }
            if let i = r.member.image { w.string("image", i) }
            w.string("verdict", r.verdict)
            if let p = r.problem { w.string("problem", p) }
            if let rep = r.report {
                var doc = VerifyReportFormat.json(rep)
                while doc.last == 0x0A { doc.removeLast() }
                w.raw("report", doc)
            }
            w.endObject()
        }
        w.endArray()
        w.endObject()
        w.end()
        return w.bytes
    }
}

/// `compose:PROJECT[/SERVICE]`: the containers of a compose project, found by the labels compose gives them
/// (`com.docker.compose.project`, `.service`, `.container-number`).
package struct ComposeTarget: Sendable {
    package var project: String
    package var service: String?

    package static func isCompose(_ spec: String) -> Bool { spec.hasPrefix("compose:") }

    /// - Throws: `badInput` for an empty project.
    package init(parsing spec: String) throws {
        let rest = spec.dropFirst("compose:".count)
        let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let p = parts.first, !p.isEmpty, parts.count < 2 || !parts[1].isEmpty else {
            throw ImprintError.badInput("\(spec): expected compose:PROJECT or compose:PROJECT/SERVICE")
        }
        project = p
        service = parts.count == 2 ? parts[1] : nil
    }

    /// The project's containers, by service then replica number.
    /// - Throws: `notFound` when the engine has none.
    package func members(client: EngineClient) throws -> [FleetMember] {
        var filter = ["com.docker.compose.project=\(project)"]
        if let service { filter.append("com.docker.compose.service=\(service)") }
        let found = try client.containers(labels: filter)
        guard !found.isEmpty else {
            throw ImprintError(.notFound, "the \(client.engine) engine has no container of compose project \(project)\(service.map { " service \($0)" } ?? "")")
        }
        return found.map { c in
            FleetMember(name: c.name, service: c.labels["com.docker.compose.service"] ?? "?",
                        number: c.labels["com.docker.compose.container-number"].flatMap { Int($0) },
                        pod: nil, target: c.running ? "\(client.engine):\(c.id)" : nil, image: c.image)
        }.sorted { ($0.service, $0.number ?? 0, $0.name) < ($1.service, $1.number ?? 0, $1.name) }
    }
}

/// Verifies every container of a fleet target, each as `verify docker:`/`pid:` does (files through its root,
/// volumes included, its processes and their loaded code), each against the manifest for its service: given
/// (`--manifest SERVICE=FILE`, or one for all), else the stamp of the image its service names now (so a container
/// restarted after the tag moved is judged against the new build).
package struct FleetVerification {
    /// The request every container's verification starts from (expect, at, python, processes...).
    package var base: VerifyRequest
    /// Manifest files by service; the key `""` applies to every service without its own.
    package var manifests: [String: String] = [:]
    package var environment: [String: String] = ProcessInfo.processInfo.environment

    package init(base: VerifyRequest) { self.base = base }

    /// `--manifest` values for a fleet: `SERVICE=FILE` for one service, a bare `FILE` for every other.
    /// - Throws: `badInput` for a service given twice or an empty part.
    package static func parseManifests(_ values: [String]) throws -> [String: String] {
        var out: [String: String] = [:]
        for v in values {
            var service = "", file = v
            if let eq = v.firstIndex(of: "="), !FileManager.default.fileExists(atPath: v) {
                service = String(v[..<eq]); file = String(v[v.index(after: eq)...])
                guard !service.isEmpty, !file.isEmpty else { throw ImprintError.badInput("--manifest \(v): expected SERVICE=FILE") }
            }
            guard out[service] == nil else { throw ImprintError.badInput("--manifest for \(service.isEmpty ? "every service" : service) is given twice") }
            out[service] = file
        }
        return out
    }

    /// True for the targets `run` takes: `compose:`, `pod:`, `node:`.
    package static func isFleet(_ spec: String) -> Bool {
        ComposeTarget.isCompose(spec) || KubernetesTarget.isKubernetes(spec)
    }

    package func run(_ target: String) throws -> FleetReport {
        var client: EngineClient?
        let members: [FleetMember]
        if KubernetesTarget.isKubernetes(target) {
            members = try KubernetesTarget(parsing: target, environment: environment).members()
        } else if ComposeTarget.isCompose(target) {
            let engine = try EngineClient(engine: "docker", environment: environment)
            client = engine
            members = try ComposeTarget(parsing: target).members(client: engine)
        } else {
            throw ImprintError.badInput("\(target) is not a fleet target (compose:PROJECT, pod:NAMESPACE/NAME, node:)")
        }
        var stamps: [String: String] = [:], stampProblems: [String: String] = [:]
        let scratch = try BytecodeSpool()  // a temporary directory for the manifests taken from images
        // Each container's request (its manifest chosen here, in order), then the verifications, two at a time.
        var work: [Work] = []
        for m in members {
            guard let t = m.target else {
                work.append(Work(member: m, request: nil, problem: "not running"))
                continue
            }
            var request = base
            request.target = t
            do {
                if let file = manifests[m.service] ?? manifests[""] {
                    request.manifest = file
                } else if base.manifest == nil, let image = m.image, let client {
                    // The stamp of the image the service's tag names now (read once per image).
                    if stamps[image] == nil && stampProblems[image] == nil {
                        do {
                            stamps[image] = try Self.stampedManifest(of: image, client: client, into: scratch.directory, index: stamps.count + stampProblems.count)
                        } catch {
                            stampProblems[image] = (error as? ImprintError)?.message ?? "\(error)"
                        }
                    }
                    if let problem = stampProblems[image] { throw ImprintError(.notFound, problem) }
                    request.manifest = stamps[image]
                }
                work.append(Work(member: m, request: request, problem: nil))
            } catch {
                work.append(Work(member: m, request: nil, problem: (error as? ImprintError)?.message ?? "\(error)"))
            }
        }
        let rows: [FleetReport.Row] = parallelMap(work, workers: min(2, ProcessInfo.processInfo.activeProcessorCount), Self.verify)
        return FleetReport(target: target, rows: rows)
    }

    /// One container to verify, or why it cannot be.
    struct Work {
        var member: FleetMember
        var request: VerifyRequest?
        var problem: String?
    }

    static func verify(_ w: Work) -> FleetReport.Row {
        guard let request = w.request else { return FleetReport.Row(member: w.member, report: nil, problem: w.problem) }
        do {
            return FleetReport.Row(member: w.member, report: try request.run(), problem: nil)
        } catch {
            return FleetReport.Row(member: w.member, report: nil, problem: (error as? ImprintError)?.message ?? "\(error)")
        }
    }

    /// Verifies `target` every `interval` seconds until every container is verified or `timeout` seconds passed
    /// (`imprint wait compose:…`). `progress` sees each round's report.
    /// - Returns: the last report, whether it was complete, the rounds and the seconds taken.
    package func wait(_ target: String, interval: Double, timeout: Double,
                     progress: (Int, Double, FleetReport) -> Void = { _, _, _ in }) throws -> WaitResult<FleetReport> {
        let start = Date()
        var round = 0
        while true {
            round += 1
            let report = try run(target)
            let t = Date().timeIntervalSince(start)
            progress(round, t, report)
            if report.verdict == .verified { return WaitResult(report: report, complete: true, rounds: round, seconds: t) }
            if t >= timeout { return WaitResult(report: report, complete: false, rounds: round, seconds: t) }
            let pause = min(interval, timeout - t)
            if pause > 0 { usleep(UInt32(min(pause, 3600) * 1_000_000)) }
        }
    }

    /// The manifest stamped into `image` as the engine has it now (`GET /images/NAME/get`, a docker-archive),
    /// written to a file in `dir`.
    static func stampedManifest(of image: String, client: EngineClient, into dir: String, index: Int) throws -> String {
        let archive = dir + "/image-\(index).tar"
        try client.saveImage(image, to: archive)
        defer { unlink(archive) }
        let bytes = try EmbeddedManifest.extract(from: "docker-archive:" + archive, platform: nil)
        let path = dir + "/manifest-\(index).json"
        try AtomicFile.write(bytes, to: path)
        return path
    }
}
