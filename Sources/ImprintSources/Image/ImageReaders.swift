import Foundation
#if canImport(Glibc)
import Glibc
#endif

// MARK: Blob stores

/// Content-addressed blobs: `blobs/<alg>/<hex>` in a directory or inside an archive.
package protocol BlobStore: AnyObject {
    /// Where the store is, for messages.
    var location: String { get }
    /// The raw bytes of a blob, or nil when absent.
    func rawSource(_ digest: Digest) throws -> ByteSource?
}

extension BlobStore {
    /// The blob, verified against `descriptor` while it is read.
    /// - Throws: `notFound` when the blob is missing.
    package func open(_ descriptor: Descriptor) throws -> DigestVerifyingSource {
        guard let raw = try rawSource(descriptor.digest) else {
            throw ImprintError(.notFound, "blob \(descriptor.digest) is missing from \(location)")
        }
        return DigestVerifyingSource(raw, digest: descriptor.digest, size: descriptor.size, name: descriptor.digest.prefixed)
    }

    /// A small blob (manifest, config) read whole and verified.
    package func read(_ descriptor: Descriptor, limit: Int = 64 << 20) throws -> [UInt8] {
        guard descriptor.size <= UInt64(limit) else {
            throw ImprintError.badInput("blob \(descriptor.digest) is too large for a JSON document (\(descriptor.size) bytes)")
        }
        let s = try open(descriptor)
        let bytes = try s.readAll(limit: limit, what: "blob \(descriptor.digest)")
        try s.verify()
        return bytes
    }
}

/// Blobs in an OCI layout directory.
package final class DirectoryBlobStore: BlobStore {
    package let directory: String
    package var location: String { directory }
    package init(directory: String) { self.directory = directory }

    package func path(_ digest: Digest) -> String { "\(directory)/blobs/sha256/\(digest.hex)" }

    package func rawSource(_ digest: Digest) throws -> ByteSource? {
        let p = path(digest)
        guard access(p, F_OK) == 0 else { return nil }
        return try FileDescriptorSource(path: p)
    }
}

/// Blobs inside a tar archive (oci-archive, or the OCI layout newer `docker save` writes).
package final class ArchiveBlobStore: BlobStore {
    package let archive: TarArchiveIndex
    package var location: String { archive.path }
    package init(archive: TarArchiveIndex) { self.archive = archive }

    package func rawSource(_ digest: Digest) throws -> ByteSource? {
        archive.member("blobs/sha256/\(digest.hex)").map { archive.source($0) }
    }
}

// MARK: OCI layout

/// An OCI image layout (image-spec `image-layout.md`): `oci-layout`, `index.json`, `blobs/sha256/…`,
/// as a directory or inside a tar archive.
package final class OCILayout: ImageReader {
    package let store: BlobStore
    package let location: String
    package let indexBytes: [UInt8]
    package let index: ImageIndex
    package var verifiesUncompressed: Bool { false }

    /// Opens a layout directory.
    package convenience init(directory: String) throws {
        let indexPath = directory + "/index.json"
        guard access(directory + "/oci-layout", F_OK) == 0 else {
            throw ImprintError.badInput("\(directory) is not an OCI image layout (no oci-layout file)")
        }
        try self.init(store: DirectoryBlobStore(directory: directory), location: directory,
                      indexBytes: readFile(indexPath, what: "image index"))
    }

    /// Opens a layout inside an indexed archive.
    package convenience init(archive: TarArchiveIndex) throws {
        guard let m = archive.member("index.json") else {
            throw ImprintError.badInput("\(archive.path) is not an OCI archive (no index.json)")
        }
        try self.init(store: ArchiveBlobStore(archive: archive), location: archive.path, indexBytes: archive.read(m))
    }

    package init(store: BlobStore, location: String, indexBytes: [UInt8]) throws {
        self.store = store
        self.location = location
        self.indexBytes = indexBytes
        self.index = try OCIJSON.decode(ImageIndex.self, from: indexBytes, what: "\(location)/index.json")
    }

    package func resolve(reference: String?, platform: Platform?) throws -> ImageInfo {
        var entries = Array(index.manifests.enumerated()).map { ($0.offset, $0.element) }
        if entries.isEmpty { throw ImprintError(.notFound, "\(location) contains no images") }
        if let reference {
            let matching = entries.filter { OCILayout.names(of: $0.1).contains(reference) }
            if matching.isEmpty {
                let tags = entries.flatMap { OCILayout.names(of: $0.1) }
                throw ImprintError(.notFound, "\(location) has no image tagged \"\(reference)\"" +
                                   (tags.isEmpty ? " (it has no tags)" : " (tags: \(tags.joined(separator: ", ")))"))
            }
            entries = matching
        } else {
            let tags = Set(entries.flatMap { OCILayout.names(of: $0.1) })
            if tags.count > 1 {
                throw ImprintError.badInput("\(location) holds several images; choose one with \(location):TAG (tags: \(tags.sorted().joined(separator: ", ")))")
            }
        }
        let picked = try choose(entries, platform: platform, what: "\(location)/index.json")
        let position = picked.0
        var chosen = picked.1
        var seen = 0
        while MediaType.indexTypes.contains(try mediaType(of: chosen)) {
            seen += 1
            if seen > 4 { throw ImprintError.badInput("\(location): image indexes nested too deeply") }
            let nested = try OCIJSON.decode(ImageIndex.self, from: try store.read(chosen), what: "image index \(chosen.digest)")
            let descs = Array(nested.manifests.enumerated()).map { ($0.offset, $0.element) }
            if descs.isEmpty { throw ImprintError(.notFound, "image index \(chosen.digest) lists no manifests") }
            chosen = try choose(descs, platform: platform, what: "image index \(chosen.digest)").1
        }
        let mt = try mediaType(of: chosen)
        guard MediaType.manifestTypes.contains(mt) else {
            throw ImprintError(.unsupported, "manifest \(chosen.digest) has unknown media type \"\(mt)\" (expected \(MediaType.ociManifest) or \(MediaType.dockerManifest))")
        }
        let manifestBytes = try store.read(chosen)
        let manifest = try OCIJSON.decode(ImageManifest.self, from: manifestBytes, what: "manifest \(chosen.digest)")
        if let inner = manifest.mediaType, !MediaType.manifestTypes.contains(inner) {
            throw ImprintError(.unsupported, "manifest \(chosen.digest) has unknown media type \"\(inner)\"")
        }
        let configBytes = try store.read(manifest.config)
        let config = try OCIJSON.decode(ImageConfig.self, from: configBytes, what: "image config \(manifest.config.digest)")
        if let platform, !platform.selects(config.platform) {
            throw ImprintError(.notFound, "\(location): no image for platform \(platform) (available: \(config.platform))")
        }
        return ImageInfo(manifestDescriptor: chosen, manifestBytes: manifestBytes, manifest: manifest,
                         configDescriptor: manifest.config, configBytes: configBytes, config: config,
                         layers: ImageInfo.layers(of: manifest, config: config),
                         reference: reference, indexPosition: position, isDockerFamily: mt == MediaType.dockerManifest)
    }

    package func openLayer(_ image: ImageInfo, _ index: Int) throws -> DigestVerifyingSource {
        try store.open(image.layers[index].descriptor)
    }

    private func mediaType(of d: Descriptor) throws -> String {
        if !d.mediaType.isEmpty { return d.mediaType }
        // Old layouts omit the media type in the index; look inside.
        return try OCIJSON.decode(DocumentKind.self, from: try store.read(d), what: "manifest \(d.digest)").guessed
    }

    /// Names an index entry answers to: the OCI ref name annotation, and the tag part of containerd's image name.
    package static func names(of d: Descriptor) -> [String] {
        var out: [String] = []
        if let r = d.annotation("org.opencontainers.image.ref.name") { out.append(r) }
        if let n = d.annotation("io.containerd.image.name") {
            out.append(n)
            if let colon = n.lastIndex(of: ":"), !n[colon...].contains("/") { out.append(String(n[n.index(after: colon)...])) }
        }
        return out
    }

    private func choose(_ entries: [(Int, Descriptor)], platform: Platform?, what: String) throws -> (Int, Descriptor) {
        if entries.count == 1 {
            if let platform, let p = entries[0].1.platform, !platform.selects(p) {
                throw ImprintError(.notFound, "\(what): no image for platform \(platform) (available: \(p))")
            }
            return entries[0]
        }
        let withPlatform = entries.filter { $0.1.platform != nil }
        let want = platform ?? Platform.host
        let matching = withPlatform.filter { want.selects($0.1.platform!) }
        if let first = matching.first { return first }
        let available = withPlatform.map { $0.1.platform!.description }
        if platform != nil || !withPlatform.isEmpty {
            throw ImprintError(.notFound, "\(what): no image for platform \(want) (available: \(available.isEmpty ? "none declared" : available.joined(separator: ", ")))")
        }
        throw ImprintError.badInput("\(what) lists \(entries.count) images; choose one with :TAG")
    }
}

// MARK: docker-archive

/// A `docker save` / `podman save` / `skopeo copy docker-archive:` tarball: `manifest.json` lists
/// `{Config, RepoTags, Layers}` with member paths; layers are verified through the config's diff_ids.
package final class DockerArchive: ImageReader {
    package let archive: TarArchiveIndex
    package let manifestList: [DockerArchiveEntry]
    package let manifestListBytes: [UInt8]
    package var verifiesUncompressed: Bool { true }

    package init(archive: TarArchiveIndex) throws {
        self.archive = archive
        guard let m = archive.member("manifest.json") else {
            throw ImprintError.badInput("\(archive.path) is not a docker-archive (no manifest.json)")
        }
        manifestListBytes = try archive.read(m)
        manifestList = try OCIJSON.decode([DockerArchiveEntry].self, from: manifestListBytes, what: "\(archive.path): manifest.json")
    }

    package func resolve(reference: String?, platform: Platform?) throws -> ImageInfo {
        if manifestList.isEmpty { throw ImprintError(.notFound, "\(archive.path) contains no images") }
        var position = 0
        if let reference {
            guard let i = manifestList.firstIndex(where: { e in
                (e.repoTags ?? []).contains { $0 == reference || $0.hasSuffix(":" + reference) || $0.hasSuffix("/" + reference) }
            }) else {
                let tags = manifestList.flatMap { $0.repoTags ?? [] }
                throw ImprintError(.notFound, "\(archive.path) has no image tagged \"\(reference)\" (tags: \(tags.joined(separator: ", ")))")
            }
            position = i
        } else if manifestList.count > 1 {
            let tags = manifestList.flatMap { $0.repoTags ?? [] }
            throw ImprintError.badInput("\(archive.path) holds \(manifestList.count) images; choose one with \(archive.path):TAG (tags: \(tags.joined(separator: ", ")))")
        }
        let entry = manifestList[position]
        let configPath = entry.config
        guard let cm = archive.member(configPath) else {
            throw ImprintError(.notFound, "\(archive.path): config \(configPath) is missing")
        }
        let configBytes = try archive.read(cm)
        let configDigest = SHA256.hash(configBytes)
        if let named = DockerArchive.digestInName(configPath), named != configDigest {
            throw ImprintError.badInput("blob \(configPath) in \(archive.path) does not match its digest: content hashes to \(configDigest)")
        }
        let config = try OCIJSON.decode(ImageConfig.self, from: configBytes, what: "image config \(configPath)")
        if let platform, !platform.selects(config.platform) {
            throw ImprintError(.notFound, "\(archive.path): no image for platform \(platform) (available: \(config.platform))")
        }
        let diffIDs = config.rootfs.diffIDs
        let paths = entry.layers
        guard paths.count == diffIDs.count else {
            throw ImprintError.badInput("\(archive.path): manifest.json lists \(paths.count) layers but the config has \(diffIDs.count) diff_ids")
        }
        var layers: [ImageLayer] = []
        for (i, p) in paths.enumerated() {
            guard let m = archive.member(p) else { throw ImprintError(.notFound, "blob \(p) is missing from \(archive.path)") }
            let d = Descriptor(mediaType: MediaType.dockerLayer, digest: DockerArchive.digestInName(p) ?? diffIDs[i], size: m.size)
            layers.append(ImageLayer(descriptor: d, diffID: diffIDs[i], member: p))
        }
        let configDesc = Descriptor(mediaType: MediaType.dockerConfig, digest: configDigest, size: UInt64(configBytes.count))
        var info = ImageInfo(manifestDescriptor: nil, manifestBytes: nil, manifest: nil, configDescriptor: configDesc,
                             configBytes: configBytes, config: config, layers: layers, reference: reference,
                             indexPosition: position, isDockerFamily: true)
        info.repoTags = entry.repoTags ?? []
        return info
    }

    package func openLayer(_ image: ImageInfo, _ index: Int) throws -> DigestVerifyingSource {
        let layer = image.layers[index]
        guard let path = layer.member, let m = archive.member(path) else {
            throw ImprintError(.notFound, "blob \(layer.member ?? "?") is missing from \(archive.path)")
        }
        // A member named after a digest is verified against it; otherwise the caller verifies the diff_id.
        let named = DockerArchive.digestInName(path)
        return DigestVerifyingSource(archive.source(m), digest: named, size: m.size, name: path)
    }

    /// `<hex>.json`, `<hex>.tar`, `<hex>/layer.tar` (an ID, not a digest: ignored) or `blobs/sha256/<hex>`.
    package static func digestInName(_ path: String) -> Digest? {
        let comps = path.split(separator: "/")
        if comps.count == 3, comps[0] == "blobs", comps[1] == "sha256" { return Digest(hex: String(comps[2])) }
        if comps.count == 1 {
            let base = comps[0]
            if base.hasSuffix(".json") || base.hasSuffix(".tar") {
                return Digest(hex: String(base.split(separator: ".").first ?? ""))
            }
        }
        return nil
    }
}
