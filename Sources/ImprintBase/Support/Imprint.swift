/// Facts about imprint itself.
package enum Imprint {
    package static let version = "0.1.0"
    /// Where `imprint stamp` puts the manifest inside an image, unless told otherwise.
    package static let defaultStampPath = ".imprint/manifest.json"
    /// The image label and OCI annotation that carry the root digest of the stamped manifest.
    package static let digestLabel = "org.imprint.digest"
}
