internal import COpenSSL
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A point on the monotonic clock.
package struct Deadline: Sendable, Comparable {
    package var nanos: UInt64

    package init(nanos: UInt64) { self.nanos = nanos }

    package static func now() -> Deadline {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Deadline(nanos: UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec))
    }

    /// `seconds` from now (saturating: a huge value means "never").
    package static func after(_ seconds: Double) -> Deadline {
        let n = now().nanos
        guard seconds.isFinite, seconds < 1e9 else { return Deadline(nanos: .max) }
        let add = UInt64(max(0, seconds) * 1e9)
        return Deadline(nanos: n.addingReportingOverflow(add).overflow ? .max : n + add)
    }

    /// Seconds left (negative when passed).
    package var remaining: Double {
        let n = Deadline.now().nanos
        if nanos == .max { return .infinity }
        return nanos >= n ? Double(nanos - n) / 1e9 : -Double(n - nanos) / 1e9
    }

    package static func < (a: Deadline, b: Deadline) -> Bool { a.nanos < b.nanos }
}

/// The time limits of one HTTP exchange, each named so a timeout says which one was hit.
package struct HTTPLimits: Sendable {
    /// The longest wait for the next bytes (connect, send, receive).
    package var idle: Double
    /// When the whole request, body included, must be done.
    package var request: Deadline
    /// The request's total budget in seconds (for messages).
    package var requestSeconds: Double
    /// When the command as a whole must be done (`--deadline`, `IMPRINT_DEADLINE`), if ever.
    package var command: Deadline?
    package var commandSeconds: Double?

    /// How long to wait now, and the message for when that wait runs out.
    package func nextWait(_ what: @autoclosure () -> String) -> (seconds: Double, expired: () -> TransportError) {
        var wait = idle
        var reason: () -> String = { "no data for \(formatSeconds(self.idle)) (idle timeout; IMPRINT_REGISTRY_TIMEOUT)" }
        let r = request.remaining
        if r < wait {
            wait = r
            reason = { "the request took longer than its \(formatSeconds(self.requestSeconds)) limit (IMPRINT_REQUEST_TIMEOUT)" }
        }
        if let command, let secs = commandSeconds, command.remaining < wait {
            wait = command.remaining
            reason = { "the command ran past its \(formatSeconds(secs)) deadline (--deadline or IMPRINT_DEADLINE)" }
        }
        let w = what()
        return (max(0, wait), { TransportError(.timedOut, "\(w): \(reason())") })
    }
}


/// One connection: TCP or a unix socket, optionally wrapped in TLS, with every wait bounded by `HTTPLimits`.
package final class Connection {
    package let fd: Int32
    private var ssl: OpaquePointer?
    /// `host:port` (or the socket path), for messages.
    package let peer: String
    /// The HTTP proxy requests go through (absolute-form targets), when not tunnelled.
    package var proxied: ProxySettings.Proxy?
    private(set) var closed = false

    /// Takes over an open, non-blocking socket (tests and fuzzing read scripted answers from a socket pair).
    package init(fd: Int32, peer: String) {
        self.fd = fd
        self.peer = peer
    }

    deinit { close() }

    package func close() {
        guard !closed else { return }
        closed = true
        if let ssl { SSL_free(ssl) }
        ssl = nil
        Glibc.close(fd)
    }

    // MARK: Connecting

    /// Connects to `host:port` over TCP, trying each address the name resolves to.
    package static func tcp(host: String, port: Int, limits: HTTPLimits) throws -> Connection {
        let peer = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0, let first = result else {
            throw TransportError(.other, "cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(result) }
        var lastError: TransportError?
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            ai = a.pointee.ai_next
            let fd = socket(a.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd < 0 { lastError = TransportError(.other, "\(peer): cannot create a socket: \(String(cString: strerror(errno)))"); continue }
            let c = Connection(fd: fd, peer: peer)
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            do {
                try c.finishConnect(connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen), limits: limits)
                return c
            } catch let e as TransportError {
                lastError = e
            }
        }
        throw lastError ?? TransportError(.other, "cannot resolve \(host): no addresses")
    }

    /// Connects to a unix socket (a container engine's API).
    package static func unix(path: String, limits: HTTPLimits) throws -> Connection {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw TransportError(.other, "\(path): cannot create a socket: \(String(cString: strerror(errno)))") }
        let c = Connection(fd: fd, peer: path)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw TransportError(.other, "\(path): socket path too long")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try c.finishConnect(rc, limits: limits)
        return c
    }

    private func finishConnect(_ rc: Int32, limits: HTTPLimits) throws {
        if rc != 0 {
            let e = errno
            guard Syscall.inProgress(e) else { throw Connection.connectError(e, peer) }
            try wait(POLLOUT, limits: limits, what: "\(peer): connect")
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            if err != 0 { throw Connection.connectError(err, peer) }
        }
    }

    private static func connectError(_ e: Int32, _ peer: String) -> TransportError {
        switch e {
        case ECONNREFUSED, ENOENT: return TransportError(.refused, "\(peer): connection refused")
        case ETIMEDOUT: return TransportError(.timedOut, "\(peer): connection timed out")
        case EHOSTUNREACH, ENETUNREACH: return TransportError(.refused, "\(peer): \(String(cString: strerror(e)))")
        default: return TransportError(.other, "\(peer): cannot connect: \(String(cString: strerror(e)))")
        }
    }

    // MARK: TLS

    /// Starts TLS: SNI and the certificate's host name (or IP address) are checked against `host`.
    package func startTLS(context: TLSContext, host: String, limits: HTTPLimits) throws {
        guard let s = SSL_new(context.ctx) else { throw TransportError(.other, "\(peer): cannot start TLS: \(TLSContext.lastError())") }
        ssl = s
        // Each setting is checked: a connection whose peer name was not set would accept any trusted certificate.
        func setUp(_ ok: Bool, _ what: String) throws {
            if !ok { throw TransportError(.other, "\(peer): cannot start TLS: \(what) failed: \(TLSContext.lastError())") }
        }
        try setUp(SSL_set_fd(s, fd) == 1, "SSL_set_fd")
        let isIP = host.contains(":") || inet_addr(host) != INADDR_NONE
        if isIP {
            try setUp(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), host) == 1, "setting the expected IP address \(host)")
        } else {
            try setUp(COpenSSL_SSL_set_tlsext_host_name(s, host) == 1, "setting the server name \(host)")
            try setUp(SSL_set1_host(s, host) == 1, "setting the expected host name \(host)")
        }
        while true {
            ERR_clear_error()
            let rc = SSL_connect(s)
            if rc == 1 { return }
            let err = SSL_get_error(s, rc)
            switch err {
            case SSL_ERROR_WANT_READ: try wait(POLLIN, limits: limits, what: "\(peer): TLS handshake")
            case SSL_ERROR_WANT_WRITE: try wait(POLLOUT, limits: limits, what: "\(peer): TLS handshake")
            default:
                let verify = SSL_get_verify_result(s)
                if verify != X509_V_OK {
                    throw TransportError(.other, "\(peer): TLS certificate not trusted: \(String(cString: X509_verify_cert_error_string(verify))) (a private CA: SSL_CERT_FILE=ca.pem; plain HTTP: --insecure)")
                }
                let detail = TLSContext.lastError()
                throw TransportError(.other, "\(peer): TLS handshake failed\(detail.isEmpty ? "" : ": " + detail) (plain HTTP: --insecure)")
            }
        }
    }

    // MARK: I/O

    /// Waits until the socket is ready for `events`, within the limits.
    private func wait(_ events: Int32, limits: HTTPLimits, what: @autoclosure () -> String) throws {
        let (seconds, expired) = limits.nextWait(what())
        if seconds <= 0 { throw expired() }
        var fds = [pollfd(fd: fd, events: Int16(events), revents: 0)]
        let deadline = Deadline.after(seconds)
        let rc = Syscall.poll(&fds) { Int32(min(max(0, deadline.remaining) * 1000, 2_000_000_000)) }
        if rc > 0 { return }
        if rc == 0 { throw expired() }
        throw TransportError(.interrupted, "\(peer): poll failed: \(String(cString: strerror(errno)))")
    }

    /// Sends all of `buffer`.
    package func write(_ buffer: UnsafeRawBufferPointer, limits: HTTPLimits) throws {
        var off = 0
        while off < buffer.count {
            if let ssl {
                ERR_clear_error()
                let n = SSL_write(ssl, buffer.baseAddress! + off, Int32(min(buffer.count - off, 1 << 30)))
                if n > 0 { off += Int(n); continue }
                switch SSL_get_error(ssl, n) {
                case SSL_ERROR_WANT_READ: try wait(POLLIN, limits: limits, what: "\(peer): send")
                case SSL_ERROR_WANT_WRITE: try wait(POLLOUT, limits: limits, what: "\(peer): send")
                default: throw TransportError(.interrupted, "\(peer): connection lost while sending the request")
                }
            } else {
                let n = send(fd, buffer.baseAddress! + off, buffer.count - off, Int32(MSG_NOSIGNAL))
                if n > 0 { off += n; continue }
                if n < 0 && Syscall.inProgress(errno) { try wait(POLLOUT, limits: limits, what: "\(peer): send"); continue }
                throw TransportError(.interrupted, "\(peer): connection lost while sending the request (\(String(cString: strerror(errno))))")
            }
        }
    }

    /// Reads what is available (waiting within the limits); 0 when the peer closed the connection.
    package func read(into buffer: UnsafeMutableRawBufferPointer, limits: HTTPLimits, what: @autoclosure () -> String) throws -> Int {
        while true {
            if let ssl {
                ERR_clear_error()
                let n = SSL_read(ssl, buffer.baseAddress, Int32(min(buffer.count, 1 << 30)))
                if n > 0 { return Int(n) }
                switch SSL_get_error(ssl, n) {
                case SSL_ERROR_WANT_READ: try wait(POLLIN, limits: limits, what: what())
                case SSL_ERROR_WANT_WRITE: try wait(POLLOUT, limits: limits, what: what())
                case SSL_ERROR_ZERO_RETURN: return 0
                case SSL_ERROR_SYSCALL where errno == 0 || errno == ECONNRESET: return 0
                default:
                    // OpenSSL 3 reports a peer that closes without close_notify as an error; for HTTP the framing
                    // (Content-Length, chunks) decides whether anything is missing.
                    let detail = TLSContext.lastError()
                    if detail.contains("unexpected eof") { return 0 }
                    throw TransportError(.interrupted, "\(peer): TLS error while receiving: \(detail)")
                }
            } else {
                let n = recv(fd, buffer.baseAddress, buffer.count, 0)
                if n >= 0 { return n }
                if Syscall.inProgress(errno) { try wait(POLLIN, limits: limits, what: what()); continue }
                if errno == ECONNRESET { return 0 }
                throw TransportError(.interrupted, "\(peer): receive failed: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// True when the idle connection was closed by the peer (or has stray bytes): not safe to reuse.
    package var looksClosed: Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 0) != 0
    }
}

/// The TLS settings shared by a client's connections: peer verification on, TLS 1.2 or later, trust from
/// `SSL_CERT_FILE`/`SSL_CERT_DIR` when set, else the system's CA bundle.
// why @unchecked Sendable: the SSL_CTX is configured once in init and only read afterwards (SSL_new), which
// OpenSSL allows from many threads.
package final class TLSContext: @unchecked Sendable {
    // why @unchecked: the SSL_CTX is configured once in init and only read afterwards (OpenSSL allows SSL_new
    // from several threads on one configured context).
    package let ctx: OpaquePointer

    /// Where distributions keep their CA bundle, for a binary whose OpenSSL was built for another layout.
    package static let bundles = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                          "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem", "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"]

    package init(environment: [String: String]) throws {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw TransportError(.other, "cannot set up TLS: \(TLSContext.lastError())") }
        self.ctx = ctx
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        guard COpenSSL_SSL_CTX_set_min_proto_version(ctx, COpenSSL_TLS1_2_VERSION()) == 1 else {
            throw TransportError(.other, "cannot set up TLS: TLS 1.2 as the lowest version: \(TLSContext.lastError())")
        }
        _ = SSL_CTX_set_options(ctx, COpenSSL_SSL_OP_IGNORE_UNEXPECTED_EOF())  // returns the new option mask, not a status
        let file = environment["SSL_CERT_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        let dir = environment["SSL_CERT_DIR"].flatMap { $0.isEmpty ? nil : $0 }
        if file != nil || dir != nil {
            guard SSL_CTX_load_verify_locations(ctx, file, dir) == 1 else {
                throw TransportError(.other, "cannot load the CA certificates in \(file ?? dir!): \(TLSContext.lastError())")
            }
        } else {
            // Unchecked on purpose, and still failing closed: with no trust roots loaded every handshake is refused
            // with "certificate not trusted", which names the fix (SSL_CERT_FILE).
            SSL_CTX_set_default_verify_paths(ctx)
            if let bundle = TLSContext.bundles.first(where: { access($0, R_OK) == 0 }) {
                SSL_CTX_load_verify_locations(ctx, bundle, nil)
            }
            ERR_clear_error()
        }
    }

    deinit { SSL_CTX_free(ctx) }

    /// OpenSSL's error queue as one line (and emptied).
    package static func lastError() -> String {
        var parts: [String] = []
        while true {
            let e = ERR_get_error()
            if e == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(e, &buf, buf.count)
            let s = String(nulTerminated: buf)
            // "error:0A000086:SSL routines::certificate verify failed" → the reason at the end.
            parts.append(s.split(separator: ":").last.map { String($0) } ?? s)
        }
        return parts.joined(separator: "; ")
    }
}
