import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// HTTP/1.1 over POSIX sockets and OpenSSL's libssl: what imprint needs to talk to registries, rollout endpoints and
/// a container engine's API, with nothing below it that can trap.
///
/// - TLS: peer verification against the system CA bundle (or `SSL_CERT_FILE`/`SSL_CERT_DIR`), SNI, host name or
///   IP address checks, TLS 1.2 or later.
/// - Proxies: `HTTPS_PROXY`/`HTTP_PROXY` (`CONNECT` tunnels for HTTPS), `NO_PROXY`; loopback is never proxied.
/// - Redirects (up to 10), with `Authorization` dropped when the redirect leaves the origin.
/// - Bodies framed by `Content-Length`, chunked transfer coding or the end of the connection; every framing error
///   is reported, never taken as the end of the body.
/// - Keep-alive: idle connections are reused per origin.
/// - Limits: an idle timeout per wait, a total deadline per request, the command's overall deadline; a timeout
///   names the limit it hit.
package final class HTTPClient: HTTPTransport, @unchecked Sendable {
    // why @unchecked: the only mutable state, the idle-connection pool, is guarded by `lock`.
    package struct Configuration: Sendable {
        /// Seconds to wait for the next bytes.
        package var idleTimeout: Double = 30
        /// Seconds one request may take in all, body included.
        package var requestTimeout: Double = 600
        /// When the command must be done, if ever, and its length in seconds (for messages).
        package var commandDeadline: (Deadline, Double)?
        package var maxRedirects = 10
        /// Connect to this unix socket instead of the URL's host (a container engine's API).
        package var unixSocket: String?
        package var environment: [String: String] = ProcessInfo.processInfo.environment
        /// Largest status line plus headers accepted.
        package var maxHeaderBytes = 64 << 10
        package init() {}
    }

    package let configuration: Configuration
    private let lock = NSLock()
    private var idle: [String: [Connection]] = [:]
    private var tlsContext: TLSContext?

    package init(_ configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    package func limits() -> HTTPLimits {
        HTTPLimits(idle: configuration.idleTimeout, request: .after(configuration.requestTimeout),
                   requestSeconds: configuration.requestTimeout, command: configuration.commandDeadline?.0,
                   commandSeconds: configuration.commandDeadline?.1)
    }

    private func tls() throws -> TLSContext {
        lock.lock(); defer { lock.unlock() }
        if let tlsContext { return tlsContext }
        let c = try TLSContext(environment: configuration.environment)
        tlsContext = c
        return c
    }

    // MARK: Sending

    /// Sends `request`, following redirects, and returns once the status line and headers of the final answer
    /// have arrived; the body streams from `response.body` within the same limits.
    /// - Throws: `TransportError` naming the host that failed and what happened.
    package func send(_ request: HTTPRequest) throws -> HTTPResponse {
        let limits = limits()
        var current = request
        var hops: [String] = []
        while true {
            let response = try exchange(current, limits: limits, hops: hops)
            guard [301, 302, 303, 307, 308].contains(response.status), let location = response.header("Location") else {
                return response
            }
            response.discard()
            guard hops.count < configuration.maxRedirects else {
                throw TransportError(.other, "\(HTTPClient.origin(current.url)): more than \(configuration.maxRedirects) redirects (a redirect loop?)")
            }
            guard let next = URL(string: location, relativeTo: current.url)?.absoluteURL, let scheme = next.scheme?.lowercased(),
                  scheme == "http" || scheme == "https", next.host != nil else {
                throw TransportError(.other, "\(HTTPClient.origin(current.url)): redirect to an invalid location \"\(location.prefix(200))\"")
            }
            hops.append(HTTPClient.origin(current.url))
            var headers = current.headers
            if HTTPClient.origin(next) != HTTPClient.origin(current.url) || next.scheme != current.url.scheme {
                // Blob storage on another host must not see the registry's credentials.
                headers = headers.filter { $0.key.lowercased() != "authorization" }
            }
            if response.status == 303 || ((response.status == 301 || response.status == 302) && current.method == "POST") {
                current = HTTPRequest(method: "GET", url: next, headers: headers.filter { $0.key.lowercased() != "content-length" && $0.key.lowercased() != "content-type" })
            } else {
                current = HTTPRequest(method: current.method, url: next, headers: headers, body: current.body)
            }
        }
    }

    /// `host:port` of a URL.
    package static func origin(_ url: URL) -> String {
        let host = url.host ?? "?"
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(h):\(url.port ?? (url.scheme?.lowercased() == "https" ? 443 : 80))"
    }

    /// One request on one connection (a pooled one when available, retried once on a fresh connection if a pooled
    /// one turns out to be closed).
    private func exchange(_ request: HTTPRequest, limits: HTTPLimits, hops: [String]) throws -> HTTPResponse {
        let via = hops.first.map { " (redirected from \($0))" } ?? ""
        for attempt in 0..<2 {
            let (conn, pooled) = try connection(for: request.url, limits: limits, via: via)
            do {
                try writeRequest(request, on: conn, limits: limits)
                return try readResponse(request, on: conn, limits: limits, via: via)
            } catch let e as TransportError where pooled && attempt == 0 && e.kind == .interrupted && e.beforeResponse {
                conn.close()
                continue
            }
        }
        throw TransportError(.interrupted, "\(HTTPClient.origin(request.url)): connection lost")  // not reached
    }

    private func poolKey(_ url: URL) -> String {
        (configuration.unixSocket.map { "unix:" + $0 } ?? "") + (url.scheme ?? "") + "://" + HTTPClient.origin(url)
    }

    private func connection(for url: URL, limits: HTTPLimits, via: String) throws -> (Connection, Bool) {
        let key = poolKey(url)
        lock.lock()
        while var list = idle[key], let c = list.popLast() {
            idle[key] = list
            lock.unlock()
            if !c.looksClosed { return (c, true) }
            c.close()
            lock.lock()
        }
        lock.unlock()
        do {
            return (try open(url, limits: limits), false)
        } catch var e as TransportError {
            e.message += via
            throw e
        }
    }

    private func open(_ url: URL, limits: HTTPLimits) throws -> Connection {
        if let path = configuration.unixSocket { return try Connection.unix(path: path, limits: limits) }
        guard let host = url.host, !host.isEmpty else { throw TransportError(.other, "no host in \(url.absoluteString)") }
        let https = url.scheme?.lowercased() == "https"
        let port = url.port ?? (https ? 443 : 80)
        if let proxy = ProxySettings(environment: configuration.environment).proxy(for: url) {
            let conn = try Connection.tcp(host: proxy.host, port: proxy.port, limits: limits)
            if https {
                try tunnel(conn, to: host, port: port, proxy: proxy, limits: limits)
                try conn.startTLS(context: try tls(), host: host, limits: limits)
            } else {
                conn.proxied = proxy
            }
            return conn
        }
        let conn = try Connection.tcp(host: host, port: port, limits: limits)
        if https { try conn.startTLS(context: try tls(), host: host, limits: limits) }
        return conn
    }

    /// `CONNECT host:port` through an HTTP proxy.
    private func tunnel(_ conn: Connection, to host: String, port: Int, proxy: ProxySettings.Proxy, limits: HTTPLimits) throws {
        let target = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        var head = "CONNECT \(target) HTTP/1.1\r\nHost: \(target)\r\n"
        if let auth = proxy.authorization { head += "Proxy-Authorization: \(auth)\r\n" }
        head += "\r\n"
        try Array(head.utf8).withUnsafeBytes { try conn.write($0, limits: limits) }
        let reader = HeadReader(conn: conn, limits: limits, maxBytes: configuration.maxHeaderBytes, what: "proxy \(proxy.host):\(proxy.port)")
        let (status, _, _) = try reader.readHead()
        guard (200..<300).contains(status) else {
            throw TransportError(.other, "proxy \(proxy.host):\(proxy.port) refused to connect to \(target) (\(status))")
        }
        guard reader.leftover.isEmpty else { throw TransportError(.other, "proxy \(proxy.host):\(proxy.port) sent data before the tunnel was up") }
    }

    private func writeRequest(_ request: HTTPRequest, on conn: Connection, limits: HTTPLimits) throws {
        let url = request.url
        var target = url.path.isEmpty ? "/" : url.path
        // URL.path decodes percent-escapes; send the path as it was written.
        if let c = URLComponents(url: url, resolvingAgainstBaseURL: false) {
            target = c.percentEncodedPath.isEmpty ? "/" : c.percentEncodedPath
            if let q = c.percentEncodedQuery { target += "?" + q }
        }
        var extraHead = ""
        if let proxy = conn.proxied {
            target = "\(url.scheme ?? "http")://\(HTTPClient.origin(url))\(target)"
            if let auth = proxy.authorization { extraHead = "Proxy-Authorization: \(auth)\r\n" }
        }
        var head = "\(request.method) \(target) HTTP/1.1\r\n"
        var names = Set<String>()
        for (k, v) in request.headers.sorted(by: { $0.key < $1.key }) {
            guard !k.contains(where: { $0 == "\r" || $0 == "\n" || $0 == ":" }), !v.contains(where: { $0 == "\r" || $0 == "\n" }) else {
                throw TransportError(.other, "invalid header \(k.prefix(40))")
            }
            names.insert(k.lowercased())
            head += "\(k): \(v)\r\n"
        }
        if !names.contains("host") {
            let host = url.host ?? "localhost"
            let h = host.contains(":") ? "[\(host)]" : host
            head += "Host: \(h)\(url.port.map { ":\($0)" } ?? "")\r\n"
        }
        if !names.contains("user-agent") { head += "User-Agent: imprint/\(Imprint.version)\r\n" }
        if !names.contains("accept-encoding") { head += "Accept-Encoding: identity\r\n" }
        head += extraHead
        if let body = request.body, !names.contains("content-length") { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        var bytes = Array(head.utf8)
        if let body = request.body { bytes += body }
        try bytes.withUnsafeBytes { try conn.write($0, limits: limits) }
    }

    package func readResponse(_ request: HTTPRequest, on conn: Connection, limits: HTTPLimits, via: String) throws -> HTTPResponse {
        let what = "\(conn.peer)\(via)"
        let reader = HeadReader(conn: conn, limits: limits, maxBytes: configuration.maxHeaderBytes, what: what)
        var (status, headers, closeAfter) = try reader.readHead()
        while (100..<200).contains(status) && status != 101 {
            (status, headers, closeAfter) = try reader.readHead()
        }
        var lower: [String: String] = [:]
        for (k, v) in headers { lower[k] = v }
        let body: ResponseBody
        let noBody = request.method == "HEAD" || status == 204 || status == 304
        if noBody {
            body = ResponseBody(reader: reader, framing: .length(0), what: what, client: self, key: poolKey(request.url), closeAfter: closeAfter)
        } else if let te = lower["transfer-encoding"] {
            guard te.lowercased().split(separator: ",").last.map({ $0.trimmingCharacters(in: .whitespaces) }) == "chunked" else {
                throw TransportError(.other, "\(what): unsupported Transfer-Encoding \(te.prefix(60))")
            }
            body = ResponseBody(reader: reader, framing: .chunked, what: what, client: self, key: poolKey(request.url), closeAfter: closeAfter)
        } else if let cl = lower["content-length"] {
            let values = Set(cl.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            guard values.count == 1, let v = values.first, let n = UInt64(v) else {
                throw TransportError(.other, "\(what): invalid Content-Length \"\(cl.prefix(60))\"")
            }
            body = ResponseBody(reader: reader, framing: .length(n), what: what, client: self, key: poolKey(request.url), closeAfter: closeAfter)
        } else {
            body = ResponseBody(reader: reader, framing: .untilClose, what: what, client: self, key: poolKey(request.url), closeAfter: true)
        }
        var finalHeaders: [String: String] = [:]
        for (k, v) in headers { finalHeaders[k] = v }
        return HTTPResponse(status: status, headers: finalHeaders, url: request.url, body: body, cancel: { [body] in body.abandon() })
    }

    /// Puts a connection whose response was read completely back in the pool.
    fileprivate func release(_ conn: Connection, key: String) {
        lock.lock()
        var list = idle[key] ?? []
        if list.count < 4 { list.append(conn); idle[key] = list; lock.unlock(); return }
        lock.unlock()
        conn.close()
    }
}

extension TransportError {
    /// True when nothing of the response had arrived (safe to retry on a fresh connection).
    package var beforeResponse: Bool { message.hasSuffix(HeadReader.nothingYet) }
}

// MARK: Reading the head

/// Reads a response's status line and header fields, keeping whatever body bytes arrived with them.
package final class HeadReader {
    package static let nothingYet = "closed before answering"
    package let conn: Connection
    package let limits: HTTPLimits
    package let maxBytes: Int
    package let what: String
    /// Bytes read past the head (the start of the body).
    package var leftover: [UInt8] = []

    package init(conn: Connection, limits: HTTPLimits, maxBytes: Int, what: String) {
        self.conn = conn; self.limits = limits; self.maxBytes = maxBytes; self.what = what
    }

    /// - Returns: the status, the header fields (names lower-cased, repeated fields joined with ", "), and whether
    ///   the server asked to close the connection.
    package func readHead() throws -> (Int, [(String, String)], Bool) {
        var buf = leftover
        leftover = []
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        var end: Int?
        var searchFrom = 0
        while true {
            if let e = HeadReader.findEnd(buf, from: searchFrom) { end = e; break }
            searchFrom = max(0, buf.count - 3)
            if buf.count > maxBytes {
                throw TransportError(.other, "\(what): response headers larger than \(maxBytes >> 10) KiB")
            }
            let n = try chunk.withUnsafeMutableBytes { try conn.read(into: $0, limits: limits, what: "\(what): waiting for the response") }
            if n == 0 {
                if buf.isEmpty { throw TransportError(.interrupted, "\(what): connection \(HeadReader.nothingYet)") }
                let lines = buf.split(separator: 0x0A, omittingEmptySubsequences: false).count - 1
                let first = buf.prefix { $0 != 0x0D && $0 != 0x0A }
                throw TransportError(.interrupted, "\(what): connection closed in the middle of the response headers (after \(buf.count) bytes, \(lines) lines; status line \"\(String(decoding: first.prefix(80), as: UTF8.self))\")")
            }
            buf += chunk[0..<n]
        }
        let headEnd = end!
        leftover = Array(buf[headEnd...])
        let head = buf[..<headEnd]
        var lines = head.split(separator: 0x0A, omittingEmptySubsequences: false).map { line -> ArraySlice<UInt8> in
            line.last == 0x0D ? line.dropLast() : line
        }
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let statusLine = lines.first else { throw TransportError(.other, "\(what): empty response") }
        let parts = statusLine.split(separator: 0x20, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].starts(with: Array("HTTP/1.".utf8)), parts[1].count == 3,
              let status = Int(String(decoding: parts[1], as: UTF8.self)), (100...599).contains(status) else {
            throw TransportError(.other, "\(what): not an HTTP response (\"\(String(decoding: statusLine.prefix(80), as: UTF8.self))\")")
        }
        var fields: [(String, String)] = []
        var index: [String: Int] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: 0x3A), colon > line.startIndex else {
                throw TransportError(.other, "\(what): malformed header line \"\(String(decoding: line.prefix(80), as: UTF8.self))\"")
            }
            let name = String(decoding: line[..<colon], as: UTF8.self).lowercased()
            guard !name.contains(where: { $0 == " " || $0 == "\t" }) else {
                throw TransportError(.other, "\(what): malformed header name \"\(name.prefix(60))\"")
            }
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingCharacters(in: .whitespaces)
            if let i = index[name] { fields[i].1 += ", " + value } else { index[name] = fields.count; fields.append((name, value)) }
        }
        let connectionHeader = fields.first { $0.0 == "connection" }?.1.lowercased() ?? ""
        let close = connectionHeader.contains("close") || parts[0].elementsEqual("HTTP/1.0".utf8) && !connectionHeader.contains("keep-alive")
        return (status, fields, close)
    }

    /// The index just past the blank line ending the head (`\r\n\r\n` or `\n\n`), or nil.
    package static func findEnd(_ b: [UInt8], from: Int) -> Int? {
        var i = from
        while i < b.count {
            if b[i] == 0x0A {
                if i + 1 < b.count && b[i + 1] == 0x0A { return i + 2 }
                if i + 2 < b.count && b[i + 1] == 0x0D && b[i + 2] == 0x0A { return i + 3 }
            }
            i += 1
        }
        return nil
    }
}

// MARK: The body

/// A response body read from its connection, checked against its framing. When it has been read to its end the
/// connection goes back to the client's pool.
package final class ResponseBody: ByteSource {
    package enum Framing { case length(UInt64), chunked, untilClose }

    private let reader: HeadReader
    private var framing: Framing
    private let what: String
    private weak var client: HTTPClient?
    private let key: String
    private let closeAfter: Bool
    private var buffer: [UInt8]
    private var bufferStart = 0
    private var delivered: UInt64 = 0
    /// Bytes left in the current chunk (chunked) or the body (length).
    private var left: UInt64 = 0
    private var finished = false

    package init(reader: HeadReader, framing: Framing, what: String, client: HTTPClient, key: String, closeAfter: Bool) {
        self.reader = reader
        self.framing = framing
        self.what = what
        self.client = client
        self.key = key
        self.closeAfter = closeAfter
        buffer = reader.leftover
        reader.leftover = []
        if case .length(let n) = framing { left = n; if n == 0 { finish() } }
    }

    deinit { if !finished { reader.conn.close() } }

    /// Stops reading: the connection cannot be reused.
    package func abandon() {
        if !finished { finished = true; reader.conn.close() }
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        if closeAfter || bufferStart < buffer.count { reader.conn.close(); return }
        client?.release(reader.conn, key: key)
    }

    private var available: Int { buffer.count - bufferStart }

    /// Reads more bytes from the connection into the buffer; false at end of stream.
    private func fill() throws -> Bool {
        if bufferStart > 0 && bufferStart == buffer.count { buffer.removeAll(keepingCapacity: true); bufferStart = 0 }
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        let n = try chunk.withUnsafeMutableBytes {
            try reader.conn.read(into: $0, limits: reader.limits, what: "\(what): receiving the body")
        }
        if n == 0 { return false }
        buffer += chunk[0..<n]
        return true
    }

    private func copyOut(_ out: UnsafeMutableRawBufferPointer, max: Int) -> Int {
        let n = Swift.min(out.count, max, available)
        buffer.withUnsafeBytes { out.baseAddress!.copyMemory(from: $0.baseAddress! + bufferStart, byteCount: n) }
        bufferStart += n
        delivered += UInt64(n)
        return n
    }

    package func read(into out: UnsafeMutableRawBufferPointer) throws -> Int {
        if out.count == 0 || finished && available == 0 { return 0 }
        switch framing {
        case .length(let total):
            if left == 0 { finish(); return 0 }
            if available == 0, try !fill() {
                throw TransportError(.interrupted, "\(what): connection closed after \(delivered) of \(total) body bytes")
            }
            let n = copyOut(out, max: Int(Swift.min(left, UInt64(Int.max))))
            left -= UInt64(n)
            if left == 0 { finish() }
            return n
        case .untilClose:
            if available == 0, try !fill() { finish(); return 0 }
            return copyOut(out, max: Int.max)
        case .chunked:
            while left == 0 {
                if finished { return 0 }
                try readChunkHeader()
                if finished { return 0 }
            }
            if available == 0, try !fill() {
                throw TransportError(.interrupted, "\(what): connection closed inside a chunk after \(delivered) body bytes")
            }
            let n = copyOut(out, max: Int(Swift.min(left, UInt64(Int.max))))
            left -= UInt64(n)
            if left == 0 { try expectCRLF() }
            return n
        }
    }

    /// One line of the chunked coding (without its line end).
    private func readLine(limit: Int = 4096) throws -> ArraySlice<UInt8> {
        while true {
            if let nl = buffer[bufferStart...].firstIndex(of: 0x0A) {
                var line = buffer[bufferStart..<nl]
                bufferStart = nl + 1
                if line.last == 0x0D { line = line.dropLast() }
                return line
            }
            if available > limit { throw malformed("a chunk line longer than \(limit) bytes") }
            if try !fill() { throw TransportError(.interrupted, "\(what): connection closed inside the chunked body after \(delivered) bytes") }
        }
    }

    private func expectCRLF() throws {
        let line = try readLine(limit: 2)
        guard line.isEmpty else { throw malformed("no line end after a chunk") }
    }

    private func readChunkHeader() throws {
        let line = try readLine()
        let sizeText = line.prefix { $0 != UInt8(ascii: ";") }
        let hex = String(decoding: sizeText, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        guard !hex.isEmpty, hex.count <= 16, hex.allSatisfy({ $0.isHexDigit }), let size = UInt64(hex, radix: 16) else {
            throw malformed("invalid chunk size \"\(String(decoding: sizeText.prefix(40), as: UTF8.self))\"")
        }
        if size == 0 {
            // Trailer fields, then the final empty line.
            var count = 0
            while try !readLine().isEmpty {
                count += 1
                if count > 100 { throw malformed("too many trailer lines") }
            }
            finish()
            return
        }
        left = size
    }

    private func malformed(_ why: String) -> TransportError {
        TransportError(.other, "\(what): malformed chunked body: \(why)")
    }

    package func skip(_ count: UInt64) throws { try skipByReading(count) }
}

// MARK: Proxies

/// `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (upper or lower case), read as curl and Go read them; loopback
/// destinations are never proxied.
package struct ProxySettings {
    package struct Proxy: Sendable {
        package var host: String
        package var port: Int
        package var authorization: String?
    }

    package let environment: [String: String]

    private func value(_ name: String) -> String? {
        let v = environment[name.lowercased()] ?? environment[name.uppercased()]
        return v.flatMap { $0.isEmpty ? nil : $0 }
    }

    package func proxy(for url: URL) -> Proxy? {
        guard let host = url.host?.lowercased() else { return nil }
        if host == "localhost" || host.hasPrefix("127.") || host == "::1" { return nil }
        let https = url.scheme?.lowercased() == "https"
        guard let raw = https ? value("https_proxy") : value("http_proxy") else { return nil }
        if let noProxy = value("no_proxy") {
            let port = url.port ?? (https ? 443 : 80)
            for item in noProxy.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !item.isEmpty {
                if item == "*" { return nil }
                var name = item, itemPort: Int?
                if let colon = item.lastIndex(of: ":"), !item.hasPrefix("["), let p = Int(item[item.index(after: colon)...]) {
                    name = String(item[..<colon]); itemPort = p
                }
                if let itemPort, itemPort != port { continue }
                let bare = name.hasPrefix(".") ? String(name.dropFirst()) : name
                if host == bare || host.hasSuffix("." + bare) { return nil }
            }
        }
        let withScheme = raw.contains("://") ? raw : "http://" + raw
        guard let u = URL(string: withScheme), let h = u.host else { return nil }
        var auth: String?
        if let user = u.user {
            let pass = u.password ?? ""
            auth = "Basic " + Data("\(user.removingPercentEncoding ?? user):\(pass.removingPercentEncoding ?? pass)".utf8).base64EncodedString()
        }
        return Proxy(host: h, port: u.port ?? (u.scheme?.lowercased() == "https" ? 443 : 80), authorization: auth)
    }
}
