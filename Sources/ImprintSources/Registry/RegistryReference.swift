import Foundation

/// An image in a registry, written `registry://HOST[:PORT]/REPO[:TAG]` or `registry://HOST[:PORT]/REPO@sha256:HEX`
/// (distribution-spec names: `REPO` is one or more lower-case path components).
package struct RegistryReference: Equatable, Sendable, CustomStringConvertible {
    package static let scheme = "registry://"

    /// `host[:port]` as written.
    package var host: String
    /// The repository name (`library/alpine`).
    package var repository: String
    /// The tag, when the reference names one (`latest` when neither tag nor digest was given).
    package var tag: String?
    /// The manifest digest, when the reference pins one (it wins over a tag).
    package var digest: Digest?

    package init(host: String, repository: String, tag: String? = nil, digest: Digest? = nil) {
        self.host = host; self.repository = repository; self.tag = tag; self.digest = digest
    }

    /// True when `spec` uses the `registry://` scheme.
    package static func isRegistry(_ spec: String) -> Bool { spec.hasPrefix(scheme) }

    /// Parses a `registry://` reference.
    /// - Parameter requireReference: false to accept a bare repository (`registry://host/repo`) without
    ///   defaulting the tag to `latest` (history transport).
    /// - Throws: `badInput` naming what is malformed.
    package init(parsing spec: String, requireReference: Bool = true) throws {
        guard spec.hasPrefix(RegistryReference.scheme) else {
            throw ImprintError.badInput("\(spec) is not a registry reference (expected registry://HOST[:PORT]/REPO[:TAG|@sha256:…])")
        }
        let rest = spec.dropFirst(RegistryReference.scheme.count)
        guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex else {
            throw ImprintError.badInput("\(spec): missing repository (expected registry://HOST[:PORT]/REPO[:TAG|@sha256:…])")
        }
        host = String(rest[..<slash])
        var name = String(rest[rest.index(after: slash)...])
        if let at = name.firstIndex(of: "@") {
            let d = String(name[name.index(after: at)...])
            guard d.hasPrefix("sha256:"), d.count == 71, let parsed = Digest(hex: d) else {
                throw ImprintError.badInput("\(spec): invalid digest \"\(d)\" (expected sha256:<64 hex digits>)")
            }
            digest = parsed
            name = String(name[..<at])
        }
        let lastSlash = name.lastIndex(of: "/") ?? name.startIndex
        if let colon = name[lastSlash...].lastIndex(of: ":") {
            let t = String(name[name.index(after: colon)...])
            guard RegistryReference.isValidTag(t) else { throw ImprintError.badInput("\(spec): invalid tag \"\(t)\"") }
            tag = t
            name = String(name[..<colon])
        }
        guard RegistryReference.isValidRepository(name) else {
            throw ImprintError.badInput("\(spec): invalid repository name \"\(name)\" (lower-case letters, digits, . _ - separated by /)")
        }
        repository = name
        if tag == nil && digest == nil && requireReference { tag = "latest" }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "?" || $0 == "#" }) else {
            throw ImprintError.badInput("\(spec): invalid registry host \"\(host)\"")
        }
    }

    /// What to put after `/manifests/`: the digest when pinned, else the tag.
    package var manifestReference: String { digest?.prefixed ?? tag ?? "latest" }

    /// `HOST/REPO:TAG` or `HOST/REPO@sha256:…`.
    package var description: String {
        if let digest { return "\(host)/\(repository)@\(digest.prefixed)" }
        if let tag { return "\(host)/\(repository):\(tag)" }
        return "\(host)/\(repository)"
    }

    /// The same repository with another tag or digest.
    package func with(tag: String? = nil, digest: Digest? = nil) -> RegistryReference {
        RegistryReference(host: host, repository: repository, tag: tag, digest: digest)
    }

    /// The `registry://` spelling.
    package var spec: String { RegistryReference.scheme + description }

    /// Hosts spoken to over plain HTTP without `--insecure`: the loopback names.
    package var isLoopback: Bool {
        let h = hostName.lowercased()
        return h == "localhost" || h.hasPrefix("127.") || h == "[::1]" || h == "::1"
    }

    /// The host without its port.
    package var hostName: String {
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") { return String(host[...close]) }
        if let colon = host.lastIndex(of: ":") { return String(host[..<colon]) }
        return host
    }

    package static func isValidTag(_ t: String) -> Bool {
        guard let first = t.utf8.first, t.utf8.count <= 128 else { return false }
        func word(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F }
        return word(first) && t.utf8.allSatisfy { word($0) || $0 == 0x2E || $0 == 0x2D }
    }

    package static func isValidRepository(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 255 else { return false }
        for comp in name.split(separator: "/", omittingEmptySubsequences: false) {
            guard let f = comp.utf8.first, let l = comp.utf8.last else { return false }
            func alnum(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7A) }
            guard alnum(f), alnum(l), comp.utf8.allSatisfy({ alnum($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }) else { return false }
        }
        return true
    }
}

/// How imprint reaches registries; set once from the command line (`--insecure`) or the environment.
package struct RegistryOptions: Sendable {
    /// Plain HTTP for every host (loopback hosts always use it).
    package var insecure = false
    /// Seconds to wait for the next bytes of a response (`IMPRINT_REGISTRY_TIMEOUT`, default 30).
    package var timeout: TimeInterval = 30
    /// Tries per request on 429, 5xx and connection failures (`IMPRINT_REGISTRY_RETRIES`, default 4).
    package var attempts = 4
    /// First back-off delay in seconds; doubles on each retry.
    package var backoff: TimeInterval = 0.25
    /// Seconds one request may take in all, body included (`IMPRINT_REQUEST_TIMEOUT`, default 600).
    package var requestTimeout: TimeInterval = 600
    /// Seconds the whole command may take (`IMPRINT_DEADLINE` or `--deadline`, default 3600), counted from
    /// `commandStart`.
    package var deadline: TimeInterval = 3600
    package var commandStart = Deadline.now()
    package var environment: [String: String]

    package init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
        if let v = environment["IMPRINT_REGISTRY_INSECURE"], v == "1" || v.lowercased() == "true" { insecure = true }
        if let t = environment["IMPRINT_REGISTRY_TIMEOUT"].flatMap(Double.init), t > 0 { timeout = t }
        if let a = environment["IMPRINT_REGISTRY_RETRIES"].flatMap(Int.init), a >= 1 { attempts = a }
        if let t = environment["IMPRINT_REQUEST_TIMEOUT"].flatMap(Double.init), t > 0 { requestTimeout = t }
        if let t = environment["IMPRINT_DEADLINE"].flatMap(Double.init), t > 0 { deadline = t }
    }

    /// The HTTP client settings these options stand for.
    package var httpConfiguration: HTTPClient.Configuration {
        var c = HTTPClient.Configuration()
        c.idleTimeout = timeout
        c.requestTimeout = requestTimeout
        c.commandDeadline = (Deadline(nanos: commandStart.nanos.addingReportingOverflow(UInt64(min(deadline, 1e9) * 1e9)).partialValue), deadline)
        c.environment = environment
        return c
    }
}
