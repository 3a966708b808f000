import Foundation
import Testing

/// The second oracle: two more real runtimes on this machine unpack every hand-written image case of
/// `ci/fuzzing/runtime_layers.py` (the first oracle, containerd's own code, is replayed by `RuntimeOracleTests`):
/// umoci (`umoci unpack`) and podman (skopeo into containers-storage, `podman create`, `podman export`). Where
/// they unpack, imprint's tree is theirs, except where the runtimes disagree with each other; those cases are
/// listed here with what differs (imprint follows containerd, schemas/LAYERS.md), and the test fails if one of
/// them changes, so the list stays true.
@Suite struct SecondOracleTests {
    /// umoci 0.4: a different tree than containerd's.
    static let umociDiffers: [String: String] = [
        "hardlink-across-layers-mode": "the hard link's mode is not applied to the inode (0644 where containerd has 4755)",
        "whiteout-creates-parent": "no parent directories are made for a whiteout",
        "opaque-removes-implicit-parent": "an opaque marker keeps a directory its own layer made only as a parent",
    ]
    /// umoci refuses what containerd and imprint unpack.
    static let umociRefuses: [String: String] = [
        "pax-global-path-renames-nothing": "pax global headers: unknown typeflag 'g'",
        "pax-global-name-removes": "pax global headers: unknown typeflag 'g'",
    ]
    /// umoci unpacks what containerd and imprint refuse.
    static let umociUnpacks: [String: String] = [
        "whiteout-invalid-name": "`.wh..` is ignored",
        "directory-entry-later-removed": "a directory whited out in its own layer is kept",
    ]
    /// podman 4.3 (containers/storage) refuses what containerd and imprint unpack.
    static let podmanRefuses: [String: String] = [
        "sparse-whiteout-not-read": "unexpected EOF",
        "write-through-symlink-parent": "a symlink to a missing directory is not followed",
        "write-through-absolute-symlink": "a symlink to a missing directory is not followed",
        "symlink-parent-escapes": "a symlink to a missing directory is not followed",
        "hardlink-then-overwrite": "duplicates of file paths not supported",
        "root-entries-skipped": "duplicates of file paths not supported",
    ]
    /// podman unpacks what containerd and imprint refuse.
    static let podmanUnpacks: [String: String] = [
        "whiteout-invalid-name": "`.wh..` is ignored",
    ]

    @Test(.tags(.engine)) func umociAndPodmanUnpackWhatImprintSees() throws {
        for tool in ["umoci", "podman", "skopeo", "runc"] { try requireTool(tool) }
        let script = TestEnv.packageRoot.appendingPathComponent("Tests/ImprintCLITests/Support/runtime_peers.py").path
        let r = try run("python3", [script, TestEnv.imprintPath])
        #expect(r.status == 0, "\(r.err)")
        let results = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: [String: [String: Any]]])
        #expect(results.count >= 60)
        for (name, readers) in results.sorted(by: { $0.key < $1.key }) {
            let mine = readers["imprint"] ?? [:]
            for (peer, differs, refuses, unpacks) in [("umoci", Self.umociDiffers, Self.umociRefuses, Self.umociUnpacks),
                                                      ("podman", [:], Self.podmanRefuses, Self.podmanUnpacks)] {
                let theirs = readers[peer] ?? [:]
                switch (mine["entries"] as? [[String]], theirs["entries"] as? [[String]]) {
                case let (a?, b?):
                    if differs[name] != nil {
                        #expect(a != b, "\(name): \(peer) now unpacks the same tree as imprint; update the list and LAYERS.md")
                    } else {
                        #expect(a == b, "\(name): \(peer)'s tree differs from imprint's\n\(peer): \(b)\nimprint: \(a)")
                    }
                case (_?, nil):
                    #expect(refuses[name] != nil, "\(name): \(peer) refuses what imprint unpacks: \(theirs["error"] ?? "")")
                case (nil, _?):
                    #expect(unpacks[name] != nil, "\(name): \(peer) unpacks what imprint refuses: \(mine["error"] ?? "")")
                case (nil, nil):
                    #expect(refuses[name] == nil && unpacks[name] == nil, "\(name): both refuse, but the list says otherwise")
                }
            }
        }
    }
}
