import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP request as the registry client builds it. Bodies are small (manifests, configs, the stamp layer,
/// a history archive) and kept in memory so a request can be re-sent on retry.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: URL
    public var headers: [String: String]
    public var body: [UInt8]?

    public init(method: String, url: URL, headers: [String: String] = [:], body: [UInt8]? = nil) {
        self.method = method; self.url = url; self.headers = headers; self.body = body
    }
}

/// A response whose status and headers have arrived; the body streams through `body`.
public final class HTTPResponse {
    public let status: Int
    /// Header fields with lower-cased names.
    public let headers: [String: String]
    /// The URL that answered (after redirects).
    public let url: URL
    /// The body, read as it arrives.
    public let body: ByteSource
    private let cancelHandler: () -> Void

    public init(status: Int, headers: [String: String], url: URL, body: ByteSource, cancel: @escaping () -> Void = {}) {
        self.status = status
        var lower: [String: String] = [:]
        for (k, v) in headers { lower[k.lowercased()] = v }
        self.headers = lower
        self.url = url
        self.body = body
        self.cancelHandler = cancel
    }

    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// Reads the whole body (small documents only).
    public func readBody(limit: Int = 32 << 20, what: String) throws -> [UInt8] {
        try body.readAll(limit: limit, what: what)
    }

    /// Stops the transfer; the body is not wanted.
    public func discard() { cancelHandler() }
}

/// A failure below HTTP: the connection could not be made, broke, or timed out.
public struct TransportError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable { case refused, timedOut, interrupted, other }
    public var kind: Kind
    public var message: String
    /// True for failures worth another try (refused, reset, timed out).
    public var retryable: Bool { kind != .other }
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }
}

/// Sends HTTP requests. The registry client talks to registries only through this, so tests can put an
/// in-memory registry behind it.
public protocol HTTPTransport: AnyObject {
    /// Sends `request` and returns once the status line and headers have arrived.
    /// - Throws: `TransportError` when no response arrived.
    func send(_ request: HTTPRequest) throws -> HTTPResponse
}

// MARK: URLSession

/// `HTTPTransport` over FoundationNetworking's `URLSession` (libcurl on Linux).
///
/// The synchronous API is built on the session's delegate callbacks: each response body is spooled as it
/// arrives (in memory up to a few MiB, then into an unlinked temporary file), so a slow consumer never
/// holds back the network and a large layer never sits in memory.
public final class URLSessionTransport: HTTPTransport {
    private let session: URLSession
    private let delegate: SessionDelegate
    /// Idle timeout: the longest wait for the next bytes of a response.
    public let timeout: TimeInterval

    public init(timeout: TimeInterval = 30) {
        self.timeout = timeout
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = timeout
        config.timeoutIntervalForResource = 7 * 24 * 3600
        config.urlCache = nil
        config.httpShouldSetCookies = false
        config.requestCachePolicy = .reloadIgnoringLocalCacheData
        delegate = SessionDelegate()
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        session = URLSession(configuration: config, delegate: delegate, delegateQueue: queue)
    }

    deinit { session.invalidateAndCancel() }

    public func send(_ request: HTTPRequest) throws -> HTTPResponse {
        var r = URLRequest(url: request.url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
        r.httpMethod = request.method
        for (k, v) in request.headers { r.setValue(v, forHTTPHeaderField: k) }
        if let body = request.body {
            r.httpBody = Data(body)
            if request.headers["Content-Length"] == nil { r.setValue(String(body.count), forHTTPHeaderField: "Content-Length") }
        }
        let task = session.dataTask(with: r)
        let spool = ResponseSpool(what: "\(request.method) \(request.url.absoluteString)")
        spool.task = task
        delegate.register(task.taskIdentifier, spool)
        task.resume()
        let response = try spool.waitForResponse()
        var headers: [String: String] = [:]
        for (k, v) in response.allHeaderFields {
            if let k = k as? String { headers[k] = "\(v)" }
        }
        return HTTPResponse(status: response.statusCode, headers: headers, url: response.url ?? request.url, body: spool,
                            cancel: { [weak spool] in spool?.cancel() })
    }
}

/// Routes a session's delegate callbacks to the spool of each task.
// why @unchecked: the dictionary is guarded by `lock`; callbacks run on the session's serial delegate queue.
final class SessionDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private let lock = NSLock()
    private var spools: [Int: ResponseSpool] = [:]

    func register(_ id: Int, _ spool: ResponseSpool) {
        lock.lock(); spools[id] = spool; lock.unlock()
    }

    private func spool(_ id: Int, remove: Bool = false) -> ResponseSpool? {
        lock.lock(); defer { lock.unlock() }
        return remove ? spools.removeValue(forKey: id) : spools[id]
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        spool(dataTask.taskIdentifier)?.received(response as? HTTPURLResponse)
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        spool(dataTask.taskIdentifier)?.append(data)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        spool(task.taskIdentifier, remove: true)?.complete(error)
    }

    // Blob GETs are often redirected to storage on another host (S3, a CDN): never send the registry's
    // Authorization there (S3 rejects a request with two authentication mechanisms, and the token is not theirs).
    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        var r = request
        if r.url?.host != task.originalRequest?.url?.host || r.url?.port != task.originalRequest?.url?.port {
            r.setValue(nil, forHTTPHeaderField: "Authorization")
        }
        completionHandler(r)
    }

    // Registries answer 401 with their own challenge; the client handles it, URLSession must not.
    func urlSession(_ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
                    completionHandler: @escaping (URLSession.AuthChallengeDisposition, URLCredential?) -> Void) {
        completionHandler(.rejectProtectionSpace, nil)
    }
}

/// A response body as it arrives: chunks in memory, then (past `memoryLimit`) an unlinked temporary file.
// why @unchecked: all state is guarded by `condition`; the producer is URLSession's delegate queue.
final class ResponseSpool: ByteSource, @unchecked Sendable {
    private let condition = NSCondition()
    private let what: String
    weak var task: URLSessionTask?
    private var response: HTTPURLResponse?
    private var chunks: [Data] = []
    private var chunkOffset = 0
    private var memoryBytes = 0
    private var spillFD: Int32 = -1
    private var spillWritten: UInt64 = 0
    private var spillRead: UInt64 = 0
    private var done = false
    private var failure: Error?
    private var delivered: UInt64 = 0
    private var cancelled = false
    private let memoryLimit = 8 << 20

    init(what: String) { self.what = what }

    deinit {
        if spillFD >= 0 { close(spillFD) }
        if !done { task?.cancel() }
    }

    func received(_ r: HTTPURLResponse?) {
        condition.lock()
        response = r
        condition.broadcast()
        condition.unlock()
    }

    func append(_ data: Data) {
        condition.lock()
        defer { condition.broadcast(); condition.unlock() }
        if cancelled { return }
        if spillFD < 0 && memoryBytes + data.count <= memoryLimit {
            chunks.append(data)
            memoryBytes += data.count
            return
        }
        if spillFD < 0 {
            var template = Array((NSTemporaryDirectory() + "/imprint-spool-XXXXXX").utf8CString)
            let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            if fd < 0 {
                failure = ImprintError.posix("create a temporary file for", what)
                cancelled = true
                task?.cancel()
                return
            }
            unlink(String(cString: template))
            spillFD = fd
        }
        let ok = data.withUnsafeBytes { buf -> Bool in
            var off = 0
            while off < buf.count {
                let n = pwrite(spillFD, buf.baseAddress! + off, buf.count - off, off_t(spillWritten) + off_t(off))
                if n < 0 { if errno == EINTR { continue }; return false }
                off += n
            }
            return true
        }
        if !ok {
            failure = ImprintError.posix("write a temporary file for", what)
            cancelled = true
            task?.cancel()
            return
        }
        spillWritten += UInt64(data.count)
    }

    func complete(_ error: Error?) {
        condition.lock()
        if let error, failure == nil, !cancelled { failure = ResponseSpool.map(error) }
        done = true
        condition.broadcast()
        condition.unlock()
    }

    func cancel() {
        condition.lock()
        cancelled = true
        chunks.removeAll()
        condition.unlock()
        task?.cancel()
    }

    /// Blocks until the status and headers arrived, or the request failed.
    func waitForResponse() throws -> HTTPURLResponse {
        condition.lock()
        defer { condition.unlock() }
        while response == nil && !done { condition.wait() }
        if let response { return response }
        if let failure { throw failure }
        throw TransportError(.other, "\(what): no response")
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if buffer.count == 0 { return 0 }
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let first = chunks.first {
                let n = min(buffer.count, first.count - chunkOffset)
                first.withUnsafeBytes { src in
                    buffer.baseAddress!.copyMemory(from: src.baseAddress! + chunkOffset, byteCount: n)
                }
                chunkOffset += n
                if chunkOffset == first.count {
                    chunks.removeFirst()
                    memoryBytes -= first.count
                    chunkOffset = 0
                }
                delivered += UInt64(n)
                return n
            }
            if spillRead < spillWritten {
                let want = Int(min(UInt64(buffer.count), spillWritten - spillRead))
                let n = pread(spillFD, buffer.baseAddress, want, off_t(spillRead))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ImprintError.posix("read the temporary file of", what)
                }
                spillRead += UInt64(n)
                delivered += UInt64(n)
                return n
            }
            if done {
                if let failure {
                    if let t = failure as? TransportError {
                        throw ImprintError(.failure, "\(what): transfer interrupted after \(formatBytes(delivered)): \(t.message)")
                    }
                    throw failure
                }
                return 0
            }
            condition.wait()
        }
    }

    /// Maps a URLSession error to a `TransportError` saying what happened in words.
    static func map(_ error: Error) -> TransportError {
        let ns = error as NSError
        if ns.domain == NSURLErrorDomain {
            switch ns.code {
            case NSURLErrorCannotConnectToHost: return TransportError(.refused, "connection refused")
            case NSURLErrorTimedOut: return TransportError(.timedOut, "timed out")
            case NSURLErrorNetworkConnectionLost: return TransportError(.interrupted, "connection lost")
            case NSURLErrorCannotFindHost, NSURLErrorDNSLookupFailed: return TransportError(.other, "unknown host")
            case NSURLErrorNotConnectedToInternet: return TransportError(.refused, "network unreachable")
            case NSURLErrorSecureConnectionFailed, NSURLErrorServerCertificateUntrusted, NSURLErrorServerCertificateHasBadDate,
                 NSURLErrorServerCertificateNotYetValid, NSURLErrorServerCertificateHasUnknownRoot:
                return TransportError(.other, "TLS handshake failed (for a plain-HTTP registry use --insecure)")
            case NSURLErrorBadServerResponse: return TransportError(.interrupted, "bad server response")
            case NSURLErrorCancelled: return TransportError(.other, "cancelled")
            default: break
            }
        }
        return TransportError(.interrupted, ns.localizedDescription)
    }
}
