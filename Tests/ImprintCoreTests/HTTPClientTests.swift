import Foundation
import Testing
@testable import ImprintCore
#if canImport(Glibc)
import Glibc
#endif

/// The HTTP client against real servers on 127.0.0.1 (Fixtures/http_lab.py): TLS by Python's ssl module (OpenSSL)
/// with certificates made by the `openssl` command, a plain HTTP server and a CONNECT proxy.
final class HTTPLab {
    let dir: String
    let process = Process()
    let stdin = Pipe()
    let https: Int, http: Int, proxy: Int
    var ca: String { dir + "/ca.pem" }
    var otherCA: String { dir + "/other-ca.pem" }
    var proxyLog: String { dir + "/proxy.log" }

    init() throws {
        try ArchiveFixture.require("openssl")
        try ArchiveFixture.require("python3")
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("imprint-http-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // A CA, a server certificate for registry.test and 127.0.0.1 signed by it, and an unrelated CA.
        _ = try ArchiveFixture.shell("""
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=imprint-test-ca \
            -keyout ca.key -out ca.pem 2>/dev/null
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=other-ca \
            -keyout other-ca.key -out other-ca.pem 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=registry.test \
            -keyout server.key -out server.csr 2>/dev/null
        printf 'subjectAltName=DNS:registry.test,IP:127.0.0.1\\n' > san.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext \
            -out server.pem 2>/dev/null
        """, cwd: dir)
        let script = try Fixture.url("http_lab.py").path
        let stdout = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, dir + "/server.pem", dir + "/server.key", dir + "/proxy.log"]
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = stdout.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let ports = try JSONSerialization.jsonObject(with: line) as? [String: Int] ?? [:]
        guard let a = ports["https"], let b = ports["http"], let c = ports["proxy"] else {
            throw ArchiveFixture.Failure("http_lab.py did not start: \(String(decoding: line, as: UTF8.self))")
        }
        (https, http, proxy) = (a, b, c)
    }

    deinit {
        try? stdin.fileHandleForWriting.close()
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: dir)
    }

    func client(_ env: [String: String] = [:], idle: Double = 10) -> HTTPClient {
        var c = HTTPClient.Configuration()
        c.environment = env
        c.idleTimeout = idle
        c.requestTimeout = 30
        return HTTPClient(c)
    }

    func get(_ client: HTTPClient, _ url: String, headers: [String: String] = [:]) throws -> (Int, String) {
        let r = try client.send(HTTPRequest(method: "GET", url: URL(string: url)!, headers: headers))
        return (r.status, String(decoding: try r.readBody(what: url), as: UTF8.self))
    }

    func failure(_ client: HTTPClient, _ url: String) -> String {
        do {
            _ = try get(client, url)
            return "no error"
        } catch {
            return "\(error)"
        }
    }
}

@Suite struct HTTPClientTests {
    @Test func tlsWithAPrivateCAFromSSL_CERT_FILE() throws {
        let lab = try HTTPLab()
        let client = lab.client(["SSL_CERT_FILE": lab.ca])
        #expect(try lab.get(client, "https://127.0.0.1:\(lab.https)/hello") == (200, "hello"))
        // An IP address gets no SNI (RFC 6066); the certificate's IP SAN is what is checked.
        #expect(try lab.get(client, "https://127.0.0.1:\(lab.https)/sni") == (200, ""))
    }

    @Test func tlsRefusesAnUntrustedCertificateAndAWrongName() throws {
        let lab = try HTTPLab()
        let untrusted = lab.failure(lab.client(["SSL_CERT_FILE": lab.otherCA]), "https://127.0.0.1:\(lab.https)/hello")
        #expect(untrusted.contains("127.0.0.1:\(lab.https)") && untrusted.contains("not trusted"), "\(untrusted)")
        // The system bundle does not know the test CA either.
        let system = lab.failure(lab.client([:]), "https://127.0.0.1:\(lab.https)/hello")
        #expect(system.contains("not trusted"), "\(system)")
        // localhost is 127.0.0.1, but the certificate does not name it.
        let wrongName = lab.failure(lab.client(["SSL_CERT_FILE": lab.ca]), "https://localhost:\(lab.https)/hello")
        #expect(wrongName.contains("localhost") && wrongName.lowercased().contains("hostname mismatch"), "\(wrongName)")
        // Plain HTTP spoken to a TLS port fails with a reason, not a hang.
        let plain = lab.failure(lab.client([:], idle: 2), "http://127.0.0.1:\(lab.https)/hello")
        #expect(plain != "no error")
    }

    @Test func proxiesThroughCONNECTWithSNIAndHonoursNO_PROXY() throws {
        let lab = try HTTPLab()
        let env = ["SSL_CERT_FILE": lab.ca, "HTTPS_PROXY": "http://127.0.0.1:\(lab.proxy)"]
        // registry.test resolves nowhere but in the proxy: the request can only succeed through it.
        let client = lab.client(env)
        #expect(try lab.get(client, "https://registry.test:\(lab.https)/hello") == (200, "hello"))
        #expect(try lab.get(client, "https://registry.test:\(lab.https)/sni") == (200, "registry.test"))
        let log = try String(contentsOfFile: lab.proxyLog, encoding: .utf8)
        #expect(log.contains("CONNECT registry.test:\(lab.https) HTTP/1.1"), "\(log)")
        // Lower-case variables are read too, and NO_PROXY sends the request direct (where the name does not resolve).
        var bypass = ["SSL_CERT_FILE": lab.ca, "https_proxy": "127.0.0.1:\(lab.proxy)", "no_proxy": "example.org,.test"]
        let direct = lab.failure(lab.client(bypass), "https://registry.test:\(lab.https)/hello")
        #expect(direct.contains("registry.test") && direct != "no error", "\(direct)")
        bypass["no_proxy"] = "example.org"
        #expect(try lab.get(lab.client(bypass), "https://registry.test:\(lab.https)/hello") == (200, "hello"))
        // Loopback is never proxied.
        let before = try String(contentsOfFile: lab.proxyLog, encoding: .utf8).split(separator: "\n").count
        #expect(try lab.get(lab.client(env), "https://127.0.0.1:\(lab.https)/hello") == (200, "hello"))
        #expect(try String(contentsOfFile: lab.proxyLog, encoding: .utf8).split(separator: "\n").count == before)
    }

    @Test func bodiesFramedByLengthChunksAndClose() throws {
        let lab = try HTTPLab()
        for base in ["http://127.0.0.1:\(lab.http)", "https://127.0.0.1:\(lab.https)"] {
            let client = lab.client(["SSL_CERT_FILE": lab.ca])
            #expect(try lab.get(client, base + "/chunked") == (200, "chunked body, three parts"))
            #expect(try lab.get(client, base + "/close") == (200, "until the connection closes"))
            #expect(try lab.get(client, base + "/nothing").0 == 404)
        }
    }

    @Test func keepsConnectionsAlive() throws {
        let lab = try HTTPLab()
        for base in ["http://127.0.0.1:\(lab.http)", "https://127.0.0.1:\(lab.https)"] {
            let client = lab.client(["SSL_CERT_FILE": lab.ca])
            let first = try lab.get(client, base + "/conn").1
            let second = try lab.get(client, base + "/conn").1
            #expect(!first.isEmpty && first == second, "\(base): a new connection per request (\(first), \(second))")
            // After a close-delimited body the connection cannot be reused; the next request opens a new one.
            _ = try lab.get(client, base + "/close")
            #expect(try lab.get(client, base + "/hello") == (200, "hello"))
        }
    }

    @Test func followsRedirectsDroppingAuthorizationAcrossOrigins() throws {
        let lab = try HTTPLab()
        let client = lab.client(["SSL_CERT_FILE": lab.ca])
        let auth = ["Authorization": "Bearer secret"]
        let same = "https://127.0.0.1:\(lab.https)/redirect?to=/auth"
        #expect(try lab.get(client, same, headers: auth) == (200, "Bearer secret"))
        let other = "https://127.0.0.1:\(lab.https)/redirect?to=http://127.0.0.1:\(lab.http)/auth"
        #expect(try lab.get(client, other, headers: auth) == (200, ""))
        let loop = lab.failure(client, "https://127.0.0.1:\(lab.https)/loop")
        #expect(loop.contains("more than 10 redirects"), "\(loop)")
    }
}
