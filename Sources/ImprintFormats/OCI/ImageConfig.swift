import Foundation

/// An image configuration (image-spec `config.md`, "Properties"; Docker's image JSON has the same shape plus fields
/// kept in `unknown`): platform, the container defaults, the layers' diff_ids and the build history.
package struct ImageConfig: Codable, Equatable, Sendable {
    package var created: String?
    package var author: String?
    package var architecture: String
    package var os: String
    package var osVersion: String?
    package var osFeatures: [String]?
    package var variant: String?
    /// `config`: the defaults a container of this image runs with.
    package var config: ContainerConfig?
    package var rootfs: RootFS
    package var history: [History]?
    package var unknown = UnknownFields()

    package enum CodingKeys: String, CodingKey, CaseIterable {
        case created, author, architecture, os, variant, config, rootfs, history
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    /// config.md "config": the execution parameters (only those the spec names are modelled; Docker's `Shell`,
    /// `Healthcheck`, `OnBuild` and the rest are in `unknown`).
    package struct ContainerConfig: Codable, Equatable, Sendable {
        package var user: String?
        package var exposedPorts: [String: JSONValue]?
        package var env: [String]?
        package var entrypoint: [String]?
        package var cmd: [String]?
        package var volumes: [String: JSONValue]?
        package var workingDir: String?
        package var labels: [String: String]?
        package var stopSignal: String?
        package var argsEscaped: Bool?
        package var unknown = UnknownFields()

        package enum CodingKeys: String, CodingKey, CaseIterable {
            case user = "User", exposedPorts = "ExposedPorts", env = "Env", entrypoint = "Entrypoint", cmd = "Cmd"
            case volumes = "Volumes", workingDir = "WorkingDir", labels = "Labels", stopSignal = "StopSignal"
            case argsEscaped = "ArgsEscaped"
        }

        package init() {}

        package init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            user = try c.decodeIfPresent(String.self, forKey: .user)
            exposedPorts = try c.decodeIfPresent([String: JSONValue].self, forKey: .exposedPorts)
            env = try c.decodeIfPresent([String].self, forKey: .env)
            entrypoint = try c.decodeIfPresent([String].self, forKey: .entrypoint)
            cmd = try c.decodeIfPresent([String].self, forKey: .cmd)
            volumes = try c.decodeIfPresent([String: JSONValue].self, forKey: .volumes)
            workingDir = try c.decodeIfPresent(String.self, forKey: .workingDir)
            labels = try c.decodeIfPresent([String: String].self, forKey: .labels)
            stopSignal = try c.decodeIfPresent(String.self, forKey: .stopSignal)
            argsEscaped = try c.decodeIfPresent(Bool.self, forKey: .argsEscaped)
            unknown = try UnknownFields(from: decoder, known: CodingKeys.self)
        }

        package func encode(to encoder: Encoder) throws {
            try unknown.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encodeIfPresent(user, forKey: .user)
            try c.encodeIfPresent(exposedPorts, forKey: .exposedPorts)
            try c.encodeIfPresent(env, forKey: .env)
            try c.encodeIfPresent(entrypoint, forKey: .entrypoint)
            try c.encodeIfPresent(cmd, forKey: .cmd)
            try c.encodeIfPresent(volumes, forKey: .volumes)
            try c.encodeIfPresent(workingDir, forKey: .workingDir)
            try c.encodeIfPresent(labels, forKey: .labels)
            try c.encodeIfPresent(stopSignal, forKey: .stopSignal)
            try c.encodeIfPresent(argsEscaped, forKey: .argsEscaped)
        }
    }

    /// config.md "rootfs": `type` (`layers`) and the sha256 of each uncompressed layer, bottom to top.
    package struct RootFS: Codable, Equatable, Sendable {
        package var type: String
        package var diffIDs: [Digest]
        package var unknown = UnknownFields()

        package enum CodingKeys: String, CodingKey, CaseIterable { case type, diffIDs = "diff_ids" }

        package init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decode(String.self, forKey: .type)
            diffIDs = try c.decode([Digest].self, forKey: .diffIDs)
            unknown = try UnknownFields(from: decoder, known: CodingKeys.self)
        }

        package func encode(to encoder: Encoder) throws {
            try unknown.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(type, forKey: .type)
            try c.encode(diffIDs, forKey: .diffIDs)
        }
    }

    /// config.md "history": one build step; `empty_layer` steps made no layer.
    package struct History: Codable, Equatable, Sendable {
        package var created: String?
        package var author: String?
        package var createdBy: String?
        package var comment: String?
        package var emptyLayer: Bool?
        package var unknown = UnknownFields()

        package enum CodingKeys: String, CodingKey, CaseIterable {
            case created, author, comment
            case createdBy = "created_by", emptyLayer = "empty_layer"
        }

        package init(created: String?, createdBy: String?, comment: String?) {
            self.created = created; self.createdBy = createdBy; self.comment = comment
        }

        package init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            created = try c.decodeIfPresent(String.self, forKey: .created)
            author = try c.decodeIfPresent(String.self, forKey: .author)
            createdBy = try c.decodeIfPresent(String.self, forKey: .createdBy)
            comment = try c.decodeIfPresent(String.self, forKey: .comment)
            emptyLayer = try c.decodeIfPresent(Bool.self, forKey: .emptyLayer)
            unknown = try UnknownFields(from: decoder, known: CodingKeys.self)
        }

        package func encode(to encoder: Encoder) throws {
            try unknown.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encodeIfPresent(created, forKey: .created)
            try c.encodeIfPresent(author, forKey: .author)
            try c.encodeIfPresent(createdBy, forKey: .createdBy)
            try c.encodeIfPresent(comment, forKey: .comment)
            try c.encodeIfPresent(emptyLayer, forKey: .emptyLayer)
        }
    }

    package init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        created = try c.decodeIfPresent(String.self, forKey: .created)
        author = try c.decodeIfPresent(String.self, forKey: .author)
        architecture = try c.decode(String.self, forKey: .architecture)
        os = try c.decode(String.self, forKey: .os)
        osVersion = try c.decodeIfPresent(String.self, forKey: .osVersion)
        osFeatures = try c.decodeIfPresent([String].self, forKey: .osFeatures)
        variant = try c.decodeIfPresent(String.self, forKey: .variant)
        config = try c.decodeIfPresent(ContainerConfig.self, forKey: .config)
        rootfs = try c.decode(RootFS.self, forKey: .rootfs)
        history = try c.decodeIfPresent([History].self, forKey: .history)
        unknown = try UnknownFields(from: decoder, known: CodingKeys.self)
    }

    package func encode(to encoder: Encoder) throws {
        try unknown.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(created, forKey: .created)
        try c.encodeIfPresent(author, forKey: .author)
        try c.encode(architecture, forKey: .architecture)
        try c.encode(os, forKey: .os)
        try c.encodeIfPresent(osVersion, forKey: .osVersion)
        try c.encodeIfPresent(osFeatures, forKey: .osFeatures)
        try c.encodeIfPresent(variant, forKey: .variant)
        try c.encodeIfPresent(config, forKey: .config)
        try c.encode(rootfs, forKey: .rootfs)
        try c.encodeIfPresent(history, forKey: .history)
    }

    /// The platform the config declares.
    package var platform: Platform { Platform(os: os, architecture: architecture, variant: variant) }

    /// The labels of `config.Labels` (empty when there are none).
    package var labels: [String: String] { config?.labels ?? [:] }

    /// The `created_by` of each history entry that made a layer, bottom to top (nil where the entry has none).
    package var layerHistory: [String?] {
        (history ?? []).filter { $0.emptyLayer != true }.map(\.createdBy)
    }
}

/// One entry of a `docker save` archive's `manifest.json` (moby `image/tarexport`, not an OCI document): the
/// config and layer members of one image, and its tags.
package struct DockerArchiveEntry: Codable, Equatable, Sendable {
    package var config: String
    package var repoTags: [String]?
    package var layers: [String]
    package var unknown = UnknownFields()

    package enum CodingKeys: String, CodingKey, CaseIterable { case config = "Config", repoTags = "RepoTags", layers = "Layers" }

    package init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        config = try c.decode(String.self, forKey: .config)
        repoTags = try c.decodeIfPresent([String].self, forKey: .repoTags)
        layers = try c.decode([String].self, forKey: .layers)
        unknown = try UnknownFields(from: decoder, known: CodingKeys.self)
    }

    package func encode(to encoder: Encoder) throws {
        try unknown.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(config, forKey: .config)
        try c.encodeIfPresent(repoTags, forKey: .repoTags)
        try c.encode(layers, forKey: .layers)
    }
}
