import Foundation

/// A client for one registry speaking the OCI distribution API (distribution-spec `spec.md`): manifests and
/// blobs by tag or digest, uploads, cross-repository mounts and the referrers API.
///
/// - Every manifest and blob is checked against its digest (and size) as it is read.
/// - Authentication: anonymous first; on a `401` the `WWW-Authenticate` challenge decides — `Basic` re-sends
///   with the credentials, `Bearer realm=…,service=…,scope=…` fetches a token from the realm (with the
///   credentials when there are some) and caches it per scope.
/// - Retries: `429`, `5xx` and connection failures are tried up to `options.attempts` times, with exponential
///   back-off (honouring a short `Retry-After`).
/// - Errors are one line naming the registry and repository: `registry 127.0.0.1:5000 refused credentials for
///   repo app (401)`.
package final class RegistryClient {
    /// `host[:port]`.
    package let host: String
    /// `http` or `https`.
    package let scheme: String
    package let options: RegistryOptions
    package let credentials: RegistryCredentials?
    private let transport: HTTPTransport
    private var tokens: [String: String] = [:]
    private var useBasic = false
    /// Waits between retries (tests replace it).
    package var sleep: (TimeInterval) -> Void = { Thread.sleep(forTimeInterval: $0) }

    /// The longest bearer token sent (registries refuse larger request headers, typically with 431).
    package static let maxTokenLength = 16 << 10

    /// Manifest media types imprint asks for.
    package static let manifestAccept = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList].joined(separator: ", ")

    /// - Parameters:
    ///   - host: `host[:port]`.
    ///   - insecure: plain HTTP; loopback hosts use plain HTTP anyway.
    ///   - transport: nil for `URLSessionTransport`.
    ///   - credentials: nil to look them up (`RegistryCredentials.lookup`).
    package init(host: String, options: RegistryOptions = RegistryOptions(), transport: HTTPTransport? = nil,
                credentials: RegistryCredentials?? = nil) throws {
        self.host = host
        self.options = options
        let loopback = RegistryReference(host: host, repository: "x").isLoopback
        self.scheme = options.insecure || loopback ? "http" : "https"
        self.transport = transport ?? HTTPClient(options.httpConfiguration)
        if let credentials {
            self.credentials = credentials
        } else {
            self.credentials = try RegistryCredentials.lookup(host: host, environment: options.environment)
        }
    }

    /// A client for the registry of `reference`.
    package convenience init(for reference: RegistryReference, options: RegistryOptions = RegistryOptions(),
                            transport: HTTPTransport? = nil) throws {
        try self.init(host: reference.host, options: options, transport: transport)
    }

    // MARK: Requests

    /// `{scheme}://{host}/v2/{path}`.
    package func url(_ path: String) -> URL {
        URL(string: "\(scheme)://\(host)/v2/\(path)")!
    }

    /// Sends a request with authentication and retries, and turns 401/403 and exhausted retries into errors.
    /// Other statuses (including 404) are returned for the caller to judge.
    /// - Parameters:
    ///   - repository: the repository the request is about (token scope, messages).
    ///   - push: true when the request writes (token scope `pull,push`).
    package func send(_ method: String, _ url: URL, repository: String, push: Bool = false,
                     headers: [String: String] = [:], body: [UInt8]? = nil) throws -> HTTPResponse {
        let scope = "repository:\(repository):\(push ? "pull,push" : "pull")"
        var attempt = 0
        var authTried = false
        while true {
            attempt += 1
            var request = HTTPRequest(method: method, url: url, headers: headers, body: body)
            if let token = tokens[scope] {
                request.headers["Authorization"] = "Bearer \(token)"
            } else if useBasic, let credentials {
                request.headers["Authorization"] = credentials.basicAuthorization
            }
            let response: HTTPResponse
            do {
                response = try transport.send(request)
            } catch let e as TransportError {
                if e.retryable && attempt < options.attempts {
                    sleep(delay(attempt, retryAfter: nil))
                    continue
                }
                throw connectionError(e, attempts: attempt)
            }
            switch response.status {
            case 401:
                let header = response.header("WWW-Authenticate")
                response.discard()
                if authTried {
                    // The credentials or token were sent and refused.
                    if tokens[scope] != nil {
                        throw ImprintError(.failure, "registry \(host) refused the token its token service issued for repo \(repository) (401)")
                    }
                    throw authError(401, repository: repository)
                }
                guard let header, !header.isEmpty else {
                    throw ImprintError(.failure, "registry \(host) answered 401 to \(method) \(url.path) without a WWW-Authenticate challenge, so imprint cannot tell how to authenticate")
                }
                guard let challenge = AuthChallenge(header: header), ["bearer", "basic"].contains(challenge.scheme) else {
                    throw ImprintError(.failure, "registry \(host) sent an authentication challenge imprint cannot answer: WWW-Authenticate: \(header.prefix(120))")
                }
                authTried = true
                if challenge.scheme == "bearer" {
                    tokens[scope] = try fetchToken(challenge, scope: scope, repository: repository)
                    attempt -= 1
                    continue
                }
                guard credentials != nil else { throw authError(401, repository: repository) }
                useBasic = true
                attempt -= 1
                continue
            case 403:
                response.discard()
                throw authError(403, repository: repository)
            case 429, 500...599:
                let retryAfter = response.header("Retry-After").flatMap(RegistryClient.retryAfterSeconds)
                response.discard()
                if attempt < options.attempts {
                    sleep(delay(attempt, retryAfter: retryAfter))
                    continue
                }
                throw ImprintError(.failure, "registry \(host) answered \(RegistryClient.describe(response.status)) to \(method) \(url.path) (after \(attempt) tries)")
            case 431:
                response.discard()
                throw ImprintError(.failure, "registry \(host) answered 431 (request header fields too large) to \(method) \(url.path)")
            default:
                return response
            }
        }
    }

    /// A status with its meaning, for messages: `503 (service unavailable)`.
    package static func describe(_ status: Int) -> String {
        let text: [Int: String] = [400: "bad request", 404: "not found", 405: "method not allowed", 413: "payload too large",
                                   429: "too many requests", 431: "request header fields too large", 500: "internal server error",
                                   502: "bad gateway", 503: "service unavailable", 504: "gateway timeout"]
        return text[status].map { "\(status) (\($0))" } ?? "\(status)"
    }

    /// `Retry-After` in seconds: a number of seconds or an HTTP-date (RFC 9110 §10.2.3, IMF-fixdate).
    package static func retryAfterSeconds(_ value: String) -> Double? {
        let v = value.trimmingCharacters(in: .whitespaces)
        if let s = Double(v), s.isFinite, s >= 0 { return s }
        // "Sun, 06 Nov 1994 08:49:37 GMT"
        let parts = v.split(separator: " ")
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let month = months.firstIndex(of: String(parts[2])),
              let year = Int(parts[3]), (1970...9999).contains(year), (1...31).contains(day) else { return nil }
        let hms = parts[4].split(separator: ":").compactMap { Int($0) }
        guard hms.count == 3, (0...23).contains(hms[0]), (0...59).contains(hms[1]), (0...60).contains(hms[2]) else { return nil }
        var t = tm()
        t.tm_year = Int32(year - 1900); t.tm_mon = Int32(month); t.tm_mday = Int32(day)
        t.tm_hour = Int32(hms[0]); t.tm_min = Int32(hms[1]); t.tm_sec = Int32(hms[2])
        let when = timegm(&t)
        return max(0, Double(when) - Date().timeIntervalSince1970)
    }

    private func delay(_ attempt: Int, retryAfter: Double?) -> TimeInterval {
        let exponential = options.backoff * pow(2, Double(attempt - 1))
        if let retryAfter, retryAfter >= 0 { return min(max(retryAfter, exponential), 10) }
        return exponential
    }

    private func connectionError(_ e: TransportError, attempts: Int) -> ImprintError {
        let tries = attempts > 1 ? " (after \(attempts) tries)" : ""
        switch e.kind {
        case .refused where e.message.contains("(redirected from"):
            return ImprintError(.failure, "registry \(host) redirected to a host that cannot be reached: \(e.message)\(tries)")
        case .refused: return ImprintError(.failure, "cannot connect to registry \(host): connection refused\(tries)")
        case .timedOut: return ImprintError(.failure, "registry \(host) did not answer in time: \(e.message)\(tries)")
        default:
            // Transport messages start with the peer; do not name the registry twice.
            let detail = e.message.hasPrefix(host + ": ") ? String(e.message.dropFirst(host.count + 2)) : e.message
            return ImprintError(.failure, "cannot talk to registry \(host): \(detail)\(tries)")
        }
    }

    private func authError(_ status: Int, repository: String) -> ImprintError {
        if status == 403 {
            return ImprintError(.failure, "registry \(host) denied access to repo \(repository) (403)")
        }
        if let credentials {
            return ImprintError(.failure, "registry \(host) refused credentials for repo \(repository) (401; user \(credentials.username) from \(credentials.source))")
        }
        return ImprintError(.failure, "registry \(host) requires credentials for repo \(repository) (401): set IMPRINT_REGISTRY_USER and IMPRINT_REGISTRY_PASSWORD, or add an auths entry to $DOCKER_CONFIG/config.json")
    }

    /// Answers a Bearer challenge: `GET realm?service=…&scope=…` (with Basic credentials when known) and
    /// reads `token` or `access_token` from the JSON answer.
    private func fetchToken(_ challenge: AuthChallenge, scope: String, repository: String) throws -> String {
        guard let realm = challenge.parameters["realm"], var components = URLComponents(string: realm) else {
            throw ImprintError(.failure, "registry \(host) sent a Bearer challenge without a usable realm")
        }
        var items = components.queryItems ?? []
        if let service = challenge.parameters["service"] { items.append(URLQueryItem(name: "service", value: service)) }
        items.append(URLQueryItem(name: "scope", value: challenge.parameters["scope"] ?? scope))
        components.queryItems = items
        guard let url = components.url else { throw ImprintError(.failure, "registry \(host): invalid token realm \(realm)") }
        var headers: [String: String] = [:]
        if let credentials { headers["Authorization"] = credentials.basicAuthorization }
        var attempt = 0
        while true {
            attempt += 1
            let response: HTTPResponse
            do {
                response = try transport.send(HTTPRequest(method: "GET", url: url, headers: headers))
            } catch let e as TransportError {
                if e.retryable && attempt < options.attempts { sleep(delay(attempt, retryAfter: nil)); continue }
                throw connectionError(e, attempts: attempt)
            }
            if (response.status == 429 || response.status >= 500) && attempt < options.attempts {
                response.discard()
                sleep(delay(attempt, retryAfter: nil))
                continue
            }
            if response.status == 401 || response.status == 403 {
                let again = response.header("WWW-Authenticate")
                response.discard()
                let service = url.host ?? realm
                if credentials == nil {
                    throw ImprintError(.failure, "registry \(host) requires credentials for repo \(repository): its token service \(service) answered \(response.status)\(again.map { " with another challenge (\($0.prefix(80)))" } ?? ""); set IMPRINT_REGISTRY_USER and IMPRINT_REGISTRY_PASSWORD, or add an auths entry to $DOCKER_CONFIG/config.json")
                }
                throw ImprintError(.failure, "token service \(service) of registry \(host) refused the credentials of user \(credentials!.username) from \(credentials!.source) for repo \(repository) (\(response.status))")
            }
            guard response.status == 200 else {
                response.discard()
                throw ImprintError(.failure, "registry \(host): token service \(url.host ?? realm) answered \(RegistryClient.describe(response.status))")
            }
            let answer = try OCIJSON.decode(TokenResponse.self, from: try response.readBody(limit: 1 << 20, what: "token response"),
                                            what: "token response from \(realm)")
            guard let token = answer.token ?? answer.accessToken, !token.isEmpty else {
                throw ImprintError(.failure, "registry \(host): token service \(realm) returned no token")
            }
            guard token.utf8.count <= RegistryClient.maxTokenLength, !token.contains(where: { $0 == "\r" || $0 == "\n" }) else {
                throw ImprintError(.failure, "registry \(host): token service \(url.host ?? realm) issued a token of \(formatBytes(UInt64(token.utf8.count))), more than the \(RegistryClient.maxTokenLength >> 10) KiB a request header can carry")
            }
            return token
        }
    }

    // MARK: API

    /// `GET /v2/` — checks the registry answers (and that the credentials work, for registries that ask at once).
    package func ping() throws {
        let r = try send("GET", url(""), repository: "")
        r.discard()
        guard r.status == 200 else { throw ImprintError(.failure, "registry \(host) answered \(r.status) to GET /v2/") }
    }

    /// Fetches a manifest or index by tag or digest and checks it: against the digest when the reference pins
    /// one, else against the `Docker-Content-Digest` header when the registry sends it.
    /// - Returns: its descriptor (media type from the document or the `Content-Type`) and its bytes.
    package func manifest(_ repository: String, reference: String) throws -> (Descriptor, [UInt8]) {
        let r = try send("GET", url("\(repository)/manifests/\(reference)"), repository: repository,
                         headers: ["Accept": RegistryClient.manifestAccept])
        guard r.status == 200 else {
            r.discard()
            if r.status == 404 { throw ImprintError(.notFound, "registry \(host) has no manifest \(repository)\(reference.hasPrefix("sha256:") ? "@" : ":")\(reference) (404)") }
            throw ImprintError(.failure, "registry \(host) answered \(r.status) to GET manifest \(repository):\(reference)")
        }
        let bytes = try r.readBody(limit: 16 << 20, what: "manifest \(repository):\(reference)")
        let digest = SHA256.hash(bytes)
        if reference.hasPrefix("sha256:") {
            guard digest.prefixed == reference else {
                throw ImprintError.badInput("manifest \(repository)@\(reference) from \(host) does not match its digest: content hashes to \(digest)")
            }
        } else if let header = r.header("Docker-Content-Digest"), header.hasPrefix("sha256:"), header != digest.prefixed {
            throw ImprintError.badInput("manifest \(repository):\(reference) from \(host) does not match the digest the registry announced (\(header)): content hashes to \(digest)")
        }
        let kind = try OCIJSON.decode(DocumentKind.self, from: bytes, what: "manifest \(repository):\(reference)")
        var mediaType = kind.mediaType ?? ""
        if mediaType.isEmpty {
            let ct = (r.header("Content-Type") ?? "").split(separator: ";").first.map { String($0).trimmingCharacters(in: .whitespaces) } ?? ""
            mediaType = ct.isEmpty || ct == "application/json" ? (kind.manifests != nil ? MediaType.ociIndex : MediaType.ociManifest) : ct
        }
        return (Descriptor(mediaType: mediaType, digest: digest, size: UInt64(bytes.count)), bytes)
    }

    /// `HEAD` a manifest: its descriptor, or nil when the registry has none under `reference`.
    package func manifestDescriptor(_ repository: String, reference: String) throws -> Descriptor? {
        let r = try send("HEAD", url("\(repository)/manifests/\(reference)"), repository: repository,
                         headers: ["Accept": RegistryClient.manifestAccept])
        r.discard()
        if r.status == 404 { return nil }
        guard r.status == 200, let d = r.header("Docker-Content-Digest"), let digest = Digest(hex: d),
              let size = r.header("Content-Length").flatMap(UInt64.init) else {
            if r.status == 200 { return try manifest(repository, reference: reference).0 }
            throw ImprintError(.failure, "registry \(host) answered \(r.status) to HEAD manifest \(repository):\(reference)")
        }
        let ct = (r.header("Content-Type") ?? "").split(separator: ";").first.map(String.init) ?? ""
        return Descriptor(mediaType: ct, digest: digest, size: size)
    }

    /// A blob as a stream, checked against `descriptor` (size and sha256) while it is read; call `verify()`
    /// after consuming it.
    package func openBlob(_ repository: String, _ descriptor: Descriptor) throws -> DigestVerifyingSource {
        let r = try send("GET", url("\(repository)/blobs/\(descriptor.digest.prefixed)"), repository: repository)
        guard r.status == 200 else {
            r.discard()
            if r.status == 404 { throw ImprintError(.notFound, "registry \(host) has no blob \(descriptor.digest) in repo \(repository) (404)") }
            throw ImprintError(.failure, "registry \(host) answered \(r.status) to GET blob \(descriptor.digest) in repo \(repository)")
        }
        if let length = r.header("Content-Length").flatMap(UInt64.init), length != descriptor.size {
            r.discard()
            throw ImprintError.badInput("blob \(descriptor.digest) in \(host)/\(repository) has \(length) bytes but its descriptor says \(descriptor.size)")
        }
        return DigestVerifyingSource(r.body, digest: descriptor.digest, size: descriptor.size,
                                     name: "\(descriptor.digest.prefixed) in \(host)/\(repository)")
    }

    /// A small blob (config, artifact payload) read whole and verified.
    package func blob(_ repository: String, _ descriptor: Descriptor, limit: Int = 64 << 20) throws -> [UInt8] {
        guard descriptor.size <= UInt64(limit) else {
            throw ImprintError.badInput("blob \(descriptor.digest) in \(host)/\(repository) is too large (\(descriptor.size) bytes)")
        }
        let s = try openBlob(repository, descriptor)
        let bytes = try s.readAll(limit: limit, what: "blob \(descriptor.digest)")
        try s.verify()
        return bytes
    }

    /// `HEAD /v2/<name>/blobs/<digest>`.
    package func blobExists(_ repository: String, _ digest: Digest) throws -> Bool {
        let r = try send("HEAD", url("\(repository)/blobs/\(digest.prefixed)"), repository: repository, push: true)
        r.discard()
        switch r.status {
        case 200: return true
        case 404: return false
        default: throw ImprintError(.failure, "registry \(host) answered \(r.status) to HEAD blob \(digest) in repo \(repository)")
        }
    }

    /// Uploads `bytes` unless the repository already has them (checked with `HEAD`): `POST …/blobs/uploads/`
    /// then one `PUT <location>&digest=…`.
    /// - Returns: true when the blob was uploaded, false when it was already there.
    @discardableResult
    package func pushBlob(_ repository: String, _ bytes: [UInt8], digest: Digest? = nil) throws -> Bool {
        let d = digest ?? SHA256.hash(bytes)
        if try blobExists(repository, d) { return false }
        let start = try send("POST", url("\(repository)/blobs/uploads/"), repository: repository, push: true,
                             headers: ["Content-Length": "0"], body: [])
        start.discard()
        guard start.status == 202, let location = start.header("Location") else {
            throw ImprintError(.failure, "registry \(host) answered \(start.status) when starting an upload to repo \(repository)")
        }
        let put = try send("PUT", uploadURL(location, digest: d, base: start.url), repository: repository, push: true,
                           headers: ["Content-Type": "application/octet-stream"], body: bytes)
        put.discard()
        guard put.status == 201 else {
            throw ImprintError(.failure, "registry \(host) answered \(put.status) to the upload of blob \(d) to repo \(repository)")
        }
        return true
    }

    /// Cross-repository mount (`POST …/blobs/uploads/?mount=<digest>&from=<repo>`).
    /// - Returns: true when mounted; false when the registry declined (the blob must then be uploaded).
    package func mountBlob(_ repository: String, _ digest: Digest, from source: String) throws -> Bool {
        var c = URLComponents(url: url("\(repository)/blobs/uploads/"), resolvingAgainstBaseURL: false)!
        c.queryItems = [URLQueryItem(name: "mount", value: digest.prefixed), URLQueryItem(name: "from", value: source)]
        let r = try send("POST", c.url!, repository: repository, push: true, headers: ["Content-Length": "0"], body: [])
        r.discard()
        if r.status == 201 { return true }
        if r.status == 202, let location = r.header("Location") {
            // The registry opened an ordinary upload instead; cancel it.
            let cancel = try? send("DELETE", uploadURL(location, digest: nil, base: r.url), repository: repository, push: true)
            cancel?.discard()
            return false
        }
        return false
    }

    private func uploadURL(_ location: String, digest: Digest?, base: URL) throws -> URL {
        guard var c = URLComponents(string: URL(string: location, relativeTo: base)?.absoluteString ?? location) else {
            throw ImprintError(.failure, "registry \(host) sent an invalid upload location \(location)")
        }
        if let digest {
            c.queryItems = (c.queryItems ?? []) + [URLQueryItem(name: "digest", value: digest.prefixed)]
        }
        // URLComponents leaves `+` alone in queries; registries decode it as a space.
        c.percentEncodedQuery = c.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        guard let u = c.url else { throw ImprintError(.failure, "registry \(host) sent an invalid upload location \(location)") }
        return u
    }

    /// What a manifest `PUT` answered.
    package struct PutResult {
        package var digest: Digest
        /// The `OCI-Subject` header: set by registries that index referrers themselves.
        package var subject: String?
    }

    /// `PUT /v2/<name>/manifests/<reference>` with `Content-Type` = `mediaType`.
    @discardableResult
    package func pushManifest(_ repository: String, reference: String, _ bytes: [UInt8], mediaType: String) throws -> PutResult {
        let r = try send("PUT", url("\(repository)/manifests/\(reference)"), repository: repository, push: true,
                         headers: ["Content-Type": mediaType], body: bytes)
        let text = (try? r.readBody(limit: 64 << 10, what: "response")).map { String(decoding: $0, as: UTF8.self) } ?? ""
        guard r.status == 201 || r.status == 200 else {
            let detail = RegistryClient.errorDetail(text)
            throw ImprintError(.failure, "registry \(host) rejected manifest \(repository):\(reference) (\(r.status))\(detail.isEmpty ? "" : ": " + detail)")
        }
        return PutResult(digest: SHA256.hash(bytes), subject: r.header("OCI-Subject"))
    }

    /// `GET /v2/<name>/referrers/<digest>` (distribution-spec 1.1).
    /// - Returns: the descriptors listed (filtered by `artifactType` here if the registry did not), or nil when
    ///   the registry does not implement the referrers API (404 or another non-200 answer).
    package func referrers(_ repository: String, _ digest: Digest, artifactType: String?) throws -> [Descriptor]? {
        var c = URLComponents(url: url("\(repository)/referrers/\(digest.prefixed)"), resolvingAgainstBaseURL: false)!
        if let artifactType { c.queryItems = [URLQueryItem(name: "artifactType", value: artifactType)] }
        var next: URL? = c.url!
        var out: [Descriptor] = []
        var pages = 0
        while let page = next {
            pages += 1
            guard pages <= 100 else { throw ImprintError.badInput("referrers of \(digest) in \(host)/\(repository) span more than 100 pages") }
            let r = try send("GET", page, repository: repository, headers: ["Accept": MediaType.ociIndex])
            guard r.status == 200 else {
                r.discard()
                if pages == 1 { return nil }
                throw ImprintError(.failure, "registry \(host) answered \(r.status) to page \(pages) of the referrers of \(digest)")
            }
            let ct = r.header("Content-Type") ?? ""
            guard ct.hasPrefix(MediaType.ociIndex) || ct.hasPrefix("application/json") else {
                r.discard()
                if pages == 1 { return nil }
                throw ImprintError.badInput("registry \(host) sent page \(pages) of the referrers of \(digest) as \(ct)")
            }
            let index = try OCIJSON.decode(ImageIndex.self, from: try r.readBody(limit: 16 << 20, what: "referrers"),
                                           what: "referrers of \(digest) in \(host)/\(repository)")
            out += index.manifests.filter { artifactType == nil || $0.artifactType == artifactType }
            next = r.header("Link").flatMap { LinkHeader.next($0, base: page) }
        }
        return out
    }

    /// The first error message of a distribution-spec error body (`{"errors":[{"code","message"}]}`).
    package static func errorDetail(_ body: String) -> String {
        // The detail only adds to a message about a failure already found: a body that is not this shape adds nothing.
        guard let body = try? OCIJSON.decode(RegistryErrorBody.self, from: Array(body.utf8), what: "error"),
              let first = body.errors.first else { return "" }
        return [first.code, first.message].compactMap { $0 }.joined(separator: " ")
    }
}
