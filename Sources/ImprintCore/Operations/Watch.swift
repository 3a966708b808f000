import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Continuous verification (`imprint watch`): the targets verified again every interval, cheaply — files whose
/// device, inode, size, mtime and ctime are unchanged are not read again (`DigestCache`), and every `fullEvery`
/// rounds everything is re-hashed — with the results as Prometheus metrics.
package final class Watcher {
    package let targets: [String]
    /// The request each target's verification starts from (expect, manifest, at, processes...).
    package var base: VerifyRequest
    /// For fleet targets: manifests by service.
    package var manifests: [String: String] = [:]
    /// Re-hash every file every this many rounds (1: every round).
    package var fullEvery: Int
    package let cache = DigestCache()
    package let manifestCache = ManifestCache()
    package private(set) var rounds = 0

    /// One container's (or target's) result in a round.
    package struct Result: Sendable {
        package var target: String
        package var container: String
        package var service: String
        package var pod: String
        /// Nil when it could not be judged (not running, an error).
        package var verified: Bool?
        /// Error and warning findings by class (`modified`, `stale-process`...) and severity.
        package var findings: [String: Int]
        package var problem: String?
    }

    /// What one round saw.
    package struct Round: Sendable {
        package var index: Int
        package var finished: Double
        package var seconds: Double
        package var results: [Result]
        package var filesRemembered: Int
    }

    package init(targets: [String], base: VerifyRequest, fullEvery: Int = 10) {
        self.targets = targets
        self.base = base
        self.fullEvery = max(1, fullEvery)
    }

    /// Verifies every target once.
    package func round() -> Round {
        rounds += 1
        if rounds > 1 && (rounds - 1) % fullEvery == 0 { cache.removeAll() }
        let start = Date()
        var results: [Result] = []
        for t in targets {
            var request = base
            request.target = t
            request.digestCache = cache
            request.manifestCache = manifestCache
            if FleetVerification.isFleet(t) {
                var fleet = FleetVerification(base: request)
                fleet.manifests = manifests
                do {
                    for row in try fleet.run(t).rows {
                        results.append(Self.result(t, container: row.member.name, service: row.member.service, pod: row.member.pod ?? "",
                                                   report: row.report, problem: row.problem))
                    }
                } catch {
                    results.append(Self.result(t, container: "", service: "", pod: "", report: nil, problem: Self.message(error)))
                }
            } else {
                let name = LiveSource.isLive(t) ? String(t.drop { $0 != ":" }.dropFirst()) : t
                do {
                    results.append(Self.result(t, container: name, service: "", pod: "", report: try request.run(), problem: nil))
                } catch {
                    results.append(Self.result(t, container: name, service: "", pod: "", report: nil, problem: Self.message(error)))
                }
            }
        }
        return Round(index: rounds, finished: Date().timeIntervalSince1970, seconds: Date().timeIntervalSince(start),
                     results: results, filesRemembered: cache.count)
    }

    static func message(_ error: Error) -> String { (error as? ImprintError)?.message ?? "\(error)" }

    static func result(_ target: String, container: String, service: String, pod: String, report: VerifyReport?, problem: String?) -> Result {
        var counts: [String: Int] = [:]
        for f in report?.findings ?? [] where f.severity != .info {
            counts["\(f.detail ?? f.findingClass.rawValue)\t\(f.severity.rawValue)", default: 0] += 1
        }
        return Result(target: target, container: container, service: service, pod: pod,
                      verified: report.map { $0.verdict == .verified }, findings: counts, problem: problem)
    }

    /// The Prometheus text exposition (format 0.0.4) of a round.
    package static func prometheus(_ round: Round) -> String {
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
        }
        func labels(_ r: Result, _ extra: String = "") -> String {
            "{target=\"\(esc(r.target))\",container=\"\(esc(r.container))\",service=\"\(esc(r.service))\",pod=\"\(esc(r.pod))\"\(extra)}"
        }
        var out = "# HELP imprint_verified 1 when the container's files, processes and loaded code are the build's, 0 when not, -1 when it could not be judged.\n"
        out += "# TYPE imprint_verified gauge\n"
        for r in round.results { out += "imprint_verified\(labels(r)) \(r.verified.map { $0 ? 1 : 0 } ?? -1)\n" }
        out += "# HELP imprint_findings Findings of the last round, by class and severity.\n# TYPE imprint_findings gauge\n"
        for r in round.results {
            for (key, n) in r.findings.sorted(by: { $0.key < $1.key }) {
                let parts = key.split(separator: "\t", maxSplits: 1).map(String.init)
                let extra = ",class=\"\(esc(parts[0]))\",severity=\"\(esc(parts.count > 1 ? parts[1] : ""))\""
                out += "imprint_findings\(labels(r, extra)) \(n)\n"
            }
        }
        out += "# HELP imprint_last_verified_timestamp_seconds When the last round finished.\n# TYPE imprint_last_verified_timestamp_seconds gauge\n"
        out += "imprint_last_verified_timestamp_seconds \(String(format: "%.3f", round.finished))\n"
        out += "# HELP imprint_verify_duration_seconds How long the last round took.\n# TYPE imprint_verify_duration_seconds gauge\n"
        out += "imprint_verify_duration_seconds \(String(format: "%.6f", round.seconds))\n"
        out += "# HELP imprint_rounds_total Rounds of verification since the watch started.\n# TYPE imprint_rounds_total counter\n"
        out += "imprint_rounds_total \(round.index)\n"
        out += "# HELP imprint_files_remembered Files whose digest is remembered between rounds.\n# TYPE imprint_files_remembered gauge\n"
        out += "imprint_files_remembered \(round.filesRemembered)\n"
        return out
    }

    /// One line per round for the log.
    package static func line(_ round: Round) -> String {
        let ok = round.results.filter { $0.verified == true }.count
        let bad = round.results.filter { $0.verified != true }.map { r in
            r.container.isEmpty ? r.target : r.container
        }
        return String(format: "round %d: %d of %d verified in %.2f s", round.index, ok, round.results.count, round.seconds)
            + (bad.isEmpty ? "" : "; not verified: " + bad.joined(separator: ", "))
    }
}

/// A minimal HTTP/1.1 server for Prometheus to scrape: `GET /metrics` answers the latest text, anything else 404.
/// One connection at a time, each closed after its answer.
package final class MetricsServer: @unchecked Sendable {  // why: `body` is guarded by its Mutex; the fd is set once
    private let fd: Int32
    private let body = Mutex<String>("")
    package let port: Int

    /// Listens on `address` (`HOST:PORT`, an IPv4 address; port 0 picks a free one).
    /// - Throws: `badInput` for a malformed address, `failure` when it cannot listen.
    package init(address: String) throws {
        guard let colon = address.lastIndex(of: ":"), let p = UInt16(address[address.index(after: colon)...]) else {
            throw ImprintError.badInput("--metrics \(address): expected HOST:PORT, e.g. 127.0.0.1:9464")
        }
        var host = String(address[..<colon])
        if host.isEmpty { host = "0.0.0.0" }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = p.bigEndian
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else { throw ImprintError.badInput("--metrics \(address): \(host) is not an IPv4 address") }
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw ImprintError.posix("create a socket for", address) }
        var one: Int32 = 1
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(s, 16) == 0 else {
            let e = errno
            close(s)
            throw ImprintError(.failure, "cannot listen on \(address): \(String(cString: strerror(e)))")
        }
        var actual = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        fd = s
        port = Int(UInt16(bigEndian: actual.sin_port))
        let server = UnsafeTransfer(self)
        Thread.detachNewThread { server.value.serve() }
    }

    /// The text the next scrape gets.
    package func update(_ text: String) { body.withLock { $0 = text } }

    private func serve() {
        while true {
            let c = Syscall.accept(fd)
            if c < 0 { if errno == ECONNABORTED { continue }; return }
            var tv = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var request: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 4096)
            while request.count < 16 << 10 {
                let n = buf.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                request += buf[0..<n]
                if request.count >= 4, request.suffix(4) == [13, 10, 13, 10] { break }
            }
            let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
            let isMetrics = line.hasPrefix("GET /metrics ") || line.hasPrefix("GET /metrics?") || line == "GET /metrics"
            let text = isMetrics ? body.withLock { $0 } : "not found\n"
            let payload = Array(text.utf8)
            let head = "HTTP/1.1 \(isMetrics ? "200 OK" : "404 Not Found")\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: \(payload.count)\r\nConnection: close\r\n\r\n"
            _ = Console.writeAll(c, Array(head.utf8) + payload)
            close(c)
        }
    }
}
