/// ImprintSources: Sources that produce a tree: images (OCI layouts, archives, layers applied as the container runtime applies them), registries (the distribution API), running containers and processes (engines, /proc, Kubernetes nodes' runtime state).
///
/// Re-exports the layer below, so a file here sees every lower layer's `package` declarations.
@_exported import ImprintModel
