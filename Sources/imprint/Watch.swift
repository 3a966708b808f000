import ArgumentParser
import Foundation
import ImprintCore

extension ImprintCommand {
    struct Watch: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "watch",
            abstract: "Verify running targets again and again, and export the verdicts as Prometheus metrics.",
            discussion: """
            Each round verifies every TARGET as `imprint verify` does — a running container (docker:NAME, \
            podman:NAME, pid:N), every container of a compose project (compose:PROJECT), every pod container on this \
            node (node:, pod:NAMESPACE/NAME), an image or a directory — then waits --interval seconds. Rounds are \
            cheap: a file whose device, inode, size, mtime and ctime are unchanged since it was hashed is not read \
            again (touch -r or cp -p cannot fake a ctime), and containers started from one image on an overlay \
            filesystem share those files; every --full-every rounds everything is hashed again.

            --metrics HOST:PORT serves the last round at /metrics in Prometheus's text format: \
            imprint_verified{target,container,service,pod} (1 verified, 0 not, -1 not judged), \
            imprint_findings{…,class,severity}, imprint_last_verified_timestamp_seconds, \
            imprint_verify_duration_seconds, imprint_rounds_total. --format prometheus -o FILE writes the same after \
            every round (atomically), for node_exporter's textfile collector. Alert on imprint_verified == 0.

            Examples:
              imprint watch docker:web-1 docker:web-2 --interval 30 --metrics 127.0.0.1:9464
              imprint watch node: --interval 60 --format prometheus -o /var/lib/node_exporter/textfile/imprint.prom
              imprint watch compose:shop --manifest web=web.json --rounds 1 --format prometheus

            Exit status: 0 after --rounds rounds (runs until stopped without it); 2 bad arguments or the metrics \
            address cannot be listened on. A target that does not verify is a metric, not an exit status.
            """
        )

        enum Format: String, CaseIterable, ExpressibleByArgument { case text, prometheus }

        @Argument(help: "What to verify each round (as imprint verify takes it).") var targets: [String]
        @Option(help: ArgumentHelp("Seconds between the end of a round and the start of the next (fractions allowed).", valueName: "seconds")) var interval: Double = 60
        @Option(help: ArgumentHelp("Stop after this many rounds (default: run until stopped).", valueName: "N")) var rounds: Int?
        @Option(name: .customLong("full-every"), help: ArgumentHelp("Hash every file again every N rounds.", valueName: "N")) var fullEvery: Int = 10
        @Option(help: ArgumentHelp("Serve the metrics at http://HOST:PORT/metrics.", valueName: "HOST:PORT")) var metrics: String?
        @Option(help: "After each round: a line per round (text) or the metrics (prometheus).") var format: Format = .text
        @Option(name: .shortAndLong, help: "Write each round's output here (atomically, replacing it) instead of stdout.", completion: .file()) var output: String?
        @Option(name: .long, help: "The manifest to compare with (SERVICE=FILE for one service of a fleet target), repeatable.", completion: .file()) var manifest: [String] = []
        @Option(name: .long, help: "The root digest CI recorded.") var expect: String?
        @Option(name: .long, help: "Where the context root is in each target, e.g. /app.") var at: String?
        @Flag(name: .customLong("no-processes"), help: "For running containers: check only their files.") var noProcesses = false
        @OptionGroup var quietFlag: QuietFlag

        func validate() throws {
            guard interval.isFinite, interval >= 0 else { throw ValidationError("--interval must be zero or a positive number of seconds") }
            if let rounds, rounds < 1 { throw ValidationError("--rounds must be at least 1") }
            guard fullEvery >= 1 else { throw ValidationError("--full-every must be at least 1") }
            if let expect, Digest(hex: expect.lowercased()) == nil { throw ValidationError("--expect must be sha256:<64 hex digits>, got \(expect)") }
        }

        func run() throws {
            var watcher: Watcher!
            var server: MetricsServer?
            try runReportingErrors {
                var base = VerifyRequest(target: "")
                base.expect = expect.flatMap { Digest(hex: $0.lowercased()) }
                base.at = at
                base.checkContainerProcesses = !noProcesses
                let manifests = try FleetVerification.parseManifests(manifest)
                if manifests.count == 1, let only = manifests[""] { base.manifest = only }
                watcher = Watcher(targets: targets, base: base, fullEvery: fullEvery)
                watcher.manifests = manifests
                if let metrics {
                    server = try MetricsServer(address: metrics)
                    if !quietFlag.quiet { Console.err("imprint: metrics at http://\(metrics.split(separator: ":").dropLast().joined(separator: ":")):\(server!.port)/metrics") }
                }
            }
            var n = 0
            while rounds.map({ n < $0 }) ?? true {
                n += 1
                let round = watcher.round()
                let text = Watcher.prometheus(round)
                server?.update(text)
                try runReportingErrors {
                    let body = format == .prometheus ? text : Watcher.line(round) + "\n"
                    if let output { try AtomicFile.write(Array(body.utf8), to: output) } else if format == .prometheus || !quietFlag.quiet { Console.outRaw(Array(body.utf8)) }
                }
                if format == .prometheus, output != nil, !quietFlag.quiet { Console.err(Watcher.line(round)) }
                if let rounds, n >= rounds { break }
                if interval > 0 { usleep(UInt32(min(interval, 3600) * 1_000_000)) }
            }
        }
    }
}
