/// ImprintCore: Operations: what the command line calls, one request type per job (fingerprint, stamp, verify, run, fleet verification, watch), registry artifacts, attestations (in-toto, SLSA) and SARIF. Re-exports every layer below.
///
/// Re-exports the layer below, so a file here sees every lower layer's `package` declarations.
@_exported import ImprintCompare
