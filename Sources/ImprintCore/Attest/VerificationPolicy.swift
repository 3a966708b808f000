/// The policy documents a verification summary names (`policy.uri`, `policy.digest` = SHA-256 of these bytes);
/// the same bytes as `schemas/policies/*.json` (a test compares them).
package enum VerificationPolicy {
    package static let exactContextURI = "https://github.com/imprint/imprint/policies/exact-context/v1"
    package static let exactContext = """
    {
      "id": "https://github.com/imprint/imprint/policies/exact-context/v1",
      "title": "The target holds exactly the build context that was fingerprinted",
      "passes": "every file, directory, symlink and device of the expected manifest is present below the context's destination with the same type, permission bits and content (SHA-256); no other entry is there unless --allow-extra names it; no Python bytecode would run in place of a source; for a running container or process, no process runs code other than the deployed files",
      "expected": "the imprint manifest (schemas/manifest.schema.json), authenticated by --expect (its root digest, imprint-tree-v1, schemas/DIGEST.md) or by --pubkey (a detached signature), or neither",
      "checks": ["files", "bytecode", "processes", "trust"]
    }

    """
    package static let stampURI = "https://github.com/imprint/imprint/policies/stamp/v1"
    package static let stamp = """
    {
      "id": "https://github.com/imprint/imprint/policies/stamp/v1",
      "title": "The image carries the expected imprint stamp",
      "passes": "the image holds an imprint manifest (the stamp written by imprint stamp) whose root digest (imprint-tree-v1, schemas/DIGEST.md) is the expected one; its files are not compared (verify --stamp-only)",
      "expected": "the root digest given with --expect, or the manifest signed with the key given with --pubkey",
      "checks": ["stamp", "trust"]
    }

    """
}
