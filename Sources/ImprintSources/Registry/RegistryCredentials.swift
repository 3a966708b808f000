import Foundation

/// A user name and password for one registry, and where they came from (for messages).
package struct RegistryCredentials: Sendable, Equatable {
    package var username: String
    package var password: String
    /// `IMPRINT_REGISTRY_USER` or the config file path.
    package var source: String

    package init(username: String, password: String, source: String) {
        self.username = username; self.password = password; self.source = source
    }

    /// The `Authorization: Basic` value.
    package var basicAuthorization: String {
        "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
    }

    /// Credentials for `host`: `IMPRINT_REGISTRY_USER`/`IMPRINT_REGISTRY_PASSWORD` first, then the `auths`
    /// entry for the host in `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), whose `auth` field
    /// is base64 `user:pass` (or `username`/`password` fields). Credential helpers are not consulted.
    /// - Throws: `badInput` when the config file exists but cannot be parsed.
    package static func lookup(host: String, environment: [String: String]) throws -> RegistryCredentials? {
        if let user = environment["IMPRINT_REGISTRY_USER"], !user.isEmpty {
            return RegistryCredentials(username: user, password: environment["IMPRINT_REGISTRY_PASSWORD"] ?? "",
                                       source: "IMPRINT_REGISTRY_USER")
        }
        let dir: String
        if let d = environment["DOCKER_CONFIG"], !d.isEmpty {
            dir = d
        } else if let home = environment["HOME"], !home.isEmpty {
            dir = home + "/.docker"
        } else {
            return nil
        }
        let path = dir + "/config.json"
        guard let data = try FileBytes.read(path) else { return nil }
        let config = try OCIJSON.decode(DockerConfigFile.self, from: data, what: path)
        let auths = config.auths ?? [:]
        // Sorted, so two keys naming the same registry (`host` and `https://host/v1/`) always give the same answer.
        for key in auths.keys.sorted() where normaliseHost(key) == host.lowercased() {
            let entry = auths[key]!
            if let auth = entry.auth, !auth.isEmpty {
                guard let decoded = Data(base64Encoded: auth), let text = String(data: decoded, encoding: .utf8),
                      let colon = text.firstIndex(of: ":") else {
                    throw ImprintError.badInput("\(path): the auth entry for \(key) is not base64 of user:password")
                }
                return RegistryCredentials(username: String(text[..<colon]), password: String(text[text.index(after: colon)...]), source: path)
            }
            if let u = entry.username, let p = entry.password {
                return RegistryCredentials(username: u, password: p, source: path)
            }
        }
        return nil
    }

    /// `https://host:5000/v1/` → `host:5000`, as Docker matches `auths` keys.
    package static func normaliseHost(_ key: String) -> String {
        var k = Substring(key.lowercased())
        for p in ["https://", "http://"] where k.hasPrefix(p) { k = k.dropFirst(p.count) }
        if let slash = k.firstIndex(of: "/") { k = k[..<slash] }
        return String(k)
    }
}

/// A parsed `WWW-Authenticate` challenge (RFC 7235): scheme and parameters.
package struct AuthChallenge: Equatable, Sendable {
    package var scheme: String
    package var parameters: [String: String]

    /// Parses `Bearer realm="https://auth/token",service="registry",scope="repository:x:pull,push"` (quoted values
    /// may contain commas) or `Basic realm="Registry"`.
    package init?(header: String) {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return nil }
        let schemeEnd = trimmed.firstIndex(of: " ") ?? trimmed.endIndex
        scheme = String(trimmed[..<schemeEnd]).lowercased()
        parameters = [:]
        let chars = Array(trimmed[schemeEnd...])
        var i = 0
        while i < chars.count {
            while i < chars.count && (chars[i] == " " || chars[i] == ",") { i += 1 }
            var key = ""
            while i < chars.count && chars[i] != "=" && chars[i] != "," { key.append(chars[i]); i += 1 }
            guard i < chars.count, chars[i] == "=" else { continue }
            i += 1
            var value = ""
            if i < chars.count && chars[i] == "\"" {
                i += 1
                while i < chars.count && chars[i] != "\"" {
                    if chars[i] == "\\" && i + 1 < chars.count { i += 1 }
                    value.append(chars[i]); i += 1
                }
                i += 1
            } else {
                while i < chars.count && chars[i] != "," { value.append(chars[i]); i += 1 }
            }
            parameters[key.trimmingCharacters(in: .whitespaces).lowercased()] = value.trimmingCharacters(in: .whitespaces)
        }
    }
}

/// The `Link` header of paginated registry answers (RFC 8288; distribution-spec uses `rel="next"`).
package enum LinkHeader {
    /// The target of the `rel="next"` link, resolved against `base`; nil when there is none or it is malformed.
    package static func next(_ header: String, base: URL) -> URL? {
        var rest = Substring(header)
        while let open = rest.firstIndex(of: "<") {
            guard let close = rest[open...].firstIndex(of: ">") else { return nil }
            let target = rest[rest.index(after: open)..<close]
            var params = rest[rest.index(after: close)...]
            if let nextLink = params.firstIndex(of: "<") { params = params[..<nextLink] }
            let isNext = params.split(separator: ";").contains { p in
                let kv = p.split(separator: "=", maxSplits: 1)
                guard kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces).lowercased() == "rel" else { return false }
                let v = kv[1].trimmingCharacters(in: CharacterSet(charactersIn: " \t,\""))
                return v.split(separator: " ").contains("next")
            }
            if isNext {
                guard let u = URL(string: String(target), relativeTo: base)?.absoluteURL,
                      u.scheme == base.scheme, u.host == base.host, u.port == base.port else { return nil }
                return u
            }
            rest = rest[rest.index(after: close)...]
        }
        return nil
    }
}
