import Foundation

/// Stamps an image in a registry: appends the same deterministic manifest layer `ImageStamper` appends to a
/// local image, then pushes only what is new — the layer, the config and the manifest. Blobs are checked with
/// `HEAD` first and never uploaded twice; the base layers are not touched (when the destination is another
/// repository of the same registry they are mounted from the source repository).
///
/// Stamping `registry://…/app:1` gives the same manifest digest as stamping the same image in an OCI layout.
package struct RegistryStamper {
    /// Where the manifest goes inside the image (relative to `/`).
    package var stampPath = Imprint.defaultStampPath
    /// Modification time of the layer's entries and the history entry (`SOURCE_DATE_EPOCH`, else 0).
    package var epoch: Int64
    package var platform: Platform?
    /// A signature document stored beside the manifest in the stamp layer (`stamp --key`).
    package var signatureBytes: [UInt8]?
    package var options = RegistryOptions()

    /// What a registry stamp produced and pushed.
    package struct Result {
        package var destination: RegistryReference
        package var manifestDigest: Digest
        package var configDigest: Digest
        package var layerDigest: Digest
        package var manifestRootDigest: Digest
        /// Blobs uploaded (the others were already in the repository or were mounted).
        package var uploadedBlobs: [Digest]
        package var mountedBlobs: [Digest]
        /// The image that was stamped (its manifest digest).
        package var baseDigest: Digest? = nil
    }

    package init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        epoch = environment["SOURCE_DATE_EPOCH"].flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) } ?? 0
    }

    /// Stamps `manifestBytes` into the registry image `spec` and pushes the result.
    /// - Parameters:
    ///   - tag: the tag to push under (default: the source's tag; required when the source is pinned by digest).
    ///   - destination: another `registry://` repository on the same registry to push to (default: the source's).
    /// - Throws: `badInput` for an invalid manifest, a multi-platform index, a missing tag; registry errors.
    package func stamp(_ spec: String, manifestBytes: [UInt8], tag: String? = nil, destination: String? = nil) throws -> Result {
        let manifest = try Manifest.parse(manifestBytes, source: "manifest")
        let source = try RegistryReference(parsing: spec)
        var dest = source
        if let destination {
            dest = try RegistryReference(parsing: destination, requireReference: false)
            guard dest.host == source.host else {
                throw ImprintError.badInput("stamp can push only to the registry it reads from (\(source.host), not \(dest.host))")
            }
        }
        guard let destTag = tag ?? (destination != nil ? dest.tag : nil) ?? source.tag else {
            throw ImprintError.badInput("\(spec) is pinned by digest: give the tag to push the stamped image under with --tag")
        }
        guard RegistryReference.isValidTag(destTag) else { throw ImprintError.badInput("invalid tag \"\(destTag)\"") }
        let client = try RegistryClient(for: source, options: options)
        let reader = try RegistryImageReader(source, client: client)
        let image = try reader.resolve(reference: nil, platform: platform)
        if let top = reader.topDescriptor, MediaType.indexTypes.contains(top.mediaType) {
            throw ImprintError(.unsupported, "\(source) is a multi-platform index; stamp one platform's manifest (registry://\(source.host)/\(source.repository)@\(image.digest.prefixed)) with --tag")
        }
        guard image.manifest != nil else { throw ImprintError(.failure, "\(source): no manifest") }

        // The same plan a local stamp applies: an image stamped before gets its stamp layer replaced, not stacked.
        var stamper = ImageStamper(environment: [:])
        stamper.stampPath = stampPath
        stamper.epoch = epoch
        stamper.signatureBytes = signatureBytes
        let plan = try stamper.plan(image, manifestBytes: manifestBytes, root: manifest.rootDigest)
        let (layerBlob, layerDigest, configBytes, configDigest, root) = (plan.layerBlob, plan.layerDigest, plan.configBytes, plan.configDigest, plan.root)
        guard let manifestOut = plan.manifestBytes else { throw ImprintError(.failure, "\(source): no manifest") }
        let mediaType = image.manifestDescriptor?.mediaType ?? MediaType.ociManifest

        var uploaded: [Digest] = []
        var mounted: [Digest] = []
        if dest.repository != source.repository {
            for layer in image.layers.dropLast(plan.replacing ? 1 : 0) where !(try client.blobExists(dest.repository, layer.descriptor.digest)) {
                guard try client.mountBlob(dest.repository, layer.descriptor.digest, from: source.repository) else {
                    throw ImprintError(.failure, "registry \(source.host) would not mount blob \(layer.descriptor.digest) from \(source.repository) into \(dest.repository)")
                }
                mounted.append(layer.descriptor.digest)
            }
        }
        if try client.pushBlob(dest.repository, layerBlob, digest: layerDigest) { uploaded.append(layerDigest) }
        if try client.pushBlob(dest.repository, configBytes, digest: configDigest) { uploaded.append(configDigest) }
        let put = try client.pushManifest(dest.repository, reference: destTag, manifestOut, mediaType: mediaType)
        var result = Result(destination: dest.with(tag: destTag), manifestDigest: put.digest, configDigest: configDigest,
                      layerDigest: layerDigest, manifestRootDigest: root, uploadedBlobs: uploaded, mountedBlobs: mounted)
        result.baseDigest = image.manifestDescriptor?.digest ?? image.configDescriptor.digest
        return result
    }
}
