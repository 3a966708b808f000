import Foundation

/// A token service's answer (distribution `docs/spec/auth/token.md`, "Token Response Fields"): `token`, or
/// `access_token` as OAuth 2 names it.
struct TokenResponse: Decodable {
    var token: String?
    var accessToken: String?
    var expiresIn: Int?

    enum CodingKeys: String, CodingKey { case token, accessToken = "access_token", expiresIn = "expires_in" }
}

/// An error body (distribution-spec `spec.md`, "Error Codes"): `{"errors": [{"code", "message", "detail"}]}`.
struct RegistryErrorBody: Decodable {
    struct Entry: Decodable {
        var code: String?
        var message: String?
    }
    var errors: [Entry]
}

/// The part of Docker's client configuration (`$DOCKER_CONFIG/config.json`, docker/cli `configfile`) that holds
/// registry credentials: `auths`, keyed by registry, each `auth` (base64 of `user:password`) or the two apart.
struct DockerConfigFile: Decodable {
    struct Auth: Decodable {
        var auth: String?
        var username: String?
        var password: String?
    }
    var auths: [String: Auth]?
}
