import ArgumentParser
import Foundation
import ImprintCore

extension ImprintCommand {
    struct Wait: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Wait until a deployed service serves the expected manifest digest.",
            discussion: """
            The rollout gate after kubectl apply or docker compose up: polls URL with GET until the JSON it \
            returns carries DIGEST at --field (default imprint.digest, else a top-level digest) with a 2xx \
            status. Each poll prints what it saw on stderr; the verdict goes to stdout. The application serves \
            the root digest of its embedded manifest, e.g. {"imprint": {"digest": "sha256:…"}} read from \
            /.imprint/manifest.json (ci/examples/serve-digest.py does this with the Python standard library).

            Example:
              kubectl apply -f deploy.yaml
              imprint wait https://api.example.com/healthz --expect "$(imprint fingerprint . --digest-only)" --timeout 600

            Exit status: 0 the digest is served; 1 timed out (the message says what was seen last); \
            2 bad arguments (URL, digest, interval, header).
            """
        )

        @Argument(help: "The health endpoint (http:// or https://) that serves the digest as JSON.")
        var url: String

        @Option(help: ArgumentHelp("The digest the new rollout serves: sha256:<64 hex digits> or the 64 hex digits, any case.", valueName: "digest"))
        var expect: String

        @Option(help: ArgumentHelp("Dot path to the digest in the JSON answer (default: imprint.digest, then a top-level digest).", valueName: "path"))
        var field: String?

        @Option(help: ArgumentHelp("Seconds between polls (fractions allowed).", valueName: "seconds"))
        var interval: Double = 2

        @Option(help: ArgumentHelp("Seconds to wait before giving up with exit status 1.", valueName: "seconds"))
        var timeout: Double = 300

        @Option(name: .customLong("header"), help: ArgumentHelp("An extra request header (repeatable), e.g. 'Authorization: Bearer …'.", valueName: "Name: value"))
        var headers: [String] = []

        @Flag(name: .shortAndLong, help: "Do not print a line per poll.")
        var quiet = false

        func run() async throws {
            var gate: RolloutWait!
            try runReportingErrors {
                gate = try RolloutWait(url: url, expect: expect, field: field, interval: interval, timeout: timeout,
                                       headers: headers)
            }
            let expected = gate.expected
            let outcome = gate.run { n, t, o in
                guard !quiet else { return }
                let note = o.matches ? " (expected)" : (o.digestMatches ? " (expected digest, but not a 2xx status)"
                                                         : (o.value != nil ? " (waiting for \(expected))" : ""))
                Console.err("poll \(n) at \(Self.seconds(t)): \(o)\(note)")
            }
            switch outcome {
            case let .complete(polls, t, _):
                Console.out("rollout complete: \(gate.url.absoluteString) serves \(expected), after \(polls) poll\(polls == 1 ? "" : "s"), \(Self.seconds(t))")
            case let .timedOut(polls, t, last):
                Console.out("timed out after \(Self.seconds(t)): last seen \(last) from \(gate.url.absoluteString), expected \(expected) (\(polls) poll\(polls == 1 ? "" : "s"))")
                throw ExitCode(1)
            }
        }

        static func seconds(_ t: Double) -> String { String(format: "%.1f s", t) }
    }
}
