import Foundation
import Testing

@Suite struct FingerprintTests {
    /// A small but varied context: nested dirs, an empty dir, symlinks, modes, a non-UTF-8 name.
    static func makeContext(_ dir: String) throws {
        try sh("""
        mkdir -p src/pkg empty 'with space'
        printf 'print(1)\\n' > src/main.py
        printf 'x = 1\\n' > src/pkg/__init__.py
        printf '#!/bin/sh\\necho hi\\n' > run.sh && chmod 755 run.sh
        printf 'secret' > private.txt && chmod 600 private.txt
        ln -s src/main.py entry
        ln -s ../nowhere dangling
        printf 'latin1' > "$(printf 'caf\\351.txt')"
        printf 'in space' > 'with space/f'
        printf '*.log\\n' > .dockerignore
        printf 'noise' > debug.log
        """, cwd: dir)
    }

    @Test func manifestIsValidDeterministicAndComplete() throws {
        try withTempDir { tmp in
            try Self.makeContext(tmp)
            let r = try imprint("fingerprint", tmp, "-q", env: ["SOURCE_DATE_EPOCH": "1700000000"])
            #expect(r.status == 0, "\(r.err)")
            try expectValidJSON(r.stdout, schema: "manifest.schema.json")
            let m = try jsonObject(r.stdout)
            let entries = m["entries"] as! [[String: Any]]
            let paths = entries.map { $0["path"] as! String }
            #expect(!paths.contains("debug.log"))
            #expect(paths.contains("empty"))
            #expect(paths.contains("entry"))
            #expect(entries.first { $0["path"] as? String == "entry" }?["target"] as? String == "src/main.py")
            #expect(entries.first { $0["path"] as? String == "run.sh" }?["mode"] as? String == "0755")
            #expect(entries.first { $0["path"] as? String == "private.txt" }?["mode"] as? String == "0600")
            let latin = entries.first { ($0["pathBase64"] as? String) != nil }
            #expect(latin?["pathBase64"] as? String == Data("caf\u{E9}.txt".data(using: .isoLatin1)!).base64EncodedString())
            #expect((m["metadata"] as! [String: Any])["created"] as? String == "2023-11-14T22:13:20Z")
            // Same bytes on a second run with the same SOURCE_DATE_EPOCH.
            let again = try imprint("fingerprint", tmp, "-q", env: ["SOURCE_DATE_EPOCH": "1700000000"])
            #expect(again.stdout == r.stdout)
        }
    }

    @Test func digestIgnoresMtimesLocaleAndOrder() throws {
        try withTempDir { tmp in
            try Self.makeContext(tmp)
            let a = try imprint("fingerprint", tmp, "--digest-only", "-q", env: ["LC_ALL": "C"])
            try sh("find . -exec touch -h -d '2001-02-03 04:05:06' {} +", cwd: tmp)
            let b = try imprint("fingerprint", tmp, "--digest-only", "-q", env: ["LC_ALL": "C.UTF-8", "LANG": "tr_TR.UTF-8"])
            let c = try imprint("fingerprint", tmp, "--digest-only", "-q", env: ["LC_ALL": "", "LANG": "de_DE.UTF-8", "TZ": "Asia/Tokyo"])
            #expect(a.status == 0)
            #expect(a.out.hasPrefix("sha256:"))
            #expect(a.out == b.out)
            #expect(a.out == c.out)
            // The same tree copied elsewhere (new inodes, new readdir order) gives the same digest.
            try sh("mkdir ../copy-\((tmp as NSString).lastPathComponent) && tar cf - . | tar xpf - -C ../copy-\((tmp as NSString).lastPathComponent)", cwd: tmp)
            let copy = (tmp as NSString).deletingLastPathComponent + "/copy-" + (tmp as NSString).lastPathComponent
            defer { try? FileManager.default.removeItem(atPath: copy) }
            #expect(try imprint("fingerprint", copy, "--digest-only", "-q").out == a.out)
            // A one-byte change, a chmod and a rename each change it.
            try sh("printf 'print(2)\\n' > src/main.py", cwd: tmp)
            let d = try imprint("fingerprint", tmp, "--digest-only", "-q")
            #expect(d.out != a.out)
            try sh("printf 'print(1)\\n' > src/main.py && chmod 700 run.sh", cwd: tmp)
            #expect(try imprint("fingerprint", tmp, "--digest-only", "-q").out != a.out)
        }
    }

    @Test func sha256sumFormatChecksInsideAnyContainer() throws {
        try requireTool("sha256sum")
        try withTempDir { tmp in
            try Self.makeContext(tmp)
            let sums = tmp + "/../\((tmp as NSString).lastPathComponent).sums"
            defer { try? FileManager.default.removeItem(atPath: sums) }
            #expect(try imprint("fingerprint", tmp, "--format", "sha256sum", "-o", sums, "-q").status == 0)
            let ok = try run("sha256sum", ["--strict", "-c", sums], cwd: tmp)
            #expect(ok.status == 0, "\(ok.out)\(ok.err)")
            try sh("printf 'print(3)\\n' > src/main.py", cwd: tmp)
            let bad = try run("sha256sum", ["--quiet", "-c", sums], cwd: tmp)
            #expect(bad.status == 1)
            #expect(bad.out.contains("src/main.py: FAILED"))
        }
    }

    /// Thousands of sibling directories under the usual soft limit of 1,024 descriptors: the walk holds at most a
    /// budget of queued directories open (the rest are opened by path when listed), so fingerprint and verify both
    /// finish, and `sha256sum` confirms every file's digest.
    @Test func aWideTreeFitsTheDefaultDescriptorLimit() throws {
        try requireTool("sha256sum")
        try withTempDir { tmp in
            try sh("mkdir ctx && cd ctx && mkdir $(seq -f d%g 3000) && for i in $(seq 3000); do echo $i > d$i/f; done", cwd: tmp)
            let r = try sh("""
            ulimit -Sn 1024
            "$IMPRINT" fingerprint ctx -q -o m.json
            "$IMPRINT" fingerprint ctx -q --format sha256sum -o sums
            "$IMPRINT" verify ctx --manifest m.json -q
            (cd ctx && sha256sum --strict --quiet -c ../sums)
            wc -l < sums
            """, cwd: tmp, env: ["IMPRINT": TestEnv.imprintPath])
            #expect(r.out.trimmingCharacters(in: .whitespacesAndNewlines) == "3000", "\(r.err)")
        }
    }

    @Test func mtreeFormatValidatesWithNetBSDMtree() throws {
        try requireTool("mtree")
        try withTempDir { tmp in
            let ctx = tmp + "/ctx"
            try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
            try Self.makeContext(ctx)
            try FileManager.default.removeItem(atPath: ctx + "/debug.log")  // mtree reports files outside the spec
            let spec = tmp + "/spec"
            #expect(try imprint("fingerprint", ctx, "--format", "mtree", "-o", spec, "-q").status == 0)
            let ok = try run("mtree", ["-f", spec, "-p", ctx])
            #expect(ok.status == 0, "mtree: \(ok.out)\(ok.err)")
            try sh("printf 'print(1)!' > src/main.py", cwd: ctx)
            let bad = try run("mtree", ["-f", spec, "-p", ctx])
            #expect(bad.status != 0)
            #expect(bad.out.contains("main.py"))
        }
    }

    @Test func emitWritesManifestIntoContextOutsideItsOwnDigest() throws {
        try withTempDir { tmp in
            try Self.makeContext(tmp)
            let plain = try imprint("fingerprint", tmp, "--digest-only", "-q")
            let r = try imprint("fingerprint", tmp, "--emit", ".imprint/manifest.json", "-q")
            #expect(r.status == 0)
            let emitted = try Data(contentsOf: URL(fileURLWithPath: tmp + "/.imprint/manifest.json"))
            try expectValidJSON(emitted, schema: "manifest.schema.json")
            let m = try jsonObject(emitted)
            #expect((m["digest"] as! String) + "\n" == plain.out)
            #expect((m["metadata"] as! [String: Any])["excluded"] as? [String] == [".imprint/manifest.json"])
            // Running again with the emitted file present gives the same digest.
            #expect(try imprint("fingerprint", tmp, "--emit", ".imprint/manifest.json", "--digest-only", "-q").out == plain.out)
            // -o inside the context is left out too.
            try FileManager.default.removeItem(atPath: tmp + "/.imprint")
            #expect(try imprint("fingerprint", tmp, "-o", tmp + "/manifest.json", "-q").status == 0)
            let withOutput = try jsonObject(try Data(contentsOf: URL(fileURLWithPath: tmp + "/manifest.json")))
            #expect((withOutput["digest"] as! String) + "\n" == plain.out)
            #expect((withOutput["metadata"] as! [String: Any])["excluded"] as? [String] == ["manifest.json"])
        }
    }

    @Test func hygieneFindingsAndStrict() throws {
        try withTempDir { tmp in
            try sh("""
            mkdir -p app/__pycache__ .git node_modules/x
            printf 'x' > app/__pycache__/m.cpython-311.pyc
            printf 'x' > app/legacy.pyc
            printf 'A=1' > .env
            printf 'k' > server.pem
            printf 'k' > id_rsa
            printf 'ref' > .git/HEAD
            printf 'm' > node_modules/x/i.js
            head -c 2097152 /dev/zero > big.bin
            """, cwd: tmp)
            let r = try imprint("fingerprint", tmp, "--large-file", "1", "-o", tmp + "/../m-\((tmp as NSString).lastPathComponent).json")
            #expect(r.status == 0)
            for needle in ["no-ignore-file", "bytecode: app/__pycache__", "bytecode: app/legacy.pyc", "secret: .env", "secret: server.pem", "secret: id_rsa", "vcs: .git", "node-modules: node_modules", "large-file: big.bin"] {
                #expect(r.err.contains(needle), "missing \(needle) in:\n\(r.err)")
            }
            try? FileManager.default.removeItem(atPath: tmp + "/../m-\((tmp as NSString).lastPathComponent).json")
            let strict = try imprint("fingerprint", tmp, "--strict", "--digest-only")
            #expect(strict.status == 1)
            try writeFile(tmp + "/.dockerignore", "**/__pycache__\n**/*.pyc\n.git\n.env\n*.pem\nid_rsa\nnode_modules\nbig.bin\n")
            let clean = try imprint("fingerprint", tmp, "--strict", "--digest-only")
            #expect(clean.status == 0, "\(clean.err)")
            #expect(clean.err.isEmpty)
        }
    }

    @Test func badInputGivesOneLineExitTwoAndNoOutputFile() throws {
        try withTempDir { tmp in
            let out = tmp + "/out.json"
            // Missing context, not a directory.
            for ctx in [tmp + "/missing", "/etc/hostname"] {
                let r = try imprint("fingerprint", ctx, "-o", out)
                #expect(r.status == 2)
                #expect(r.err.hasPrefix("imprint: error: "))
                #expect(r.err.contains(ctx))
                #expect(r.err.split(separator: "\n").count == 1)
                #expect(!FileManager.default.fileExists(atPath: out))
            }
            // Invalid patterns name the file and line.
            let ctx = tmp + "/ctx"
            try writeFile(ctx + "/a", "a")
            for (pattern, line) in [("ok\n[\n", 2), ("!\n", 1), ("x\ny\nfoo\\\n", 3), ("[-]\n", 1)] {
                try writeFile(ctx + "/.dockerignore", pattern)
                let r = try imprint("fingerprint", ctx, "-o", out)
                #expect(r.status == 2)
                #expect(r.err.contains(".dockerignore:\(line):"), "\(r.err)")
                #expect(!FileManager.default.fileExists(atPath: out))
            }
            try FileManager.default.removeItem(atPath: ctx + "/.dockerignore")
            // An ignore file that cannot be read.
            let r = try imprint("fingerprint", ctx, "--ignore-file", tmp + "/nope", "-o", out)
            #expect(r.status == 2)
            #expect(r.err.contains(tmp + "/nope"))
            // Unreadable file and directory (run as nobody: root reads everything).
            try requireTool("setpriv")
            try sh("chmod 755 \(tmp) \(ctx) && mkdir -p \(ctx)/closed && chmod 000 \(ctx)/closed", cwd: tmp)
            let asNobody = ["--reuid", "65534", "--regid", "65534", "--clear-groups", TestEnv.imprintPath]
            try sh("chmod -R a+rX \((TestEnv.imprintPath as NSString).deletingLastPathComponent) || true")
            let d = try run("setpriv", asNobody + ["fingerprint", ctx, "--digest-only"])
            #expect(d.status == 2)
            #expect(d.err.contains("closed"), "\(d.err)")
            try sh("chmod 755 \(ctx)/closed && printf x > \(ctx)/closed/f && chmod 000 \(ctx)/closed/f")
            let f = try run("setpriv", asNobody + ["fingerprint", ctx, "--digest-only"])
            #expect(f.status == 2)
            #expect(f.err.contains("closed/f"), "\(f.err)")
        }
    }
}
