/// Facts about imprint itself.
public enum Imprint {
    public static let version = "0.1.0"
    /// Where `imprint stamp` puts the manifest inside an image, unless told otherwise.
    public static let defaultStampPath = ".imprint/manifest.json"
    /// The image label and OCI annotation that carry the root digest of the stamped manifest.
    public static let digestLabel = "org.imprint.digest"
}
