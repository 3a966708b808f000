/// ImprintModel: The model: the tree of entries with Merkle directory digests, the build context walk under a builder's ignore rules (.dockerignore as BuildKit, the legacy builder and buildah read it), the Dockerfile's copies, Python bytecode headers, the manifest (fingerprint, hygiene, signature) and the history store of manifests.
///
/// Re-exports the layer below, so a file here sees every lower layer's `package` declarations.
@_exported import ImprintFormats
