import Foundation

/// One HTTP request as the registry client builds it. Bodies are small (manifests, configs, the stamp layer,
/// a history archive) and kept in memory so a request can be re-sent on retry.
package struct HTTPRequest: Sendable {
    package var method: String
    package var url: URL
    package var headers: [String: String]
    package var body: [UInt8]?

    package init(method: String, url: URL, headers: [String: String] = [:], body: [UInt8]? = nil) {
        self.method = method; self.url = url; self.headers = headers; self.body = body
    }
}

/// A response whose status and headers have arrived; the body streams through `body`.
package final class HTTPResponse {
    package let status: Int
    /// Header fields with lower-cased names.
    package let headers: [String: String]
    /// The URL that answered (after redirects).
    package let url: URL
    /// The body, read as it arrives.
    package let body: ByteSource
    private let cancelHandler: () -> Void

    package init(status: Int, headers: [String: String], url: URL, body: ByteSource, cancel: @escaping () -> Void = {}) {
        self.status = status
        var lower: [String: String] = [:]
        for (k, v) in headers { lower[k.lowercased()] = v }
        self.headers = lower
        self.url = url
        self.body = body
        self.cancelHandler = cancel
    }

    package func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// Reads the whole body (small documents only).
    package func readBody(limit: Int = 32 << 20, what: String) throws -> [UInt8] {
        try body.readAll(limit: limit, what: what)
    }

    /// Stops the transfer; the body is not wanted.
    package func discard() { cancelHandler() }
}

/// A failure below HTTP: the connection could not be made, broke, or timed out.
package struct TransportError: Error, CustomStringConvertible, Sendable {
    package enum Kind: Sendable { case refused, timedOut, interrupted, other }
    package var kind: Kind
    package var message: String
    /// True for failures worth another try (refused, reset, timed out).
    package var retryable: Bool { kind != .other }
    package init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    package var description: String { message }
}

/// Sends HTTP requests. The registry client talks to registries only through this, so tests can put an
/// in-memory registry behind it.
package protocol HTTPTransport: AnyObject {
    /// Sends `request` and returns once the status line and headers have arrived.
    /// - Throws: `TransportError` when no response arrived.
    func send(_ request: HTTPRequest) throws -> HTTPResponse
}
