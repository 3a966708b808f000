import Foundation
import Testing
@testable import ImprintCore

@Suite struct RolloutWaitTests {
    static let want = SHA256.hash(Array("new".utf8))

    @Test(arguments: [
        ("sha256:" + want.hex, true), (want.hex, true), (want.hex.uppercased(), true), ("SHA256:" + want.hex, true),
        ("  sha256:\(want.hex)\n", true), (String(want.hex.dropLast()), false), ("sha512:" + want.hex, false), ("", false),
    ])
    func digestsAreNormalised(text: String, ok: Bool) {
        #expect((RolloutWait.normalise(text) == Self.want) == ok)
    }

    @Test(arguments: [
        // status, body, fields, matches, description
        (200, #"{"imprint":{"digest":"sha256:\#(want.hex)"}}"#, RolloutWait.defaultFields, true, "HTTP 200, imprint.digest sha256:\(want.hex)"),
        (200, #"{"digest":"\#(want.hex.uppercased())"}"#, RolloutWait.defaultFields, true, "HTTP 200, digest sha256:\(want.hex)"),
        (503, #"{"imprint":{"digest":"\#(want.hex)"}}"#, RolloutWait.defaultFields, false, "HTTP 503, imprint.digest sha256:\(want.hex)"),
        (200, #"{"imprint":{"digest":"v1.2"}}"#, RolloutWait.defaultFields, false, "HTTP 200, imprint.digest v1.2"),
        (200, #"{"status":"ok"}"#, RolloutWait.defaultFields, false, "HTTP 200, no field imprint.digest or digest or manifest.digest or imprint.manifest.digest"),
        (200, #"{"imprint":{"digest":7}}"#, RolloutWait.defaultFields, false, "HTTP 200, field imprint.digest is not a string"),
        (200, #"{"imprint":{"digest":null}}"#, ["imprint.digest"], false, "HTTP 200, no field imprint.digest"),
        (200, "<html>", RolloutWait.defaultFields, false, "HTTP 200, body is not JSON"),
        (204, "", RolloutWait.defaultFields, false, "HTTP 204, empty body"),
        (200, #"{"a":[{"b":"\#(want.hex)"}]}"#, ["a.0.b"], true, "HTTP 200, a.0.b sha256:\(want.hex)"),
        (200, #"{"a":[{"b":"\#(want.hex)"}]}"#, ["a.1.b"], false, "HTTP 200, no field a.1.b"),
    ])
    func answersAreJudged(status: Int, body: String, fields: [String], matches: Bool, description: String) {
        let o = RolloutWait.observe(status: status, body: Data(body.utf8), fields: fields, expected: Self.want)
        #expect(o.matches == matches)
        #expect(o.description == description)
    }

    @Test func headersParseLikeCurl() throws {
        let h = try RolloutWait.Header(parsing: "Authorization:  Bearer a:b ")
        #expect(h == (try RolloutWait.Header(parsing: "Authorization:Bearer a:b")))
        #expect(h.name == "Authorization" && h.value == "Bearer a:b")
        for bad in ["nocolon", ": value", "Bad Name: x"] {
            #expect(throws: ImprintError.self) { try RolloutWait.Header(parsing: bad) }
        }
    }

    @Test func argumentsAreValidated() throws {
        let w = try RolloutWait(url: "http://127.0.0.1:8080/healthz", expect: Self.want.hex.uppercased())
        #expect(w.expected == Self.want)
        #expect(w.fields == RolloutWait.defaultFields)
        #expect(w.interval == 2 && w.timeout == 300)
        #expect(try RolloutWait(url: "https://h/x", expect: Self.want.prefixed, field: "x.y").fields == ["x.y"])
        for (url, expect, field, interval, timeout) in [
            ("file:///etc/passwd", Self.want.prefixed, nil, 2.0, 300.0), ("http://", Self.want.prefixed, nil, 2, 300),
            ("http://h/", "sha256:12", nil, 2, 300), ("http://h/", Self.want.prefixed, "", 2, 300),
            ("http://h/", Self.want.prefixed, ".a", 2, 300), ("http://h/", Self.want.prefixed, nil, 0, 300),
            ("http://h/", Self.want.prefixed, nil, .nan, 300), ("http://h/", Self.want.prefixed, nil, 2, -1),
        ] as [(String, String, String?, Double, Double)] {
            #expect(throws: ImprintError.self) {
                try RolloutWait(url: url, expect: expect, field: field, interval: interval, timeout: timeout)
            }
        }
    }
}

extension RolloutWaitTests {
    static func answer(_ instance: String, matches: Bool) -> RolloutWait.Observation {
        RolloutWait.Observation(status: 200, field: "imprint.digest", value: matches ? want.prefixed : "sha256:" + String(repeating: "0", count: 64),
                                problem: nil, matches: matches, digestMatches: matches, instance: instance, started: nil)
    }

    /// Four replicas behind a round-robin, one still old: K answers in a row from new replicas are no proof, and
    /// the gate never settles while the old one answers in the window.
    @Test func anOldReplicaBehindARoundRobinKeepsTheGateWaiting() throws {
        let gate = try RolloutWait(urls: ["http://lb/healthz"], expect: Self.want.prefixed, consecutive: 4)
        var history: [(url: URL, observation: RolloutWait.Observation)] = []
        for round in 0..<50 {
            for r in 0..<4 { history.append((gate.url, Self.answer("replica-\(r)", matches: r != 3))) }
            #expect(!gate.settled(history), "settled in round \(round) with replica-3 old")
        }
        // Once the last replica is new too, the window of three answers per instance settles it.
        for _ in 0..<3 { for r in 0..<4 { history.append((gate.url, Self.answer("replica-\(r)", matches: true))) } }
        #expect(gate.settled(history))
        // A single instance that answers with the expected code settles after `consecutive` answers.
        let single = try RolloutWait(urls: ["http://one/healthz"], expect: Self.want.prefixed)
        #expect(single.settled([(single.url, Self.answer("only", matches: true))]))
    }

    /// The probe's evidence: every process it lists is judged, so one old gunicorn worker fails the answer whichever
    /// worker served it; a sourceless module is old code too.
    @Test func probeEvidenceIsJudgedForEveryProcess() throws {
        func process(_ pid: Int, _ sha: String, origin: String = "source") -> String {
            #"{"probe":"imprint-probe/1","pid":\#(pid),"instance":"i\#(pid)","hostname":"web","started":1,"startedAt":"t","python":"3.11.2","root":"/app","manifest":{"path":"/app/.imprint/manifest.json","digest":"\#(Self.want.prefixed)"},"modules":[{"module":"app","path":"app.py","loadedFrom":"\#(origin)","sha256":"\#(sha)","manifestSha256":"aa"}]}"#
        }
        let good = process(7, "aa"), old = process(8, "bb")
        let both = #"{"probe":"imprint-probe/1","pid":7,"instance":"i7","hostname":"web","started":1,"startedAt":"t","python":"3.11.2","root":"/app","manifest":{"path":"m","digest":"\#(Self.want.prefixed)"},"modules":[],"processes":[\#(good),\#(old)]}"#
        let o = RolloutWait.observe(status: 200, body: Data(both.utf8), fields: RolloutWait.defaultFields, expected: Self.want)
        #expect(o.codeJudged && o.processes == 2 && !o.matches)
        #expect(o.problem?.contains("stale-module") == true, "\(o.problem ?? "")")
        let fine = RolloutWait.observe(status: 200, body: Data(good.utf8), fields: RolloutWait.defaultFields, expected: Self.want)
        #expect(fine.codeJudged && fine.matches, "\(fine)")
        let sourceless = RolloutWait.observe(status: 200, body: Data(process(9, "aa", origin: "sourceless").utf8), fields: RolloutWait.defaultFields, expected: Self.want)
        #expect(!sourceless.matches && sourceless.problem?.contains("sourceless-module") == true)
    }
}
