import ArgumentParser
import Foundation
import ImprintCore
#if canImport(Glibc)
import Glibc
#endif

/// Runs a command body, turning imprint errors into one line on stderr and exit status 2.
@discardableResult
func runReportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as ImprintError {
        Console.err("imprint: error: \(e.message)")
        throw ExitCode(2)
    } catch let e as ExitCode {
        throw e
    } catch let e as CleanExit {
        throw e
    } catch {
        Console.err("imprint: error: \(error)")
        throw ExitCode(2)
    }
}

/// A command whose output is live (a child process's, a rollout's polls): no progress line over it.
protocol LiveOutput {}

/// Ends a command with the status its result carries (`ExitStatusReporting`; `imprint run` its child's): the one
/// place a command exits non-zero without an error.
func conclude(_ status: Int32) throws {
    if status != 0 { throw ExitCode(status) }
}

func conclude(_ result: some ExitStatusReporting) throws { try conclude(result.exitStatus) }

extension IgnoreSemantics: ExpressibleByArgument {}
extension FingerprintRequest.Format: ExpressibleByArgument {}

/// `-f`, `--ignore-file`, `--ignore-semantics`: which ignore file the builder reads, and how it reads it.
struct IgnoreOptions: ParsableArguments {
    @Option(name: [.customShort("f"), .customLong("file")], help: "The Dockerfile; <Dockerfile>.dockerignore next to it replaces .dockerignore.", completion: .file()) var dockerfile: String?
    @Option(name: .customLong("ignore-file"), help: "Use this ignore file instead of the context's.", completion: .file()) var ignoreFile: String?
    @Option(name: .customLong("ignore-semantics"), help: "buildkit (current Docker; the default), classic (Docker's legacy builder, DOCKER_BUILDKIT=0) or buildah (buildah and podman build).") var semantics: IgnoreSemantics = .buildkit
}

/// `--format text|json` for commands whose output is text or JSON (`--json` stays as a hidden alias).
struct TextOrJSONFormat: ParsableArguments {
    enum Format: String, CaseIterable, ExpressibleByArgument { case text, json }

    @Option(help: "Output format: text (for people) or json (see schemas/).") var format: Format = .text
    @Flag(name: .customLong("json"), help: .hidden) var jsonAlias = false
    var json: Bool { format == .json || jsonAlias }
}

/// `-q/--quiet`: no progress and no diagnostics other than errors.
struct QuietFlag: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Print no progress and no diagnostics but errors.") var quiet = false
}

/// The forms a source argument takes, for every command that reads one (one text, so every help says the same).
enum SourceForms {
    static let image = "an OCI layout directory (or oci:DIR[:TAG]), an oci-archive or docker-archive tar (or oci-archive:FILE, docker-archive:FILE; optionally :TAG), registry://HOST[:PORT]/REPO:TAG or @sha256:…"
    static let any = "A directory, a filesystem tar (plain or gzip), - for a tar stream on stdin, \(image), a running container or process (docker:NAME, podman:NAME, pid:N)"
    static let verifyTarget = any + ", or http(s)://… (a running Python process's probe)."
    static let diffSide = any + ", an imprint manifest file, or history:REF (a history record)."
}

/// `--platform os/arch[/variant]`: which image of a multi-platform index.
struct PlatformOption: ParsableArguments {
    @Option(help: "Choose this platform (os/arch[/variant]) from a multi-platform index.") var platform: String?

    func validate() throws {
        do { _ = try platform.map { try Platform(parsing: $0) } } catch let e as ImprintError { throw ValidationError(e.message) }
    }
}

/// `--attest DIR --key KEY` of `run` and `pipeline`: each step's in-toto attestations, signed.
struct StepAttestFlags: ParsableArguments {
    @Option(name: .customLong("attest"), help: ArgumentHelp("Write each step's in-toto attestations into this directory: NAME.link.dsse.json (link predicate v0.3, DSSE) and NAME.KEYID8.link (a classic in-toto link for in-toto-verify); needs --key.", valueName: "dir"), completion: .directory)
    var directory: String?
    @Option(help: "The Ed25519 private key (PEM) that signs the attestations.", completion: .file()) var key: String?

    func validate() throws {
        if directory != nil && key == nil { throw ValidationError("--attest needs --key KEY (an Ed25519 private key, PEM)") }
    }

    func attestor() throws -> StepAttestor? {
        guard let directory, let key else { return nil }
        return StepAttestor(directory: directory, key: try Ed25519PrivateKey(pemFile: key))
    }
}

/// `--attest PATH --key KEY`: signed in-toto attestations (DSSE, Ed25519) of what a command did.
struct AttestFlags: ParsableArguments {
    @Option(name: .customLong("attest"), help: ArgumentHelp("Write a signed in-toto attestation (DSSE envelope) here; needs --key.", valueName: "path"), completion: .file()) var path: String?
    @Option(name: .customLong("key"), help: "The Ed25519 private key (PEM) that signs attestations (from imprint keygen or openssl genpkey).", completion: .file()) var key: String?

    func validate() throws {
        if path != nil && key == nil { throw ValidationError("--attest needs --key KEY (an Ed25519 private key, PEM)") }
    }

    func signingKey() throws -> Ed25519PrivateKey? { try key.map { try Ed25519PrivateKey(pemFile: $0) } }
}
