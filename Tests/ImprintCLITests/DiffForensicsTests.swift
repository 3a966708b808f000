import Foundation
import Testing

/// What changed inside two real images (buildah from scratch): a config file's unified diff, a binary's first
/// differing byte, a file a later layer deletes, a package pip installed at another version, and an installed
/// file edited after pip — named against the package's own RECORD.
@Suite(.serialized) struct DiffForensicsTests {
    /// A wheel of `demo-pkg` at `version` (written as pip's wheel format: METADATA, WHEEL, RECORD with hashes).
    static let wheelScript = #"""
    import base64, hashlib, sys, zipfile
    out, version = sys.argv[1], sys.argv[2]
    files = {
        "demo_pkg/__init__.py": "VERSION = %r\n" % version,
        "demo_pkg/util.py": "def helper():\n    return 'helper %s'\n" % version,
        "demo_pkg-%s.dist-info/METADATA" % version: "Metadata-Version: 2.1\nName: demo-pkg\nVersion: %s\n\n" % version,
        "demo_pkg-%s.dist-info/WHEEL" % version: "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "demo_pkg-%s.dist-info/RECORD" % version
    with zipfile.ZipFile(out, "w") as z:
        lines = []
        for name, text in files.items():
            data = text.encode()
            z.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            lines.append("%s,sha256=%s,%d" % (name, digest, len(data)))
        lines.append(record + ",,")
        z.writestr(record, "\n".join(lines) + "\n")
    """#

    /// Two images in one OCI layout `L` (tags a and b): B edits the config, changes one byte of a binary, installs
    /// demo-pkg 2.0 instead of 1.0 (pip), hand-edits an installed file, and deletes /app/old.txt in a layer of its own.
    static func makeImages(_ tmp: String) throws {
        try requireTool("buildah")
        try prepareContexts(tmp)
        try sh("""
        B="buildah --root \(tmp)/r --runroot \(tmp)/rr --storage-driver vfs"
        for s in a b; do
          $B bud -q --layers --isolation chroot --timestamp 0 -f $s/Dockerfile -t $s $s >/dev/null
          $B push -q $s oci:\(tmp)/L:$s
        done
        """, cwd: tmp)
    }

    /// The two build contexts `a` and `b` (rootfs, busybox, Dockerfile) that `makeImages` builds.
    static func prepareContexts(_ tmp: String) throws {
        try requireTool("busybox")
        try writeFile(tmp + "/wheel.py", wheelScript)
        for (side, version) in [("a", "1.0"), ("b", "2.0")] {
            let root = "\(tmp)/\(side)/rootfs"
            try sh("""
            python3 wheel.py demo_pkg-\(version)-py3-none-any.whl \(version)
            mkdir -p \(root)/etc \(root)/app \(root)/usr/lib/python3/site-packages
            python3 -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check \
                --target \(root)/usr/lib/python3/site-packages demo_pkg-\(version)-py3-none-any.whl
            printf 'old\\n' > \(root)/app/old.txt
            python3 -c "import sys; open(sys.argv[1], 'wb').write(bytes(range(256)) * 4)" \(root)/app/data.bin
            """, cwd: tmp)
        }
        try writeFile(tmp + "/a/rootfs/etc/app.conf", "[server]\nport = 8080\nworkers = 2\nlog = info\n\n[cache]\nsize = 64\n")
        try writeFile(tmp + "/b/rootfs/etc/app.conf", "[server]\nport = 8080\nworkers = 4\nlog = info\n\n[cache]\nsize = 64\nbanner = <script>alert(1)</script>\n")
        try sh("""
        python3 -c "import sys; b = bytearray(open(sys.argv[1], 'rb').read()); b[700] ^= 0xff; open(sys.argv[1], 'wb').write(b)" b/rootfs/app/data.bin
        printf 'def helper():\\n    return "patched in place"\\n' > b/rootfs/usr/lib/python3/site-packages/demo_pkg/util.py
        cp "$(command -v busybox)" b/busybox
        printf 'FROM scratch\\nCOPY rootfs/ /\\n' > a/Dockerfile
        printf 'FROM scratch\\nCOPY rootfs/ /\\nCOPY busybox /busybox\\nRUN ["/busybox", "rm", "/app/old.txt"]\\n' > b/Dockerfile
        """, cwd: tmp)
    }

    @Test(.tags(.engine)) func contentPackagesAndRecordFromRealImages() throws {
        try withTempDir { tmp in
            try Self.makeImages(tmp)
            let r = try imprint("diff", "oci:L:a", "oci:L:b", "--format", "json", cwd: tmp)
            #expect(r.status == 1, "\(r.err)")
            try expectValidJSON(r.stdout, schema: "diff-report.schema.json")
            let report = try jsonObject(r.stdout)
            let contents = (report["contents"] as? [[String: Any]]) ?? []
            let conf = contents.first { $0["path"] as? String == "/etc/app.conf" }
            let unified = conf?["unified"] as? String ?? ""
            #expect(unified.contains("@@ -1,7 +1,8 @@") && unified.contains("-workers = 2\n+workers = 4\n") && unified.contains("+banner = <script>alert(1)</script>\n"),
                    "config diff: \(unified)")
            #expect(conf?["added"] as? Int == 2 && conf?["removed"] as? Int == 1)
            let bin = contents.first { $0["path"] as? String == "/app/data.bin" }
            #expect(bin?["kind"] as? String == "binary" && bin?["firstDifference"] as? Int == 700, "\(String(describing: bin))")
            // The deleted file, and the layer that deleted it.
            let removed = ((report["changes"] as? [[String: Any]]) ?? []).first { $0["path"] as? String == "/app/old.txt" }
            #expect(removed?["class"] as? String == "removed")
            // pip's own records: the version change, and the file edited after install.
            let packages = (report["packages"] as? [[String: Any]]) ?? []
            #expect(packages.count == 1 && packages.first?["name"] as? String == "demo-pkg" && packages.first?["a"] as? String == "1.0"
                    && packages.first?["b"] as? String == "2.0" && packages.first?["change"] as? String == "changed", "\(packages)")
            let installed = (report["installedFiles"] as? [[String: Any]]) ?? []
            #expect(installed.count == 1 && installed.first?["path"] as? String == "/usr/lib/python3/site-packages/demo_pkg/util.py"
                    && installed.first?["side"] as? String == "b" && installed.first?["package"] as? String == "demo_pkg-2.0", "\(installed)")

            let text = try imprint("diff", "oci:L:a", "oci:L:b", cwd: tmp)
            #expect(text.out.contains("  ~ python demo-pkg 1.0 → 2.0  (/usr/lib/python3/site-packages/demo_pkg-2.0.dist-info)"), "\(text.out)")
            #expect(text.out.contains("[B] /usr/lib/python3/site-packages/demo_pkg/util.py (demo_pkg-2.0)"))
            #expect(text.out.contains("    +workers = 4"))
            #expect(text.out.contains("/app/data.bin: binary, first difference at byte 700"))

            let only = try imprint("diff", "oci:L:a", "oci:L:b", "--packages-only", "--format", "json", cwd: tmp)
            #expect(only.status == 1)
            #expect(((try jsonObject(only.stdout)["changes"] as? [Any]) ?? [1]).isEmpty)
            #expect(((try jsonObject(only.stdout)["packages"] as? [Any]) ?? []).count == 1)

            // Ignore rules from a file: the config, the binary and site-packages are left out; the deleted file and
            // what B's RUN step added (busybox, the mount points buildah creates) remain.
            try writeFile(tmp + "/.diffignore", "# noise\netc/app.conf\napp/data.bin\nusr/lib/python3/**\n")
            let ignored = try imprint("diff", "oci:L:a", "oci:L:b", "--ignore-file", tmp + "/.diffignore", "--format", "json", cwd: tmp)
            let paths = Set(((try jsonObject(ignored.stdout)["changes"] as? [[String: Any]]) ?? []).compactMap { $0["path"] as? String })
            #expect(paths.contains("/app/old.txt") && paths.contains("/busybox"), "\(paths)")
            #expect(!paths.contains { $0.hasPrefix("/etc/app.conf") || $0.hasPrefix("/app/data.bin") || $0.hasPrefix("/usr/lib/python3/") }, "\(paths)")
            // A bound on what is read: the config diff covers only the first bytes and says so.
            let small = try imprint("diff", "oci:L:a", "oci:L:b", "--max-diff-bytes", "20", "--format", "json", cwd: tmp)
            let note = ((try jsonObject(small.stdout)["contents"] as? [[String: Any]]) ?? []).first { $0["path"] as? String == "/etc/app.conf" }?["note"] as? String
            #expect(note?.contains("first 20 bytes") == true, "\(String(describing: note))")
        }
    }

    /// The same contexts built by the docker CLI (through podman's Docker-compatible API) and saved as
    /// docker-archives: the same findings.
    @Test(.tags(.engine)) func sameFindingsFromImagesTheDockerCLIBuilt() throws {
        let engine = try ContainerEngine()
        defer { engine.stop() }
        try withTempDir { tmp in
            try Self.prepareContexts(tmp)
            try engine.sh("""
            for s in a b; do
              docker build -q -t localhost/forensics-$s $s >/dev/null
              docker save -o $s.tar localhost/forensics-$s
            done
            """, cwd: tmp)
            let r = try imprint("diff", "a.tar", "b.tar", "--format", "json", cwd: tmp)
            #expect(r.status == 1, "\(r.err)")
            try expectValidJSON(r.stdout, schema: "diff-report.schema.json")
            let report = try jsonObject(r.stdout)
            let unified = ((report["contents"] as? [[String: Any]]) ?? []).first { $0["path"] as? String == "/etc/app.conf" }?["unified"] as? String ?? ""
            #expect(unified.contains("-workers = 2\n+workers = 4\n"), "\(unified)")
            let packages = (report["packages"] as? [[String: Any]]) ?? []
            #expect(packages.map { "\($0["name"] ?? "") \($0["a"] ?? "") \($0["b"] ?? "")" } == ["demo-pkg 1.0 2.0"], "\(packages)")
            let installed = ((report["installedFiles"] as? [[String: Any]]) ?? []).compactMap { $0["path"] as? String }
            #expect(installed == ["/usr/lib/python3/site-packages/demo_pkg/util.py"], "\(installed)")
            #expect(((report["changes"] as? [[String: Any]]) ?? []).contains { $0["path"] as? String == "/app/old.txt" && $0["class"] as? String == "removed" })
            let layers = try imprint("layers", "b.tar", "--format", "json", cwd: tmp)
            let removed = ((try jsonObject(layers.stdout)["layers"] as? [[String: Any]]) ?? []).flatMap { ($0["removed"] as? [[String: Any]]) ?? [] }
            #expect(removed.contains { $0["path"] as? String == "/app/old.txt" && $0["type"] as? String == "whiteout" }, "\(layers.out)")
        }
    }

    @Test(.tags(.engine)) func eachLayerWithItsWhiteoutsAndWaste() throws {
        try withTempDir { tmp in
            try Self.makeImages(tmp)
            let r = try imprint("layers", "oci:L:b", "--format", "json", cwd: tmp)
            #expect(r.status == 0, "\(r.err)")
            try expectValidJSON(r.stdout, schema: "layers.schema.json")
            let layers = (try jsonObject(r.stdout)["layers"] as? [[String: Any]]) ?? []
            #expect(layers.count == 3, "one layer per instruction (buildah --layers): \(layers.count)")
            let rm = layers.last ?? [:]
            #expect((rm["createdBy"] as? String)?.contains("rm") == true, "\(String(describing: rm["createdBy"]))")
            let removed = (rm["removed"] as? [[String: Any]]) ?? []
            #expect(removed.contains { $0["path"] as? String == "/app/old.txt" && $0["type"] as? String == "whiteout" && $0["size"] as? Int == 4 }, "\(removed)")
            // The 4 bytes of old.txt sit in the first layer, shipped and never seen.
            let total = try jsonObject(r.stdout)["wasted"] as? Int
            #expect(layers.first?["wasted"] as? Int == 4 && total == 4)
            let added = ((layers.first?["added"] as? [[String: Any]]) ?? []).compactMap { $0["path"] as? String }
            #expect(added.contains("/etc/app.conf") && added.contains("/usr/lib/python3/site-packages/demo_pkg/util.py"))
            let text = try imprint("layers", "oci:L:b", cwd: tmp)
            #expect(text.out.contains("    - /app/old.txt (4 B)") && text.out.contains("4 B wasted"), "\(text.out)")
            let html = try imprint("layers", "oci:L:b", "--format", "html", cwd: tmp)
            #expect(html.out.contains("<code>/app/old.txt</code>") && !html.out.contains("<script"))
            #expect(try imprint("layers", tmp + "/a/rootfs").status == 2)
        }
    }

    /// A stale pyc, diffed through CPython's disassembly: the constant that changed is named.
    @Test func bytecodeIsDiffedAsItsDisassembly() throws {
        try requireTool("python3")
        try withTempDir { tmp in
            for (side, version) in [("a", "v1"), ("b", "v2")] {
                try writeFile("\(tmp)/src-\(side)/mod.py", "VERSION = '\(version)'\n\ndef handler(x):\n    return x + \(version == "v1" ? 1 : 2)\n")
                try sh("mkdir -p \(tmp)/\(side) && python3 -c \"import py_compile; py_compile.compile('\(tmp)/src-\(side)/mod.py', cfile='\(tmp)/\(side)/mod.pyc', doraise=True)\"")
            }
            let r = try imprint("diff", tmp + "/a", tmp + "/b", "--python", "python3", "--format", "json")
            #expect(r.status == 1)
            let c = ((try jsonObject(r.stdout)["contents"] as? [[String: Any]]) ?? []).first { $0["path"] as? String == "/mod.pyc" }
            let u = c?["unified"] as? String ?? ""
            #expect(u.contains("-consts: ['v1'") && u.contains("+consts: ['v2'") && u.contains("== handler"), "\(u)")
            #expect((c?["note"] as? String)?.contains("disassembly") == true)
            // Without --python: a binary file with its first differing byte.
            let plain = try imprint("diff", tmp + "/a", tmp + "/b", "--format", "json")
            let pc = ((try jsonObject(plain.stdout)["contents"] as? [[String: Any]]) ?? []).first { $0["path"] as? String == "/mod.pyc" }
            #expect(pc?["kind"] as? String == "binary" && pc?["firstDifference"] != nil)
        }
    }

    /// The same files cut into other layers: different, unless --semantic.
    @Test(.tags(.engine)) func layerBoundariesAreNoDifferenceWithSemantic() throws {
        try requireTool("buildah")
        try withTempDir { tmp in
            try writeFile(tmp + "/ctx/one.txt", "1\n")
            try writeFile(tmp + "/ctx/two.txt", "2\n")
            try sh("""
            printf 'FROM scratch\\nCOPY one.txt /one.txt\\nCOPY two.txt /two.txt\\n' > split.Dockerfile
            printf 'FROM scratch\\nCOPY . /\\n' > whole.Dockerfile
            printf 'split.Dockerfile\\nwhole.Dockerfile\\n' > ctx/.dockerignore
            B="buildah --root \(tmp)/r --runroot \(tmp)/rr --storage-driver vfs"
            for s in split whole; do
              $B bud -q --layers --isolation chroot --timestamp 0 -f $s.Dockerfile -t $s ctx >/dev/null
              $B push -q $s oci:\(tmp)/L:$s
            done
            """, cwd: tmp)
            let plain = try imprint("diff", "oci:L:split", "oci:L:whole", cwd: tmp)
            #expect(plain.status == 1, "\(plain.out)")
            let semantic = try imprint("diff", "oci:L:split", "oci:L:whole", "--semantic", "--ignore", ".dockerignore", cwd: tmp)
            #expect(semantic.status == 0, "\(semantic.out)\(semantic.err)")
        }
    }

    @Test(.tags(.engine, .browser)) func contentDiffRendersEscapedInChromium() throws {
        try requireTool("chromium")
        try withTempDir { tmp in
            try Self.makeImages(tmp)
            let r = try imprint("diff", "oci:L:a", "oci:L:b", "--format", "html", "-o", tmp + "/diff.html", cwd: tmp)
            #expect(r.status == 1)
            if ProcessInfo.processInfo.environment["IMPRINT_KEEP"] != nil { try? FileManager.default.copyItem(atPath: tmp, toPath: "/tmp/forensics-keep") }
            let dom = try run("chromium", ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000",
                                           "--enable-logging=stderr", "--v=0", "--dump-dom", "file://\(tmp)/diff.html"])
            #expect(dom.status == 0, "\(dom.err)")
            // The diff is in the page as text: the config line is escaped, never an element.
            #expect(dom.out.contains("data-path=\"/etc/app.conf\""))
            #expect(dom.out.contains("<span class=\"ins\">+banner = &lt;script&gt;alert(1)&lt;/script&gt;</span>"), "\(dom.out.prefix(4000))")
            #expect(dom.out.contains("<span class=\"del\">-workers = 2</span>"))
            #expect(dom.out.contains("demo-pkg") && dom.out.contains("util.py"))
            let consoleErrors = dom.err.split(separator: "\n").filter { $0.contains("CONSOLE") && ($0.contains("ERROR") || $0.contains("Uncaught")) }
            #expect(consoleErrors.isEmpty, "\(consoleErrors)")
            // A screenshot with the content diffs open, kept with the test's artifacts.
            let artifacts = TestEnv.packageRoot.path + "/.build/test-artifacts"
            try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
            let html = try String(contentsOfFile: tmp + "/diff.html", encoding: .utf8)
                .replacingOccurrences(of: "<details class=\\\"content\\\"", with: "<details open class=\\\"content\\\"")
                .replacingOccurrences(of: "el(\"details\", {class: \"content\"", with: "el(\"details\", {open: \"\", class: \"content\"")
            try html.write(toFile: tmp + "/open.html", atomically: true, encoding: .utf8)
            let shot = try run("chromium", ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,1600",
                                            "--screenshot=\(artifacts)/diff-content.png", "file://\(tmp)/open.html"])
            #expect(shot.status == 0 && FileManager.default.fileExists(atPath: artifacts + "/diff-content.png"), "\(shot.err)")
        }
    }
}
