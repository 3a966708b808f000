import Foundation
import Testing

/// `imprint diff` of images sharing bottom layers (`LayeredDiff`): the same report as flattening both images in
/// full (`--no-layer-sharing`), without hashing the shared files nothing above them touches.
@Suite(.serialized) struct LayerSharingDiffTests {
    /// Writes an OCI layout `L` with hand-made layers (whiteouts, an opaque directory, hard links):
    /// `base` = 2 shared layers; `a` and `b` = base + one layer each; `c` = base + a layer rewriting a file that
    /// a shared hard link points through.
    static func makeLayout(_ tmp: String) throws {
        try requireTool("python3")
        try sh(#"""
        python3 - <<'PY'
        import gzip, hashlib, io, json, os, random, tarfile
        os.makedirs("L/blobs/sha256", exist_ok=True)
        open("L/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
        def blob(data):
            d = hashlib.sha256(data).hexdigest()
            open(f"L/blobs/sha256/{d}", "wb").write(data)
            return "sha256:" + d, len(data)
        def layer(entries):
            raw = io.BytesIO()
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
                for e in entries:
                    kind, name = e[0], e[1]
                    ti = tarfile.TarInfo(name); ti.mtime = 1700000000; ti.uid = ti.gid = 0
                    data = None
                    if kind == "d": ti.type = tarfile.DIRTYPE; ti.mode = 0o755
                    elif kind == "f":
                        data = e[2] if isinstance(e[2], bytes) else e[2].encode(); ti.size = len(data); ti.mode = 0o644
                    elif kind == "h": ti.type = tarfile.LNKTYPE; ti.linkname = e[2]; ti.mode = 0o644
                    t.addfile(ti, io.BytesIO(data) if data is not None else None)
            tar = raw.getvalue()
            diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
            digest, size = blob(gzip.compress(tar, mtime=0))
            return {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size}, diff_id
        rnd = random.Random(7)
        big1 = bytes(rnd.getrandbits(8) for _ in range(1 << 20))
        big2 = bytes(rnd.getrandbits(8) for _ in range(1 << 20))
        l0 = layer([("d", "app"), ("d", "app/old"), ("d", "app/old/sub"), ("d", "app/typ"), ("d", "etc"), ("d", "usr"),
                    ("f", "app/keep.txt", "keep"), ("f", "app/mod.txt", "v1"), ("f", "app/del.txt", "delete me"),
                    ("f", "app/old/x", "x"), ("f", "app/old/sub/y", "y"), ("f", "app/typ/inner", "inner"),
                    ("f", "etc/conf", "c"), ("f", "usr/big1.bin", big1), ("f", "app/hl-target", "target"),
                    ("h", "app/link", "app/hl-target")])
        l1 = layer([("f", "usr/big2.bin", big2), ("f", "app/later.txt", "later")])
        la = layer([("f", "app/a-only.txt", "a"), ("f", "etc/conf", "c-a")])
        lb = layer([("d", "app"), ("f", "app/.wh.del.txt", ""), ("d", "app/old"), ("f", "app/old/.wh..wh..opq", ""),
                    ("f", "app/old/new", "n"), ("f", "app/mod.txt", "v2"), ("f", "app/added.txt", "added"),
                    ("f", "app/typ", "now a file"), ("h", "app/hl2", "app/hl-target")])
        lc = layer([("f", "app/link", "no longer a link")])
        manifests = []
        for tag, layers in [("base", [l0, l1]), ("a", [l0, l1, la]), ("b", [l0, l1, lb]), ("c", [l0, l1, lc])]:
            config = {"architecture": "amd64", "os": "linux", "config": {"Env": ["TAG=" + tag]},
                      "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]},
                      "history": [{"created_by": f"layer {i}"} for i in range(len(layers))]}
            cd, cs = blob(json.dumps(config).encode())
            m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                 "layers": [l for l, _ in layers]}
            md, ms = blob(json.dumps(m).encode())
            manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
                              "annotations": {"org.opencontainers.image.ref.name": tag}})
        json.dump({"schemaVersion": 2, "manifests": manifests}, open("L/index.json", "w"))
        PY
        """#, cwd: tmp)
    }

    /// The JSON report without the sides' tree digests (the fast path does not compute them).
    static func comparable(_ data: Data) throws -> NSDictionary {
        var o = try jsonObject(data)
        for side in ["a", "b"] {
            var s = o[side] as! [String: Any]
            s["digest"] = NSNull()
            o[side] = s
        }
        return o as NSDictionary
    }

    static func stats(_ r: RunResult) throws -> [String: Any] {
        let line = r.err.split(separator: "\n").first { $0.hasPrefix("imprint-diff-stats ") }
        #expect(line != nil, "no statistics on stderr: \(r.err)")
        return try jsonObject(Data((line ?? "imprint-diff-stats {}").dropFirst("imprint-diff-stats ".count).utf8))
    }

    @Test func sameReportAsFullFlattenWithoutHashingSharedFiles() throws {
        try withTempDir { tmp in
            try Self.makeLayout(tmp)
            let env = ["IMPRINT_DIFF_STATS": "1"]
            let fast = try imprint("diff", "oci:L:a", "oci:L:b", "--format", "json", cwd: tmp, env: env)
            let slow = try imprint("diff", "oci:L:a", "oci:L:b", "--format", "json", "--no-layer-sharing", cwd: tmp, env: env)
            #expect(fast.status == 1, "\(fast.err)")
            #expect(slow.status == 1, "\(slow.err)")
            try expectValidJSON(fast.stdout, schema: "diff-report.schema.json")
            #expect(try Self.comparable(fast.stdout) == Self.comparable(slow.stdout), "\(fast.out)\n---\n\(slow.out)")
            let report = try jsonObject(fast.stdout)
            #expect((report["a"] as! [String: Any])["digest"] is NSNull)
            #expect((try jsonObject(slow.stdout)["a"] as! [String: Any])["digest"] is String)
            let changes = report["changes"] as! [[String: Any]]
            let got = changes.map { "\($0["class"] as! String) \($0["path"] as! String)" }.sorted()
            #expect(got == [
                "added /app/added.txt", "added /app/hl2", "added /app/old/new",
                "modified /app/mod.txt", "modified /etc/conf",
                "removed /app/a-only.txt", "removed /app/del.txt", "removed /app/old/sub", "removed /app/old/sub/y",
                "removed /app/old/x", "removed /app/typ/inner", "type /app/typ",
            ], "\(got)")
            func layer(_ path: String, _ side: String) -> Int? {
                (changes.first { $0["path"] as? String == path }?[side] as? [String: Any])?["layer"] as? Int
            }
            #expect(layer("/app/del.txt", "a") == 0)
            #expect(layer("/app/mod.txt", "a") == 0 && layer("/app/mod.txt", "b") == 2)
            #expect(layer("/etc/conf", "a") == 2 && layer("/etc/conf", "b") == 0)
            #expect(layer("/app/old/sub/y", "a") == 0 && layer("/app/old/new", "b") == 2)
            #expect(layer("/app/a-only.txt", "a") == 2)
            let hl2 = changes.first { $0["path"] as? String == "/app/hl2" }?["b"] as? [String: Any]
            #expect(hl2?["hardlink"] as? String == "app/hl-target")
            #expect(hl2?["sha256"] as? String == sha256Hex("target"), "\(String(describing: hl2))")
            // The 2 MiB of files under /usr, in shared layers and touched by neither side, were not hashed.
            let s = try Self.stats(fast)
            #expect(s["sharedLayers"] as? Int == 2)
            #expect(s["fellBack"] as? Bool == false)
            #expect((s["sharedBytesSkipped"] as? Int ?? 0) >= 2 << 20, "\(s)")
            #expect((s["sharedBytesHashed"] as? Int ?? Int.max) < 1024, "\(s)")
            #expect(!slow.err.contains("imprint-diff-stats"))
            // Text output agrees too.
            let fastText = try imprint("diff", "oci:L:a", "oci:L:b", cwd: tmp)
            let slowText = try imprint("diff", "oci:L:a", "oci:L:b", "--no-layer-sharing", cwd: tmp)
            #expect(fastText.out == slowText.out)
            #expect(fastText.out.contains("layers: 2 shared, 1 only in A, 1 only in B"))
        }
    }

    @Test func hardLinkToSkippedContentFallsBackToFullFlatten() throws {
        try withTempDir { tmp in
            try Self.makeLayout(tmp)
            let env = ["IMPRINT_DIFF_STATS": "1"]
            // c rewrites app/link, a hard link in a shared layer to app/hl-target, which nothing above touches.
            let fast = try imprint("diff", "oci:L:base", "oci:L:c", "--format", "json", cwd: tmp, env: env)
            let slow = try imprint("diff", "oci:L:base", "oci:L:c", "--format", "json", "--no-layer-sharing", cwd: tmp)
            #expect(fast.status == 1, "\(fast.err)")
            #expect(try Self.comparable(fast.stdout) == Self.comparable(slow.stdout), "\(fast.out)\n---\n\(slow.out)")
            let changes = try jsonObject(fast.stdout)["changes"] as! [[String: Any]]
            #expect(changes.map { "\($0["class"] as! String) \($0["path"] as! String)" }.sorted() == ["hardlink /app/link", "modified /app/link"])
            #expect(try Self.stats(fast)["fellBack"] as? Bool == true)
        }
    }

    @Test func identicalAndUnrelatedImages() throws {
        try withTempDir { tmp in
            try Self.makeLayout(tmp)
            // All layers shared: identical without hashing anything.
            let same = try imprint("diff", "oci:L:a", "oci:L:a", cwd: tmp, env: ["IMPRINT_DIFF_STATS": "1"])
            #expect(same.status == 0, "\(same.out)\(same.err)")
            #expect(try Self.stats(same)["sharedBytesHashed"] as? Int == 0)
            // An image against a directory: the full path (no statistics).
            try sh("mkdir -p d/app && printf keep > d/app/keep.txt", cwd: tmp)
            let mixed = try imprint("diff", "oci:L:a", "d", cwd: tmp, env: ["IMPRINT_DIFF_STATS": "1"])
            #expect(mixed.status == 1)
            #expect(!mixed.err.contains("imprint-diff-stats"))
        }
    }
}

private func sha256Hex(_ s: String) -> String {
    let r = try! run("python3", ["-c", "import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())", s])
    return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
}
