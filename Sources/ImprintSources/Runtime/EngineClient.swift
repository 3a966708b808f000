import Foundation

/// What a container engine says about one container (Docker Engine API `GET /containers/{id}/json`, which podman's
/// Docker-compatible service answers too).
package struct ContainerDescription: Sendable {
    package struct Mount: Sendable, Equatable {
        /// `volume`, `bind`, `tmpfs`…
        package var type: String
        /// The volume's name, or the host path of a bind mount.
        package var source: String
        /// Where it is mounted in the container.
        package var destination: String
    }

    package var id: String
    package var name: String
    /// The image the container was created from (`Image`: an image ID, `sha256:…`).
    package var imageID: String
    /// The image reference it was created with (`Config.Image`, e.g. `app:1.4`).
    package var imageName: String
    package var running: Bool
    /// The main process as the host sees it (0 when not running).
    package var pid: Int32
    package var startedAt: String
    package var mounts: [Mount]
}

/// A Docker Engine API client over the engine's unix socket: `DOCKER_HOST` (`unix://…`), else `CONTAINER_HOST`
/// (podman's), else the usual sockets. Only reads: inspect a container, resolve an image name.
package final class EngineClient {
    package let socket: String
    /// `docker` or `podman`, for messages.
    package let engine: String
    private let http: HTTPClient

    /// - Throws: `notFound` naming the places looked at when no engine socket exists.
    package init(engine: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.engine = engine
        var candidates: [String] = []
        func unixPath(_ v: String?) -> String? {
            guard let v, v.hasPrefix("unix://") else { return nil }
            return String(v.dropFirst(7))
        }
        let docker = unixPath(environment["DOCKER_HOST"]), podman = unixPath(environment["CONTAINER_HOST"])
        if engine == "podman" {
            candidates += [podman, docker].compactMap { $0 }
            if let xdg = environment["XDG_RUNTIME_DIR"] { candidates.append(xdg + "/podman/podman.sock") }
            candidates += ["/run/podman/podman.sock", "/var/run/docker.sock"]
        } else {
            candidates += [docker, podman].compactMap { $0 }
            candidates += ["/var/run/docker.sock", "/run/podman/podman.sock"]
        }
        guard let s = candidates.first(where: { access($0, F_OK) == 0 }) else {
            throw ImprintError(.notFound, "no \(engine) engine socket found (looked at \(candidates.joined(separator: ", "))); set DOCKER_HOST=unix://PATH")
        }
        socket = s
        var config = HTTPClient.Configuration()
        config.unixSocket = s
        config.idleTimeout = 30
        config.requestTimeout = 60
        config.environment = environment
        http = HTTPClient(config)
    }

    private func get(_ path: String) throws -> (Int, [String: Any]) {
        let url = URL(string: "http://engine\(path)")!
        let r: HTTPResponse
        do { r = try http.send(HTTPRequest(method: "GET", url: url, headers: ["Host": "engine"])) } catch let e as TransportError {
            throw ImprintError(.failure, "cannot talk to the \(engine) engine at \(socket): \(e.message)")
        }
        let body = try r.readBody(limit: 16 << 20, what: "\(engine) engine answer")
        if r.status == 404 { return (404, [:]) }
        guard r.status == 200 else {
            let detail = (try? JSONRead.object(body, what: "error"))?["message"] as? String ?? ""
            throw ImprintError(.failure, "the \(engine) engine answered \(r.status) to GET \(path)\(detail.isEmpty ? "" : ": " + detail)")
        }
        return (200, try JSONRead.object(body, what: "\(engine) engine answer to GET \(path)"))
    }

    /// One container as the engine lists it (`GET /containers/json`).
    package struct Listed: Sendable {
        package var id: String
        package var name: String
        package var labels: [String: String]
        package var running: Bool
        /// The image reference it was created with.
        package var image: String
    }

    /// Every container (running or not) carrying all of `labels` (`key=value`).
    package func containers(labels: [String]) throws -> [Listed] {
        let filters = try JSONSerialization.data(withJSONObject: ["label": labels])
        let query = String(decoding: filters, as: UTF8.self).addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        let path = "/containers/json?all=1&filters=\(query)"
        let url = URL(string: "http://engine\(path)")!
        let r: HTTPResponse
        do { r = try http.send(HTTPRequest(method: "GET", url: url, headers: ["Host": "engine"])) } catch let e as TransportError {
            throw ImprintError(.failure, "cannot talk to the \(engine) engine at \(socket): \(e.message)")
        }
        let body = try r.readBody(limit: 64 << 20, what: "\(engine) engine answer")
        guard r.status == 200 else { throw ImprintError(.failure, "the \(engine) engine answered \(r.status) to GET /containers/json") }
        guard let list = try JSONSerialization.jsonObject(with: Data(body)) as? [[String: Any]] else {
            throw ImprintError(.failure, "the \(engine) engine's container list is not a JSON array")
        }
        return list.map { c in
            var name = (c["Names"] as? [String])?.first ?? c["Id"] as? String ?? "?"
            if name.hasPrefix("/") { name.removeFirst() }
            return Listed(id: c["Id"] as? String ?? "", name: name, labels: c["Labels"] as? [String: String] ?? [:],
                          running: (c["State"] as? String) == "running", image: c["Image"] as? String ?? "")
        }
    }

    /// Writes image `reference` as the engine exports it (`GET /images/NAME/get`: a docker-archive) to `path`.
    package func saveImage(_ reference: String, to path: String) throws {
        let escaped = reference.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? reference
        let url = URL(string: "http://engine/images/\(escaped)/get")!
        let r: HTTPResponse
        do { r = try http.send(HTTPRequest(method: "GET", url: url, headers: ["Host": "engine"])) } catch let e as TransportError {
            throw ImprintError(.failure, "cannot talk to the \(engine) engine at \(socket): \(e.message)")
        }
        guard r.status == 200 else { throw ImprintError(.notFound, "the \(engine) engine has no image \(reference) (\(r.status))") }
        try AtomicFile.write(to: path) { fd in try r.body.forEachChunk(bufferSize: 1 << 20) { try AtomicFile.writeAll(fd, $0, path: path) } }
    }

    /// Inspects container `name` (a name or an ID).
    /// - Throws: `notFound` when the engine has no such container.
    package func container(_ name: String) throws -> ContainerDescription {
        let escaped = name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name
        let (status, o) = try get("/containers/\(escaped)/json")
        guard status == 200 else { throw ImprintError(.notFound, "the \(engine) engine has no container \(name)") }
        let state = o["State"] as? [String: Any] ?? [:]
        let config = o["Config"] as? [String: Any] ?? [:]
        let mounts = (o["Mounts"] as? [[String: Any]] ?? []).map { m in
            ContainerDescription.Mount(type: m["Type"] as? String ?? "", source: (m["Name"] as? String).flatMap { $0.isEmpty ? nil : $0 } ?? m["Source"] as? String ?? "",
                                       destination: m["Destination"] as? String ?? "")
        }
        var cname = o["Name"] as? String ?? name
        if cname.hasPrefix("/") { cname.removeFirst() }
        return ContainerDescription(id: o["Id"] as? String ?? "", name: cname, imageID: Self.normaliseImageID(o["Image"] as? String ?? ""),
                                    imageName: config["Image"] as? String ?? "", running: state["Running"] as? Bool ?? false,
                                    pid: Int32((state["Pid"] as? NSNumber)?.intValue ?? 0), startedAt: state["StartedAt"] as? String ?? "",
                                    mounts: mounts)
    }

    /// The ID the engine's image name `reference` points at now, or nil when it has none.
    package func imageID(_ reference: String) throws -> String? {
        guard !reference.isEmpty else { return nil }
        let escaped = reference.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? reference
        let (status, o) = try get("/images/\(escaped)/json")
        guard status == 200 else { return nil }
        return (o["Id"] as? String).map(Self.normaliseImageID)
    }

    package static func normaliseImageID(_ s: String) -> String {
        if s.hasPrefix("sha256:") { return s }
        if s.count == 64, s.allSatisfy(\.isHexDigit) { return "sha256:" + s }
        return s
    }
}
