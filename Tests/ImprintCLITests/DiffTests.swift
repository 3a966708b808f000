import Foundation
import Testing

/// Two real images made with umoci that differ in known ways, compared with `imprint diff`.
@Suite(.serialized) struct DiffTests {
    /// Builds layout L with image `a` (one layer) and image `b` = a + one layer (with whiteouts) + config changes.
    static func makeImages(_ tmp: String) throws {
        try requireTool("umoci")
        try requireTool("python3")
        try sh("""
        umoci init --layout L
        umoci new --image L:a
        umoci unpack --image L:a A >/dev/null
        mkdir -p A/rootfs/app/pkg A/rootfs/etc
        printf 'VALUE = "v1"\\n' > A/rootfs/app/pkg/mod.py
        printf 'print("main")\\n' > A/rootfs/app/main.py
        printf 'gone' > A/rootfs/app/old.txt
        printf '#!/bin/sh\\n' > A/rootfs/app/run.sh && chmod 644 A/rootfs/app/run.sh
        ln -s main.py A/rootfs/app/entry
        printf 'same' > A/rootfs/etc/conf
        umoci repack --image L:a A >/dev/null
        umoci config --image L:a --config.env APP_ENV=prod --config.cmd /app/run.sh --config.label version=1 >/dev/null
        umoci unpack --image L:a B >/dev/null
        printf 'VALUE = "v2"\\n' > B/rootfs/app/pkg/mod.py
        rm B/rootfs/app/old.txt
        printf 'new' > B/rootfs/app/new.txt
        chmod 755 B/rootfs/app/run.sh
        ln -sfn pkg/mod.py B/rootfs/app/entry
        mkdir -p B/rootfs/app/pkg/__pycache__
        printf 'VALUE = "v0"\\n' > /tmp/imprint-diff-old-$$.py
        python3 -c "import py_compile,sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)" /tmp/imprint-diff-old-$$.py B/rootfs/app/pkg/__pycache__/mod.cpython-311.pyc
        rm /tmp/imprint-diff-old-$$.py
        umoci repack --image L:b B >/dev/null
        umoci config --image L:b --config.env APP_ENV=staging --config.cmd /app/main.py --config.label version=2 >/dev/null
        """, cwd: tmp)
    }

    @Test func reportsEachDifferenceOnceWithClassAndLayer() throws {
        try withTempDir { tmp in
            try Self.makeImages(tmp)
            let r = try imprint("diff", "oci:L:a", "oci:L:b", "--format", "json", cwd: tmp)
            #expect(r.status == 1, "\(r.err)")
            try expectValidJSON(r.stdout, schema: "diff-report.schema.json")
            let report = try jsonObject(r.stdout)
            let changes = report["changes"] as! [[String: Any]]
            let got = changes.map { "\($0["class"] as! String) \($0["path"] as! String)" }.sorted()
            #expect(got == [
                "added /app/new.txt",
                "added /app/pkg/__pycache__",
                "added /app/pkg/__pycache__/mod.cpython-311.pyc",
                "mode /app/run.sh",
                "modified /app/pkg/mod.py",
                "removed /app/old.txt",
                "symlink-target /app/entry",
            ], "\(got)")
            // Layer attribution: A's mod.py came from the shared first layer, B's from B's extra layer.
            let mod = changes.first { ($0["path"] as? String) == "/app/pkg/mod.py" }!
            #expect((mod["a"] as! [String: Any])["layer"] as? Int == 0)
            #expect((mod["b"] as! [String: Any])["layer"] as? Int == 1)
            // Config: ENV, CMD, label (and the history of the extra layer).
            let fields = (report["config"] as! [[String: Any]]).map { $0["field"] as! String }
            for f in ["Env.APP_ENV", "Cmd", "Labels.version"] { #expect(fields.contains(f), "\(fields)") }
            let summary = report["summary"] as! [String: Any]
            #expect(summary["sharedLayers"] as? Int == 1)
            #expect((report["b"] as! [String: Any])["layers"].map { ($0 as! [Any]).count } == 2)
            // Stale bytecode is its own class.
            let bytecode = (report["bytecode"] as! [[String: Any]]).map { "\($0["side"] as! String) \($0["class"] as! String) \($0["path"] as! String)" }
            #expect(bytecode == ["b stale-unchecked-hash-pyc /app/pkg/__pycache__/mod.cpython-311.pyc"])

            let text = try imprint("diff", "oci:L:a", "oci:L:b", cwd: tmp)
            #expect(text.status == 1)
            #expect(text.out.hasPrefix("DIFFERENT: oci:L:a → oci:L:b: 3 added, 1 removed, 3 modified"))
            #expect(text.out.contains("  /app: +3 -1 ~3"))
            #expect(text.out.contains("written by: A layer 0"))
            // --include (as verify's; --only is kept as a hidden alias) and --ignore.
            let only = try imprint("diff", "oci:L:a", "oci:L:b", "--include", "/app/pkg/**", "--format", "json", cwd: tmp)
            #expect(try imprint("diff", "oci:L:a", "oci:L:b", "--only", "/app/pkg/**", "--format", "json", cwd: tmp).stdout == only.stdout)
            let onlyPaths = (try jsonObject(only.stdout)["changes"] as! [[String: Any]]).map { $0["path"] as! String }
            #expect(onlyPaths.sorted() == ["/app/pkg/__pycache__", "/app/pkg/__pycache__/mod.cpython-311.pyc", "/app/pkg/mod.py"])
            let ignored = try imprint("diff", "oci:L:a", "oci:L:b", "--ignore", "app/pkg", "--ignore", "app/*.txt", "--format", "json", cwd: tmp)
            let ignoredPaths = (try jsonObject(ignored.stdout)["changes"] as! [[String: Any]]).map { $0["path"] as! String }
            #expect(ignoredPaths.sorted() == ["/app/entry", "/app/run.sh"])
        }
    }

    @Test func sameImageInDifferentFormatsIsIdentical() throws {
        try requireTool("skopeo")
        try withTempDir { tmp in
            try Self.makeImages(tmp)
            try sh("skopeo copy -q oci:L:a docker-archive:a.tar:a:latest && skopeo copy -q oci:L:a oci-archive:a-oci.tar:a", cwd: tmp)
            for other in ["docker-archive:a.tar", "a-oci.tar"] {
                let r = try imprint("diff", "oci:L:a", other, cwd: tmp)
                #expect(r.status == 0, "\(other): \(r.out)\(r.err)")
                #expect(r.out.hasPrefix("IDENTICAL"))
            }
            // A container export (tar of the unpacked rootfs) against the image: same files.
            try sh("umoci unpack --image L:a U >/dev/null && tar -C U/rootfs -cf rootfs.tar .", cwd: tmp)
            let tarDiff = try imprint("diff", "oci:L:a", "rootfs.tar", "--format", "json", cwd: tmp)
            #expect((try jsonObject(tarDiff.stdout)["changes"] as! [Any]).isEmpty, "\(tarDiff.out)")
        }
    }

    @Test(.tags(.browser)) func htmlReportRendersInChromium() throws {
        try requireTool("chromium")
        try withTempDir { tmp in
            try Self.makeImages(tmp)
            let r = try imprint("diff", "oci:L:a", "oci:L:b", "--format", "html", "-o", tmp + "/diff.html", cwd: tmp)
            #expect(r.status == 1)
            let html = try String(contentsOfFile: tmp + "/diff.html", encoding: .utf8)
            #expect(!html.contains("http://") && !html.contains("https://"), "the report must not load anything from the network")
            // Render with headless Chromium; collect the DOM after scripts ran and any console errors.
            let dom = try run("chromium", ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000",
                                           "--enable-logging=stderr", "--v=0", "--dump-dom", "file://\(tmp)/diff.html"])
            #expect(dom.status == 0, "\(dom.err)")
            for path in ["/app/new.txt", "/app/old.txt", "/app/pkg/mod.py", "/app/run.sh", "/app/entry"] {
                #expect(dom.out.contains("data-path=\"\(path)\""), "rendered DOM lacks \(path)")
            }
            #expect(dom.out.contains("Env.APP_ENV"))
            let consoleErrors = dom.err.split(separator: "\n").filter { $0.contains("CONSOLE") && ($0.contains("ERROR") || $0.contains("Uncaught")) }
            #expect(consoleErrors.isEmpty, "\(consoleErrors)")
        }
    }

    @Test func badInputAndExitCodes() throws {
        try withTempDir { tmp in
            try writeFile(tmp + "/m.json", "{}")
            #expect(try imprint("diff", tmp + "/missing", tmp).status == 2)
            #expect(try imprint("diff", tmp + "/m.json", tmp).status == 2)
            try sh("mkdir -p x y && printf 1 > x/f && printf 1 > y/f", cwd: tmp)
            #expect(try imprint("diff", tmp + "/x", tmp + "/y").status == 0)
        }
    }
}
