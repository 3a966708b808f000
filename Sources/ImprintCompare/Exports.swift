/// ImprintCompare: Comparing and running: verify (a tree against a manifest, bytecode, processes and probe evidence of live targets), diff (trees, images, layers, configs), and the CI step runner with its records.
///
/// Re-exports the layer below, so a file here sees every lower layer's `package` declarations.
@_exported import ImprintSources
