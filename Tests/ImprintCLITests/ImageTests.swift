import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One tiny image built with buildah (FROM scratch + COPY) and pushed in the three formats, shared by the
/// image tests; each test copies what it modifies.
final class BuiltImage: @unchecked Sendable {
    // why @unchecked: built once under `lock`, read-only afterwards.
    static let lock = NSLock()
    nonisolated(unsafe) static var shared: BuiltImage?

    let dir: String
    var layout: String { dir + "/oci" }
    var ociArchive: String { dir + "/o.tar" }
    var dockerArchive: String { dir + "/d.tar" }
    var context: String { dir + "/ctx" }

    private init(dir: String) { self.dir = dir }

    static func get() throws -> BuiltImage {
        lock.lock(); defer { lock.unlock() }
        if let shared { return shared }
        for t in ["buildah", "skopeo", "umoci"] { try requireTool(t) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imprint-image-fixture-\(getpid())").path
        _ = try run("/bin/rm", ["-rf", dir])
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        ProcessFixtures.removeAtExit(dir)
        try writeFile(dir + "/ctx/app.py", "print('hello')\n")
        try writeFile(dir + "/ctx/lib/util.py", "X = 1\n")
        try writeFile(dir + "/ctx/bin/run.sh", "#!/bin/sh\nexec python3 /app/app.py\n", mode: 0o755)
        try writeFile(dir + "/ctx/data/empty", "")
        try writeFile(dir + "/Dockerfile", "FROM scratch\nCOPY . /app\n")
        let b = "buildah --root \(dir)/r --runroot \(dir)/rr --storage-driver vfs"
        let r = try sh("""
        cd \(dir) && ln -s app.py ctx/link.py && mkdir ctx/emptydir
        \(b) bud --isolation chroot -f Dockerfile -t t ctx >/dev/null
        \(b) push t oci:\(dir)/oci:t >/dev/null 2>&1
        \(b) push t docker-archive:\(dir)/d.tar:t:latest >/dev/null 2>&1
        \(b) push t oci-archive:\(dir)/o.tar:t >/dev/null 2>&1
        """)
        guard r.status == 0 else { throw ToolMissing(name: "buildah build failed") }
        let img = BuiltImage(dir: dir)
        shared = img
        return img
    }
}

@Suite(.serialized) struct ImageTests {
    static let env = ["SOURCE_DATE_EPOCH": "1700000000"]

    func treeDigest(_ source: String, _ extra: [String] = []) throws -> String {
        let r = try imprint(["inspect", source, "--tree-digest", "--json"] + extra)
        #expect(r.status == 0, "\(r.err)")
        let obj = try jsonObject(r.stdout)
        return (obj["tree"] as? [String: Any])?["digest"] as? String ?? "none"
    }

    @Test(.tags(.engine)) func readsAllThreeFormatsAndAgreesWithUmociUnpack() throws {
        let img = try BuiltImage.get()
        try withTempDir { t in
            let fromLayout = try treeDigest(img.layout)
            #expect(try treeDigest(img.layout + ":t") == fromLayout)
            #expect(try treeDigest(img.ociArchive) == fromLayout)
            #expect(try treeDigest("oci-archive:" + img.ociArchive + ":t") == fromLayout)
            #expect(try treeDigest(img.dockerArchive) == fromLayout)
            #expect(try treeDigest(img.dockerArchive + ":t:latest") == fromLayout)
            try sh("umoci unpack --image \(img.layout):t \(t)/b >/dev/null")
            #expect(try treeDigest(t + "/b/rootfs") == fromLayout)
            // sha256sum lists agree file by file.
            try sh("cd \(t)/b/rootfs && find . -type f | sort | xargs sha256sum | sed 's| \\./| |' > \(t)/want")
            let fp = try imprint("fingerprint", t + "/b/rootfs", "--format", "sha256sum", "-q")
            let want = try String(contentsOfFile: t + "/want", encoding: .utf8)
            let norm = { (s: String) in Set(s.split(separator: "\n").map { $0.replacingOccurrences(of: "  ", with: " ") }) }
            #expect(norm(fp.out) == norm(want))
            // A container filesystem tar, from a file and from stdin.
            try sh("tar -C \(t)/b/rootfs -cf \(t)/fs.tar . && gzip -k \(t)/fs.tar")
            #expect(try treeDigest(t + "/fs.tar") == fromLayout)
            let piped = try imprint(["inspect", "-", "--tree-digest", "--json"], stdinFile: t + "/fs.tar.gz")
            #expect((try jsonObject(piped.stdout)["tree"] as? [String: Any])?["digest"] as? String == fromLayout)
            // Images skopeo converted.
            try sh("skopeo copy -q oci:\(img.layout):t docker-archive:\(t)/s.tar:x:y && skopeo copy -q oci:\(img.layout):t oci-archive:\(t)/s2.tar")
            #expect(try treeDigest(t + "/s.tar") == fromLayout)
            #expect(try treeDigest(t + "/s2.tar") == fromLayout)
            // The docker-archive newer `docker save` writes: an OCI layout plus manifest.json naming blobs.
            try sh("""
            cd \(t) && cp -a \(img.layout) d25 && python3 -c "
            import json
            idx = json.load(open('d25/index.json'))
            m = json.load(open('d25/blobs/sha256/' + idx['manifests'][0]['digest'][7:]))
            json.dump([{'Config': 'blobs/sha256/' + m['config']['digest'][7:], 'RepoTags': ['t:latest'],
                        'Layers': ['blobs/sha256/' + l['digest'][7:] for l in m['layers']]}], open('d25/manifest.json', 'w'))
            " && tar -C d25 -cf d25.tar .
            """)
            let d25 = try imprint("inspect", t + "/d25.tar", "--tree-digest", "--json")
            #expect(try jsonObject(d25.stdout)["format"] as? String == "docker-archive")
            #expect((try jsonObject(d25.stdout)["tree"] as? [String: Any])?["digest"] as? String == fromLayout)
            _ = try imprint(["fingerprint", img.context, "-o", t + "/m.json", "-q"])
            let st = try imprint("stamp", t + "/d25.tar", "--manifest", t + "/m.json", "-o", t + "/d25s.tar")
            #expect(st.status == 0, "\(st.err)")
            try sh("skopeo inspect docker-archive:\(t)/d25s.tar | grep -q org.imprint.digest")
            #expect(try imprint("extract", t + "/d25s.tar").status == 0)
        }
    }

    @Test func umociWhiteoutsAreApplied() throws {
        try requireTool("umoci")
        try withTempDir { t in
            try sh("""
            cd \(t)
            umoci init --layout L && umoci new --image L:t
            umoci unpack --image L:t B >/dev/null
            mkdir -p B/rootfs/etc B/rootfs/opq/sub && echo a > B/rootfs/etc/a && echo b > B/rootfs/etc/b
            echo o > B/rootfs/opq/sub/old && ln B/rootfs/etc/a B/rootfs/etc/hard
            umoci repack --image L:t B >/dev/null
            rm -rf B && umoci unpack --image L:t B >/dev/null
            rm B/rootfs/etc/b && rm -rf B/rootfs/opq && mkdir B/rootfs/opq && echo n > B/rootfs/opq/new && echo c > B/rootfs/etc/c
            umoci repack --image L:t B >/dev/null
            rm -rf B && umoci unpack --image L:t B >/dev/null
            """)
            let fromImage = try treeDigest(t + "/L:t")
            #expect(fromImage == (try treeDigest(t + "/B/rootfs")))
            let r = try imprint("inspect", t + "/L", "--json")
            #expect((try jsonObject(r.stdout)["layers"] as? [Any])?.count == 2)
        }
    }

    @Test(.tags(.engine)) func stampedLayoutPassesSkopeoAndUmociAndIsReproducible() throws {
        let img = try BuiltImage.get()
        try withTempDir { t in
            try sh("cp -a \(img.layout) \(t)/a && cp -a \(img.layout) \(t)/b && cd \(t)/a/blobs/sha256 && sha256sum * > \(t)/before")
            let fp = try imprint(["fingerprint", img.context, "-o", t + "/m.json", "-q"], env: Self.env)
            #expect(fp.status == 0)
            let s1 = try imprint("stamp", t + "/a", "--manifest", t + "/m.json")
            let s2 = try imprint("stamp", t + "/b:t", "--manifest", t + "/m.json")
            #expect(s1.status == 0, "\(s1.err)")
            #expect(s1.out == s2.out)
            #expect(s1.out.hasPrefix("sha256:"))
            // Stamping again in place replaces the stamp layer: same digest, same number of layers.
            let again = try imprint("stamp", t + "/a", "--manifest", t + "/m.json")
            #expect(again.out == s1.out)
            #expect((try jsonObject(try imprint("inspect", t + "/a", "--json").stdout)["layers"] as? [Any])?.count == 2)
            // Existing blobs are unchanged.
            try sh("cd \(t)/a/blobs/sha256 && sha256sum -c --quiet \(t)/before")
            let inspect = try sh("skopeo inspect oci:\(t)/a:t")
            let root = try jsonObject(try Data(contentsOf: URL(fileURLWithPath: t + "/m.json")))["digest"] as! String
            #expect(inspect.out.contains("\"org.imprint.digest\": \"\(root)\""))
            #expect(inspect.out.contains(s1.out.trimmingCharacters(in: .whitespacesAndNewlines)))
            try sh("umoci unpack --image \(t)/a:t \(t)/u >/dev/null && cmp \(t)/u/rootfs/.imprint/manifest.json \(t)/m.json")
            try sh("skopeo copy -q oci:\(t)/a:t docker-archive:\(t)/d.tar:t:latest && skopeo copy -q oci:\(t)/a:t oci-archive:\(t)/o.tar")
            for converted in [t + "/d.tar", t + "/o.tar", t + "/a"] {
                let e = try imprint("extract", converted)
                #expect(e.status == 0, "\(e.err)")
                #expect(e.stdout == (try Data(contentsOf: URL(fileURLWithPath: t + "/m.json"))))
            }
            // Config and index carry the digest and history.
            let cfg = try sh("skopeo inspect --config oci:\(t)/a:t").out
            #expect(cfg.contains("imprint stamp"))
            let index = try String(contentsOfFile: t + "/a/index.json", encoding: .utf8)
            #expect(index.contains("org.imprint.digest"))
            #expect(index.contains("org.opencontainers.image.ref.name"))
        }
    }

    @Test(.tags(.engine)) func stampsArchivesIntoNewFiles() throws {
        let img = try BuiltImage.get()
        try withTempDir { t in
            _ = try imprint(["fingerprint", img.context, "-o", t + "/m.json", "-q"], env: Self.env)
            for (input, kind) in [(img.ociArchive, "oci-archive"), (img.dockerArchive, "docker-archive")] {
                let missing = try imprint("stamp", input, "--manifest", t + "/m.json")
                #expect(missing.status == 2)
                #expect(missing.err.contains("-o"))
                let out = t + "/\(kind).tar"
                let r1 = try imprint("stamp", input, "--manifest", t + "/m.json", "-o", out)
                #expect(r1.status == 0, "\(r1.err)")
                let r2 = try imprint("stamp", input, "--manifest", t + "/m.json", "-o", out + ".2")
                #expect(r1.out == r2.out)
                try sh("cmp \(out) \(out).2 && skopeo inspect \(kind):\(out) | grep -q org.imprint.digest")
                try sh("skopeo copy -q \(kind):\(out) oci:\(t)/\(kind)-layout:x && umoci unpack --image \(t)/\(kind)-layout:x \(t)/\(kind)-u >/dev/null && cmp \(t)/\(kind)-u/rootfs/.imprint/manifest.json \(t)/m.json")
                let e = try imprint("extract", out, "-o", t + "/\(kind).json")
                #expect(e.status == 0)
                try sh("cmp \(t)/\(kind).json \(t)/m.json")
            }
            // --context fingerprints and stamps in one step.
            let c = try imprint(["stamp", img.ociArchive, "--context", img.context, "-o", t + "/ctx.tar"], env: Self.env)
            #expect(c.status == 0, "\(c.err)")
            let ins = try imprint("inspect", t + "/ctx.tar", "--json")
            let emb = try jsonObject(ins.stdout)["embeddedManifest"] as? [String: Any]
            #expect(emb?["present"] as? Bool == true)
        }
    }

    @Test(.tags(.engine)) func extractFindsEmittedManifestsAndFailsClearlyWhenNone() throws {
        let img = try BuiltImage.get()
        try withTempDir { t in
            try sh("cp -a \(img.context) \(t)/ctx")
            let fp = try imprint("fingerprint", t + "/ctx", "--emit", "meta/imprint.json", "-q", "-o", t + "/m.json")
            #expect(fp.status == 0, "\(fp.err)")
            let e = try imprint("extract", t + "/ctx", "--path", "meta/imprint.json")
            #expect(e.status == 0, "\(e.err)")
            #expect(e.stdout == (try Data(contentsOf: URL(fileURLWithPath: t + "/m.json"))))
            try sh("tar -C \(t)/ctx -cf \(t)/ctx.tar .")
            let piped = try imprint(["extract", "-", "--path", "/meta/imprint.json"], stdinFile: t + "/ctx.tar")
            #expect(piped.status == 0, "\(piped.err)")
            let none = try imprint("extract", img.layout, "-o", t + "/none.json")
            #expect(none.status == 2)
            #expect(none.err.contains("no imprint manifest"))
            #expect(none.err.split(separator: "\n").count == 1)
            #expect(!FileManager.default.fileExists(atPath: t + "/none.json"))
        }
    }

    @Test(.tags(.engine)) func inspectJSONMatchesItsSchema() throws {
        let img = try BuiltImage.get()
        for source in [img.layout, img.dockerArchive, img.context] {
            let r = try imprint("inspect", source, "--json", "--tree-digest")
            #expect(r.status == 0, "\(r.err)")
            try expectValidJSON(r.stdout, schema: "inspect.schema.json")
            let files = try imprint("inspect", source, "--json", "--files")
            #expect(files.status == 0, "\(files.err)")
            try expectValidJSON(files.stdout, schema: "inspect.schema.json")
            #expect(((try jsonObject(files.stdout))["files"] as? [Any])?.isEmpty == false)
        }
        let listing = try imprint("inspect", img.layout, "--files")
        #expect(listing.status == 0 && listing.out.contains("files:\n  d0755"), "\(listing.out)")
        let text = try imprint("inspect", img.layout)
        #expect(text.out.contains("format:    oci-layout"))
        #expect(text.out.contains("application/vnd.oci.image.layer.v1.tar+gzip"))
    }

    // MARK: Corrupt inputs: one line, exit 2, nothing written.

    func expectFailure(_ args: [String], _ needle: String, stdinFile: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try imprint(args, stdinFile: stdinFile)
        #expect(r.status == 2, "expected exit 2 for \(args): \(r.out) \(r.err)", sourceLocation: sourceLocation)
        #expect(r.err.contains(needle), "stderr lacks \"\(needle)\": \(r.err)", sourceLocation: sourceLocation)
        #expect(r.err.split(separator: "\n").count == 1, "not one line: \(r.err)", sourceLocation: sourceLocation)
    }

    func layerBlob(_ layout: String) throws -> String {
        let index = try jsonObject(try Data(contentsOf: URL(fileURLWithPath: layout + "/index.json")))
        let m = ((index["manifests"] as! [[String: Any]])[0]["digest"] as! String).dropFirst(7)
        let manifest = try jsonObject(try Data(contentsOf: URL(fileURLWithPath: "\(layout)/blobs/sha256/\(m)")))
        let l = ((manifest["layers"] as! [[String: Any]])[0]["digest"] as! String).dropFirst(7)
        return "\(layout)/blobs/sha256/\(l)"
    }

    @Test(.tags(.engine)) func corruptInputsFailWithOneClearLine() throws {
        let img = try BuiltImage.get()
        try withTempDir { t in
            // Blob digest mismatch (same size, one byte changed) and missing blob.
            try sh("cp -a \(img.layout) \(t)/bad && cp -a \(img.layout) \(t)/missing")
            let blob = try layerBlob(t + "/bad")
            // XOR, not an overwrite: a fixed byte equals the one already there once in 256 builds of the fixture.
            try CorruptInputMatrixTests.flip(blob, at: 100)
            try expectFailure(["inspect", t + "/bad"], "does not match its digest")
            try sh("rm \(try layerBlob(t + "/missing"))")
            try expectFailure(["extract", t + "/missing"], "is missing")
            // Truncated gzip and bad tar checksum in filesystem tars.
            try sh("cd \(t) && mkdir d && head -c 300000 /dev/urandom > d/f && tar -cf fs.tar d && gzip -c fs.tar > full.gz && head -c 100000 full.gz > trunc.tar.gz")
            try expectFailure(["inspect", t + "/trunc.tar.gz", "--tree-digest"], "truncated")
            try sh("cd \(t) && cp fs.tar bad.tar && printf 'Z' | dd of=bad.tar bs=1 seek=600 conv=notrunc 2>/dev/null && printf 'Q' | dd of=bad.tar bs=1 seek=3 conv=notrunc 2>/dev/null")
            try expectFailure(["inspect", "-", "--tree-digest"], "checksum", stdinFile: t + "/bad.tar")
            // An entry naming a path above the root lands inside it, as the runtime puts it, and nothing is written
            // outside.
            try sh("""
            cd \(t) && python3 -c "
            import tarfile, io
            with tarfile.open('evil.tar', 'w') as tf:
                data = b'pwned'
                ti = tarfile.TarInfo('../../etc/passwd'); ti.size = len(data); tf.addfile(ti, io.BytesIO(data))
            "
            """)
            try expectFailure(["extract", t + "/evil.tar", "-o", t + "/out.json"], "has no imprint manifest")
            #expect(!FileManager.default.fileExists(atPath: t + "/out.json"))
            let listing = try imprint(["inspect", t + "/evil.tar", "--files"])
            #expect(listing.status == 0 && listing.out.contains("etc/passwd"), "\(listing.out)")
            #expect(!((try? String(contentsOfFile: "/etc/passwd", encoding: .utf8)) ?? "").contains("pwned"))
            // No matching platform lists what is there.
            try expectFailure(["inspect", img.layout, "--platform", "linux/s390x"], "linux/amd64")
            // Unknown manifest media type.
            try sh("cp -a \(img.layout) \(t)/mt && sed -i 's|application/vnd.oci.image.manifest.v1+json|application/x-unknown|' \(t)/mt/index.json")
            try expectFailure(["inspect", t + "/mt"], "unknown media type")
            // zstd layers are refused by their magic bytes.
            try sh("skopeo copy -q --dest-compress-format zstd oci:\(img.layout):t oci:\(t)/zstd:t")
            try expectFailure(["inspect", t + "/zstd"], "is a zstd stream, which imprint does not read")
            // Stamping with a bad manifest writes nothing.
            _ = try imprint(["fingerprint", img.context, "-o", t + "/m.json", "-q"])
            try sh("cp \(img.ociArchive) \(t)/o.tar")
            try expectFailure(["stamp", t + "/o.tar", "--manifest", t + "/fs.tar", "-o", t + "/never.tar"], "manifest")
            #expect(!FileManager.default.fileExists(atPath: t + "/never.tar"))
        }
    }
}
