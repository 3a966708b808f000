import Foundation

/// The rollout gate: polls an HTTP endpoint until what it serves shows the expected code running.
///
/// Run it after `kubectl apply` or `docker compose up`: it returns once the new code answers, or times out.
///
/// Two kinds of answer:
/// - The probe's evidence (`imprint probe python`, served as JSON, or under `imprint`): the code every process of
///   the answering container loaded is judged as `verify URL` judges it. A poll matches only when no process runs
///   other code than the build the expected digest names (stale modules, stale bytecode, sourceless modules, another
///   manifest).
/// - Anything else: the application's own claim of its digest, at the first of `fields` present (`sha256:` prefix
///   optional, any case). The gate then trusts that claim and says so.
///
/// Instances are told apart by the probe's `instance` (boot id, mount namespace, pid, start time), else by the
/// host, pid and start time an answer reports. The rollout is complete only when every answer of the recent
/// window matches — so an instance still on old code that answers now and then keeps the gate waiting, however
/// many answers in a row came from new instances.
package struct RolloutWait: Sendable {
    /// Where the digest is looked for when no field is given: `imprint.digest`, then a top-level `digest`, then the
    /// digest the probe's evidence reports (`manifest.digest`, `imprint.manifest.digest`).
    package static let defaultFields = ["imprint.digest", "digest", "manifest.digest", "imprint.manifest.digest"]

    /// Every endpoint polled (one load-balanced URL, or each instance's own).
    package let urls: [URL]
    package var url: URL { urls[0] }
    /// Answers in a row, per URL, that must all carry the expected digest (a load balancer may route each poll to
    /// another instance).
    package var consecutive = 1
    /// Distinct instances (told apart by the pid, start time and host they report) that must have answered with the
    /// expected digest, none answering with another, within the recent answers.
    package var instances: Int?
    package let expected: Digest
    /// Dot paths into the JSON body (`imprint.digest`; a numeric component indexes an array), tried in order.
    package let fields: [String]
    /// Seconds between polls.
    package let interval: Double
    /// Seconds after the first poll when waiting stops.
    package let timeout: Double
    /// Extra request headers (name, value).
    package let headers: [Header]

    package struct Header: Sendable, Equatable {
        package var name: String
        package var value: String

        /// Parses `Name: value` (as curl's `-H`).
        /// - Throws: `badInput` when there is no colon or the name is empty or not a token.
        package init(parsing text: String) throws {
            guard let colon = text.firstIndex(of: ":") else {
                throw ImprintError.badInput("header '\(text)' is not 'Name: value'")
            }
            name = text[..<colon].trimmingCharacters(in: .whitespaces)
            value = text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            let token = CharacterSet(charactersIn: "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
            guard !name.isEmpty, name.unicodeScalars.allSatisfy({ token.contains($0) }) else {
                throw ImprintError.badInput("header '\(text)' has no valid name before the colon")
            }
        }
    }

    /// Validates the arguments of a wait.
    /// - Parameters:
    ///   - url: an `http://` or `https://` URL with a host.
    ///   - expect: the full digest, `sha256:<64 hex>` or bare 64 hex digits, any case.
    ///   - field: a dot path into the JSON; nil for ``defaultFields``.
    /// - Throws: `badInput` naming the argument that is wrong.
    package init(url: String, expect: String, field: String? = nil, interval: Double = 2, timeout: Double = 300,
                headers: [String] = []) throws {
        try self.init(urls: [url], expect: expect, field: field, interval: interval, timeout: timeout, headers: headers)
    }

    package init(urls: [String], expect: String, field: String? = nil, interval: Double = 2, timeout: Double = 300,
                headers: [String] = [], consecutive: Int = 1, instances: Int? = nil) throws {
        var parsed: [URL] = []
        for url in urls {
            guard let u = URL(string: url), let scheme = u.scheme?.lowercased(), ["http", "https"].contains(scheme),
                  let host = u.host, !host.isEmpty else {
                throw ImprintError.badInput("'\(url)' is not an http:// or https:// URL")
            }
            parsed.append(u)
        }
        guard !parsed.isEmpty else { throw ImprintError.badInput("give at least one URL") }
        guard consecutive >= 1, consecutive <= 1000 else { throw ImprintError.badInput("--consecutive must be from 1 to 1000") }
        if let instances { guard instances >= 1, instances <= 1000 else { throw ImprintError.badInput("--instances must be from 1 to 1000") } }
        self.consecutive = consecutive
        self.instances = instances
        guard let digest = Self.normalise(expect) else {
            throw ImprintError.badInput("--expect '\(expect)' is not a full SHA-256 digest (sha256:<64 hex digits>)")
        }
        if let field {
            guard !field.isEmpty, !field.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) else {
                throw ImprintError.badInput("--field '\(field)' is not a dot path such as imprint.digest")
            }
        }
        guard interval.isFinite, interval > 0 else { throw ImprintError.badInput("--interval must be a positive number of seconds") }
        guard timeout.isFinite, timeout >= 0 else { throw ImprintError.badInput("--timeout must be zero or a positive number of seconds") }
        self.urls = parsed
        self.expected = digest
        self.fields = field.map { [$0] } ?? Self.defaultFields
        self.interval = interval
        self.timeout = timeout
        self.headers = try headers.map(Header.init(parsing:))
    }

    /// A digest as a server or a person may write it: `sha256:` prefix optional, any case, surrounding spaces.
    /// Nil unless it is 64 hex digits.
    package static func normalise(_ text: String) -> Digest? {
        var s = text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        if s.hasPrefix("sha256:") { s.removeFirst(7) }
        guard s.utf8.count == 64 else { return nil }
        return Digest(hex: s)
    }

    /// What one poll saw.
    package struct Observation: Sendable, Equatable, CustomStringConvertible {
        /// The HTTP status, nil when there was no answer.
        package var status: Int?
        /// The field where a value was found and the value (as served), nil when none of the fields is present.
        package var field: String?
        package var value: String?
        /// Why there is no usable value: no answer (with the reason), body not JSON, no field, not a string.
        package var problem: String?
        /// True when the status is 2xx and the value is the expected digest.
        package var matches: Bool
        /// True when the value is the expected digest (whatever the status).
        package var digestMatches: Bool
        /// Who answered, when the answer says (the probe's instance id, else host and pid).
        package var instance: String?
        package var started: String?
        /// True when the answer was the probe's evidence and the loaded code was judged; false when the gate had
        /// only the application's claim of its digest.
        package var codeJudged: Bool = false
        /// The processes whose code was judged in this answer (the answering container's probe processes).
        package var processes: Int = 0

        package var description: String {
            var parts: [String] = []
            if let status { parts.append("HTTP \(status)") }
            if let problem { parts.append(problem) }
            if let field, let value {
                var shown = value.count > 80 ? String(value.prefix(80)) + "…" : value
                if let d = RolloutWait.normalise(value) { shown = d.prefixed }
                parts.append("\(field) \(shown)")
            }
            return parts.joined(separator: ", ")
        }
            package init(status: Int? = nil, field: String? = nil, value: String? = nil, problem: String? = nil, matches: Bool, digestMatches: Bool, instance: String? = nil, started: String? = nil, codeJudged: Bool = false, processes: Int = 0) {
            self.status = status; self.field = field; self.value = value; self.problem = problem; self.matches = matches; self.digestMatches = digestMatches; self.instance = instance; self.started = started; self.codeJudged = codeJudged; self.processes = processes
        }
}

    /// Judges one HTTP answer (pure: no network).
    package static func observe(status: Int, body: Data, fields: [String], expected: Digest) -> Observation {
        var o = Observation(status: status, field: nil, value: nil, problem: nil, matches: false, digestMatches: false)
        guard let json = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) else {
            o.problem = body.isEmpty ? "empty body" : "body is not JSON"
            return o
        }
        // The probe's evidence: judge the loaded code of every process it lists.
        if lookup("probe", in: json) != nil || lookup("imprint.probe", in: json) != nil,
           let evidence = try? RuntimeEvidence.find(in: Array(body), source: "answer") {
            let findings = evidence.judge(manifest: nil, expected: expected)
            let errors = findings.filter { $0.severity == .error }
            o.codeJudged = true
            o.processes = evidence.allProcesses.count
            o.instance = evidence.instance ?? [evidence.hostname, "pid \(evidence.pid)"].joined(separator: " ")
            o.started = evidence.startedAt
            o.field = "manifest.digest"
            o.value = evidence.manifestDigest?.prefixed ?? "none"
            o.digestMatches = evidence.allProcesses.allSatisfy { $0.manifestDigest == expected }
            o.matches = errors.isEmpty && (200..<300).contains(status)
            if let first = errors.first {
                o.problem = "old code runs: [\(first.detail ?? "")] \(first.message)\(errors.count > 1 ? " (and \(errors.count - 1) more)" : "")"
            }
            return o
        }
        // The probe's evidence (or a health answer carrying the same facts) says which process answered.
        for base in ["", "imprint."] {
            let pid = lookup(base + "pid", in: json).map { "\($0)" }
            let started = lookup(base + "startedAt", in: json).map { "\($0)" } ?? lookup(base + "started", in: json).map { "\($0)" }
            let host = lookup(base + "hostname", in: json).map { "\($0)" }
            if let id = lookup(base + "instance", in: json) as? String, !id.isEmpty {
                o.instance = id
                o.started = started
                break
            }
            if pid != nil || started != nil {
                o.instance = [host, pid.map { "pid \($0)" }].compactMap { $0 }.joined(separator: " ")
                o.started = started
                break
            }
        }
        for f in fields {
            guard let v = lookup(f, in: json) else { continue }
            guard let s = v as? String else {
                o.problem = "field \(f) is not a string"
                return o
            }
            o.field = f
            o.value = s
            o.digestMatches = normalise(s) == expected
            o.matches = o.digestMatches && (200..<300).contains(status)
            return o
        }
        o.problem = "no field " + fields.joined(separator: " or ")
        return o
    }

    /// The value at a dot path (`imprint.digest`, `items.0.digest`), nil when absent.
    package static func lookup(_ path: String, in json: Any) -> Any? {
        var cur: Any = json
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            if let o = cur as? [String: Any], let next = o[String(part)] {
                cur = next
            } else if let a = cur as? [Any], let i = Int(part), a.indices.contains(i) {
                cur = a[i]
            } else {
                return nil
            }
        }
        return cur is NSNull ? nil : cur
    }

    /// One GET: never throws; a failed request is an observation with a problem.
    package func poll(client: HTTPClient, url: URL? = nil) -> Observation {
        let url = url ?? self.url
        var headerFields = ["Accept": "application/json", "Cache-Control": "no-cache"]
        for h in headers { headerFields[h.name] = h.value }
        do {
            let response = try client.send(HTTPRequest(method: "GET", url: url, headers: headerFields))
            let body = try response.readBody(limit: 4 << 20, what: "answer from \(url.absoluteString)")
            return Self.observe(status: response.status, body: Data(body), fields: fields, expected: expected)
        } catch {
            let reason = (error as? TransportError)?.message ?? (error as? ImprintError)?.message ?? "\(error)"
            return Observation(status: nil, field: nil, value: nil, problem: "no answer: " + reason,
                               matches: false, digestMatches: false, instance: nil, started: nil)
        }
    }

    /// How a wait ended.
    package enum Outcome: Sendable, ExitStatusReporting {
        /// Every URL served the expected digest, `consecutive` times in a row (and `instances` distinct instances).
        case complete(polls: Int, seconds: Double, last: Observation)
        /// `timeout` passed first; `last` is what the final poll saw.
        case timedOut(polls: Int, seconds: Double, last: Observation)

        package var exitStatus: Int32 {
            if case .complete = self { return 0 }
            return 1
        }
    }

    /// One instance as the polls saw it, for the table.
    package struct InstanceState: Sendable {
        package var instance: String
        package var url: URL
        /// Whether its last answer showed the expected code.
        package var current: Bool = false
        package var digest: String?
        package var started: String?
        package var lastSeen: Double
        package var answers: Int
            package init(instance: String, url: URL, current: Bool = false, digest: String? = nil, started: String? = nil, lastSeen: Double, answers: Int) {
            self.instance = instance; self.url = url; self.current = current; self.digest = digest; self.started = started; self.lastSeen = lastSeen; self.answers = answers
        }
}

    /// The recent answers a rollout is judged on: per URL at least `consecutive`, and when more than one instance
    /// answered so far (or was asked for), three per instance, so that every instance behind a balancer has had its
    /// turns.
    package func window(_ history: [(url: URL, observation: Observation)]) -> Int {
        let n = max(instances ?? 1, Set(history.map { $0.observation.instance ?? "" }).count)
        return max(consecutive, n > 1 ? 3 * n : 1) * urls.count
    }

    /// Whether the recent answers settle the rollout: every answer in the window matches (no instance on other
    /// code answered in it), per URL the last `consecutive` answers match, and with `instances`, that many distinct
    /// instances answered in the window.
    package func settled(_ history: [(url: URL, observation: Observation)]) -> Bool {
        let w = window(history)
        guard history.count >= w else { return false }
        let recent = history.suffix(w)
        guard recent.allSatisfy(\.observation.matches) else { return false }
        for u in urls {
            let mine = history.filter { $0.url == u }.map(\.observation)
            guard mine.count >= consecutive, mine.suffix(consecutive).allSatisfy(\.matches) else { return false }
        }
        if let instances {
            return Set(recent.compactMap(\.observation.instance)).count >= instances
        }
        return true
    }

    /// Polls every URL each `interval` seconds until the rollout is settled or `timeout` seconds have passed.
    /// - Parameter progress: called after each poll with its number (from 1), the seconds since the start, the URL
    ///   and what it saw.
    package func run(progress: (Int, Double, URL, Observation) -> Void = { _, _, _, _ in }) -> (Outcome, [InstanceState]) {
        let start = Date()
        func elapsed() -> Double { Date().timeIntervalSince(start) }
        var polls = 0
        var history: [(url: URL, observation: Observation)] = []
        var table: [String: InstanceState] = [:]
        var last = Observation(status: nil, field: nil, value: nil, problem: "no poll yet", matches: false, digestMatches: false, instance: nil, started: nil)
        while true {
            for u in urls {
                polls += 1
                // A fresh connection per poll, so a load balancer may route each to another instance. A hung server
                // must not hold the gate past its deadline by much: at most 30 s, at least 1 s.
                let requestTimeout = min(30, max(1, timeout - elapsed()))
                var config = HTTPClient.Configuration()
                config.idleTimeout = requestTimeout
                config.requestTimeout = requestTimeout
                config.maxRedirects = 5
                let o = poll(client: HTTPClient(config), url: u)
                last = o
                let t = elapsed()
                history.append((u, o))
                if history.count > 10_000 { history.removeFirst(history.count - 10_000) }
                let key = o.instance ?? (urls.count > 1 ? u.absoluteString : "(unidentified)")
                var state = table[key] ?? InstanceState(instance: key, url: u, digest: nil, started: nil, lastSeen: t, answers: 0)
                state.digest = o.value.flatMap { RolloutWait.normalise($0)?.prefixed ?? $0 } ?? state.digest
                state.current = o.matches
                state.started = o.started ?? state.started
                state.lastSeen = t
                state.answers += 1
                table[key] = state
                progress(polls, t, u, o)
            }
            let t = elapsed()
            let instances = table.values.sorted { $0.instance < $1.instance }
            if settled(history) { return (.complete(polls: polls, seconds: t, last: last), instances) }
            if t >= timeout { return (.timedOut(polls: polls, seconds: t, last: last), instances) }
            let pause = min(interval, timeout - t)
            if pause > 0 { usleep(UInt32(min(pause, 3600) * 1_000_000)) }
        }
    }
}

/// What `imprint wait` prints: one line per poll (stderr), the outcome and the instance table (stdout).
package enum RolloutWaitFormat {
    /// `poll N at T s [URL] [instance]: observation (why it is or is not the one)`.
    package static func pollLine(_ n: Int, at t: Double, url: URL, _ o: RolloutWait.Observation, gate: RolloutWait) -> String {
        let note = o.matches ? " (expected)" : (o.digestMatches ? " (expected digest, but not a 2xx status)"
                                                : (o.value != nil ? " (waiting for \(gate.expected))" : ""))
        let from = gate.urls.count > 1 ? " \(url.absoluteString)" : ""
        let who = o.instance.map { " [\($0)]" } ?? ""
        return "poll \(n) at \(seconds(t))\(from)\(who): \(o)\(note)"
    }

    /// The outcome line and, when instances answered, their table.
    package static func outcome(_ outcome: RolloutWait.Outcome, table: [RolloutWait.InstanceState], gate: RolloutWait) -> String {
        let place = gate.urls.count == 1 ? gate.url.absoluteString : "\(gate.urls.count) URLs"
        var out: String
        switch outcome {
        case let .complete(polls, t, last):
            out = "rollout complete: \(place) serves \(gate.expected), after \(polls) poll\(polls == 1 ? "" : "s"), \(seconds(t))\n"
            if last.codeJudged {
                out += "  judged: the code every probed process loaded (\(last.processes) process\(last.processes == 1 ? "" : "es") in the last answer)\n"
            } else {
                out += "  trusted: the application's own claim of its digest; serve the probe's evidence (imprint probe python) to have the loaded code judged\n"
            }
            if gate.instances == nil && table.count > 1 {
                out += "  \(table.count) instances answered; pass --instances \(table.count) to require each of them\n"
            }
        case let .timedOut(polls, t, last):
            out = "timed out after \(seconds(t)): last seen \(last) from \(place), expected \(gate.expected) (\(polls) poll\(polls == 1 ? "" : "s"))\n"
        }
        guard !table.isEmpty else { return out }
        func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: n, withPad: " ", startingAt: 0) }
        // The instance in full: what tells two apart (a pid, a start time) is often at its end.
        let width = max(32, table.map(\.instance.count).max() ?? 0)
        out += "  \(pad("instance", width))  code      digest         started                         last seen  answers\n"
        for s in table {
            let digest = s.digest.map { $0.hasPrefix("sha256:") ? String($0.dropFirst(7).prefix(12)) : String($0.prefix(12)) } ?? "-"
            out += "  \(pad(s.instance, width))  \(pad(s.current ? "expected" : "OTHER", 8))  \(pad(digest, 13))  \(pad(s.started ?? "-", 30))  \(pad(seconds(s.lastSeen), 9))  \(s.answers)\n"
        }
        return out
    }

    package static func seconds(_ t: Double) -> String { String(format: "%.1f s", t) }
}

/// How a rollout gate that verifies every round (`wait URL --served`, `wait compose:…`) ended: the last round's
/// report, and whether it was complete before the timeout.
package struct WaitResult<Report>: ExitStatusReporting {
    package var report: Report
    package var complete: Bool
    package var rounds: Int
    package var seconds: Double

    package init(report: Report, complete: Bool, rounds: Int, seconds: Double) {
        (self.report, self.complete, self.rounds, self.seconds) = (report, complete, rounds, seconds)
    }

    package var exitStatus: Int32 { Self.status(ok: complete) }
}
