/// ImprintBase: The base every layer stands on: errors, bytes and paths, JSON reading and writing, atomic files, console output, time, parallel maps, and SHA-256 (OpenSSL) with the digest cache. Knows nothing of containers.
///
/// The bottom layer: it imports no other imprint target.
