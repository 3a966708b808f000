/// ImprintFormats: Formats and protocols, each read and written exactly: tar streams and gzip (zlib), HTTP/1.1 over TCP and unix sockets, OCI documents (descriptors, manifests, indexes, configs), Ed25519 keys (OpenSSL), canonical JSON and DSSE envelopes.
///
/// Re-exports the layer below, so a file here sees every lower layer's `package` declarations.
@_exported import ImprintBase
