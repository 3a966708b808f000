import Foundation

/// A token service's answer (distribution `docs/spec/auth/token.md`, "Token Response Fields"): `token`, or
/// `access_token` as OAuth 2 names it.
package struct TokenResponse: Decodable {
    package var token: String?
    package var accessToken: String?
    package var expiresIn: Int?

    package enum CodingKeys: String, CodingKey { case token, accessToken = "access_token", expiresIn = "expires_in" }
}

/// An error body (distribution-spec `spec.md`, "Error Codes"): `{"errors": [{"code", "message", "detail"}]}`.
package struct RegistryErrorBody: Decodable {
    package struct Entry: Decodable {
        package var code: String?
        package var message: String?
    }
    package var errors: [Entry]
}

/// The part of Docker's client configuration (`$DOCKER_CONFIG/config.json`, docker/cli `configfile`) that holds
/// registry credentials: `auths`, keyed by registry, each `auth` (base64 of `user:password`) or the two apart.
package struct DockerConfigFile: Decodable {
    package struct Auth: Decodable {
        package var auth: String?
        package var username: String?
        package var password: String?
    }
    package var auths: [String: Auth]?
}
