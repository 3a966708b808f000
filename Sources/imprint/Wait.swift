import ArgumentParser
import Foundation
import ImprintCore

extension ImprintCommand {
    struct Wait: ParsableCommand, LiveOutput {
        static let configuration = CommandConfiguration(
            commandName: "wait",
            abstract: "Wait until a deployed service serves the expected manifest digest.",
            discussion: """
            The rollout gate after kubectl apply or docker compose up: polls each URL with GET until the JSON it \
            returns carries DIGEST (at --field; default imprint.digest, a top-level digest, or the manifest.digest of \
            `imprint probe python` evidence) with a 2xx status. The digest must be the one the serving process read \
            when it started (ci/examples/serve-digest.py, or the probe): a process that reads the manifest file at \
            every request reports a new digest while still running old code.

            Behind a load balancer, one answer says little: --consecutive K needs K answers in a row with the \
            expected digest, and --instances N needs N distinct instances (told apart by the pid, start time and host \
            the answer reports) with it and no other digest among the recent answers. Several URLs (one per instance) \
            must all serve it. Each poll prints what it saw on stderr; the verdict and a per-instance table (digest, \
            process start, last seen) go to stdout.

            With compose:PROJECT[/SERVICE] instead of URLs, every container of the compose project is verified as \
            `verify compose:` does, each round, until all of them are (--expect, --manifest SERVICE=FILE as there).

            With --served and one URL, the site's files are checked as `verify URL --served` does, each round, until \
            every file, every page's references and every service worker's precache list are the build's (a cache \
            in front that still serves the old bundle keeps the gate closed).

            Examples:
              docker-compose -p shop up -d && imprint wait compose:shop --timeout 120
              kubectl apply -f deploy.yaml
              imprint wait https://api.example.com/healthz --expect "$(cat ../out/digest.txt)" --consecutive 5 --timeout 600
              imprint wait http://10.0.0.5:8080/imprint http://10.0.0.6:8080/imprint --expect sha256:3f1c…
              imprint wait https://www.example.com/ --served --manifest ../out/site.json --served-root dist --timeout 300

            Exit status: 0 the digest is served; 1 timed out (the message says what was seen last); \
            2 bad arguments (URL, digest, interval, header).
            """
        )

        @Argument(help: "The endpoints (http:// or https://) that serve the digest as JSON, or one compose:PROJECT[/SERVICE].") var urls: [String]
        @Option(help: ArgumentHelp("The digest the new rollout serves: sha256:<64 hex digits> or the 64 hex digits, any case (required for URLs).", valueName: "digest")) var expect: String?
        @Option(name: .long, help: ArgumentHelp("For compose:: the manifest of a service (SERVICE=FILE; a bare FILE for every service), repeatable.", valueName: "SERVICE=FILE")) var manifest: [String] = []
        @Option(help: ArgumentHelp("Dot path to the digest in the JSON answer (default: imprint.digest, digest, manifest.digest).", valueName: "path")) var field: String?
        @Option(help: ArgumentHelp("Seconds between rounds of polls (fractions allowed).", valueName: "seconds")) var interval: Double = 2
        @Option(help: ArgumentHelp("Seconds to wait before giving up with exit status 1.", valueName: "seconds")) var timeout: Double = 300
        @Option(help: ArgumentHelp("Answers in a row, per URL, that must all carry the digest (a load balancer may answer from any instance).", valueName: "K")) var consecutive: Int = 1
        @Option(help: ArgumentHelp("Distinct instances that must serve the digest, none serving another.", valueName: "N")) var instances: Int?
        @Option(name: .customLong("header"), help: ArgumentHelp("An extra request header (repeatable), e.g. 'Authorization: Bearer …'.", valueName: "Name: value")) var headers: [String] = []
        @Flag(help: "Wait until the site at the URL serves the build's files (--manifest FILE), as `verify URL --served` checks them.") var served = false
        @Option(name: .customLong("served-root"), help: ArgumentHelp("With --served: the manifest's directory published at the URL (default: its root).", valueName: "dir")) var servedRoot: String?
        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            if served { return try waitForServed() }
            if urls.count == 1, FleetVerification.isFleet(urls[0]) { return try waitForFleet(urls[0]) }
            let gate = try runReportingErrors {
                guard let expect else { throw ImprintError.badInput("--expect DIGEST is required for URLs") }
                if !manifest.isEmpty { throw ImprintError.badInput("--manifest is for compose: targets") }
                return try RolloutWait(urls: urls, expect: expect, field: field, interval: interval, timeout: timeout,
                                       headers: headers, consecutive: consecutive, instances: instances)
            }
            let (outcome, table) = gate.run { n, t, url, o in
                if !quietFlag.quiet { Console.err(RolloutWaitFormat.pollLine(n, at: t, url: url, o, gate: gate)) }
            }
            Console.outRaw(Array(RolloutWaitFormat.outcome(outcome, table: table, gate: gate).utf8))
            try conclude(outcome)
        }

        func waitForServed() throws {
            let result = try runReportingErrors {
                guard urls.count == 1 else { throw ImprintError.badInput("--served takes one URL, the site's base") }
                guard manifest.count == 1 else { throw ImprintError.badInput("--served needs --manifest FILE (the build's manifest)") }
                var request = VerifyRequest(target: urls[0])
                request.served = true
                request.manifest = manifest[0]
                request.servedRoot = servedRoot
                if let expect {
                    guard let d = RolloutWait.normalise(expect) else { throw ImprintError.badInput("--expect '\(expect)' is not a full SHA-256 digest") }
                    request.expect = d
                }
                return try request.waitServed(interval: interval, timeout: timeout) { n, t, r in
                    if !quietFlag.quiet {
                        Console.err(String(format: "round %d at %.1f s: %d of %d assets serve the build", n, t,
                                           r.entriesChecked - Set(r.failures.map(\.path)).count, r.entriesChecked))
                    }
                }
            }
            let target = urls[0]
            Console.outRaw(Array((result.complete
                ? "rollout complete: \(target) serves the build, after \(result.rounds) round\(result.rounds == 1 ? "" : "s"), \(String(format: "%.1f", result.seconds)) s\n"
                : "timed out after \(String(format: "%.1f", result.seconds)) s: \(target) does not serve the build\n\(VerifyReportFormat.text(result.report, colour: false, limit: 20))").utf8))
            try conclude(result)
        }

        func waitForFleet(_ target: String) throws {
            let result = try runReportingErrors {
                var base = VerifyRequest(target: target)
                if let expect {
                    guard let d = RolloutWait.normalise(expect) else { throw ImprintError.badInput("--expect '\(expect)' is not a full SHA-256 digest") }
                    base.expect = d
                }
                var fleet = FleetVerification(base: base)
                fleet.manifests = try FleetVerification.parseManifests(manifest)
                return try fleet.wait(target, interval: interval, timeout: timeout) { n, t, r in
                    if !quietFlag.quiet {
                        let ok = r.rows.filter { $0.report?.verdict == .verified }.count
                        Console.err(String(format: "round %d at %.1f s: %d of %d containers verified", n, t, ok, r.rows.count))
                    }
                }
            }
            let r = result.report
            Console.outRaw(Array((result.complete
                ? "rollout complete: every container of \(target) verified, after \(result.rounds) round\(result.rounds == 1 ? "" : "s"), \(String(format: "%.1f", result.seconds)) s\n"
                : "timed out after \(String(format: "%.1f", result.seconds)) s: \(target) is not verified\n").utf8))
            Console.outRaw(Array(r.text().utf8))
            try conclude(result)
        }
    }
}
