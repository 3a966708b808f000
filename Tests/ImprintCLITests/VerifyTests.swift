import Foundation
import Testing

@Suite struct VerifyTests {
    /// A context, its manifest, and a "deployed" rootfs: the context copied to /app, the manifest at
    /// /.imprint/manifest.json (where `imprint stamp` puts it).
    struct Deployed {
        var ctx: String
        var rootfs: String
        var app: String { rootfs + "/app" }
        var digest: String
    }

    static func deploy(_ tmp: String) throws -> Deployed {
        let ctx = tmp + "/ctx", rootfs = tmp + "/rootfs"
        try sh("""
        mkdir -p \(ctx)/pkg \(ctx)/static \(rootfs)/.imprint \(rootfs)/app
        cd \(ctx)
        printf 'VALUE = "v1"\\n' > pkg/mod.py
        printf '' > pkg/__init__.py
        printf 'print("main")\\n' > main.py
        printf 'body{}' > static/site.css
        printf '#!/bin/sh\\n' > run.sh && chmod 755 run.sh
        ln -s main.py entry.py
        printf '__pycache__\\n*.pyc\\n' > .dockerignore
        """)
        let m = try imprint("fingerprint", ctx, "-o", rootfs + "/.imprint/manifest.json", "-q")
        #expect(m.status == 0)
        try sh("cd \(ctx) && tar cf - . | tar xpf - -C \(rootfs)/app")
        let digest = try jsonObject(try Data(contentsOf: URL(fileURLWithPath: rootfs + "/.imprint/manifest.json")))["digest"] as! String
        return Deployed(ctx: ctx, rootfs: rootfs, digest: digest)
    }

    @Test func verifiedDirectoryAndTrustLevels() throws {
        try withTempDir { tmp in
            let d = try Self.deploy(tmp)
            let plain = try imprint("verify", d.rootfs)
            #expect(plain.status == 0, "\(plain.out)\(plain.err)")
            #expect(plain.out.hasPrefix("VERIFIED: "))
            #expect(plain.out.contains("at /app"))
            #expect(plain.out.contains("consistent but unauthenticated"))
            let strict = try imprint("verify", d.rootfs, "--require-trust")
            #expect(strict.status == 1)
            let expected = try imprint("verify", d.rootfs, "--expect", d.digest, "--require-trust")
            #expect(expected.status == 0)
            #expect(expected.out.contains("matches the expected digest"))
            // A tampered embedded manifest (re-fingerprinted after a code change) is caught by --expect.
            try sh("printf 'VALUE = \"evil\"\\n' > \(d.ctx)/pkg/mod.py && cp \(d.ctx)/pkg/mod.py \(d.app)/pkg/mod.py")
            #expect(try imprint("fingerprint", d.ctx, "-o", d.rootfs + "/.imprint/manifest.json", "-q").status == 0)
            #expect(try imprint("verify", d.rootfs).status == 0)   // self-consistent...
            let caught = try imprint("verify", d.rootfs, "--expect", d.digest, "--format", "json")
            #expect(caught.status == 1)                             // ...but not what CI recorded
            try expectValidJSON(caught.stdout, schema: "verify-report.schema.json")
            let findings = try jsonObject(caught.stdout)["findings"] as! [[String: Any]]
            #expect(findings.map { $0["class"] as! String } == ["digest-mismatch"])
        }
    }

    struct Mutation: CustomTestStringConvertible, Sendable {
        var name: String
        var script: String
        var expected: [String]   // "class path" or "bytecode/<detail> path"
        /// "error" when old or unexpected code can run (MISMATCH, exit 1); "warning" for a leftover CPython checks
        /// and ignores (VERIFIED, exit 0, the finding still named).
        var severity = "error"
        var testDescription: String { name }
    }

    static let mutations: [Mutation] = [
        Mutation(name: "one byte changed", script: "printf 'VALUE = \"v2\"\\n' > pkg/mod.py", expected: ["modified pkg/mod.py"]),
        Mutation(name: "chmod", script: "chmod 700 run.sh", expected: ["mode run.sh"]),
        Mutation(name: "file deleted", script: "rm static/site.css", expected: ["missing static/site.css"]),
        Mutation(name: "file added", script: "printf x > extra.txt", expected: ["extra extra.txt"]),
        Mutation(name: "file replaced by a symlink", script: "rm main.py && ln -s pkg/mod.py main.py", expected: ["type main.py"]),
        Mutation(name: "symlink retargeted", script: "ln -sfn pkg/mod.py entry.py", expected: ["symlink-target entry.py"]),
        Mutation(name: "stale timestamp pyc", script: "python3 -c \"import py_compile; py_compile.compile('pkg/mod.py')\" && printf 'VALUE = \"v1\"  # edited\\n' > pkg/mod.py.new && touch -d '2020-01-01' pkg/mod.py.new && python3 -c \"import py_compile; py_compile.compile('pkg/mod.py.new', cfile='pkg/__pycache__/mod.cpython-311.pyc')\" ; rm -f pkg/mod.py.new",
                 expected: ["bytecode/stale-timestamp-pyc pkg/__pycache__/mod.cpython-311.pyc"], severity: "warning"),
        Mutation(name: "stale unchecked-hash pyc", script: "printf 'VALUE = \"old\"\\n' > /tmp/imprint-old-$$.py && python3 -c \"import py_compile,sys; py_compile.compile(sys.argv[1], cfile='pkg/__pycache__/mod.cpython-311.pyc', invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)\" /tmp/imprint-old-$$.py && rm /tmp/imprint-old-$$.py",
                 expected: ["bytecode/stale-unchecked-hash-pyc pkg/__pycache__/mod.cpython-311.pyc"]),
        Mutation(name: "stale checked-hash pyc", script: "printf 'VALUE = \"old\"\\n' > /tmp/imprint-old-$$.py && python3 -c \"import py_compile,sys; py_compile.compile(sys.argv[1], cfile='pkg/__pycache__/mod.cpython-311.pyc', invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)\" /tmp/imprint-old-$$.py && rm /tmp/imprint-old-$$.py",
                 expected: ["bytecode/stale-checked-hash-pyc pkg/__pycache__/mod.cpython-311.pyc"], severity: "warning"),
        Mutation(name: "sourceless legacy pyc left behind", script: "printf 'X = 1\\n' > gone.py && python3 -c \"import py_compile; py_compile.compile('gone.py', cfile='gone.pyc')\" && rm gone.py",
                 expected: ["extra gone.pyc", "bytecode/orphan-sourceless-pyc gone.pyc"]),
    ]

    @Test(arguments: mutations)
    func eachDifferenceIsReportedOnceWithItsClass(_ m: Mutation) throws {
        try requireTool("python3")
        try withTempDir { tmp in
            let d = try Self.deploy(tmp)
            try sh(m.script, cwd: d.app)
            let r = try imprint("verify", d.rootfs, "--expect", d.digest, "--format", "json")
            let isError = m.severity == "error"
            #expect(r.status == (isError ? 1 : 0), "\(r.out)\(r.err)")
            try expectValidJSON(r.stdout, schema: "verify-report.schema.json")
            let report = try jsonObject(r.stdout)
            #expect(report["verdict"] as? String == (isError ? "MISMATCH" : "VERIFIED"))
            let got = (report["findings"] as! [[String: Any]]).filter { ($0["severity"] as? String) == m.severity }.map { f -> String in
                let cls = f["class"] as! String
                return (cls == "bytecode" ? "bytecode/\(f["detail"] as! String)" : cls) + " " + (f["path"] as! String)
            }
            #expect(got.sorted() == m.expected.sorted())
            // The text report starts with the verdict line and names the path.
            let text = try imprint("verify", d.rootfs, "--expect", d.digest)
            #expect(text.out.hasPrefix(isError ? "MISMATCH: " : "VERIFIED: "))
            #expect(text.out.contains(m.expected[0].split(separator: " ").last!))
        }
    }

    @Test func signedManifestIsCheckedWithPubkey() throws {
        try withTempDir { tmp in
            let d = try Self.deploy(tmp)
            #expect(try imprint("keygen", "-o", tmp + "/ci").status == 0)
            #expect(try imprint("keygen", "-o", tmp + "/other").status == 0)
            #expect(try imprint("sign", d.rootfs + "/.imprint/manifest.json", "--key", tmp + "/ci.key").status == 0)
            let ok = try imprint("verify", d.rootfs, "--pubkey", tmp + "/ci.pub", "--require-trust", "--format", "json")
            #expect(ok.status == 0, "\(ok.out)\(ok.err)")
            #expect(try jsonObject(ok.stdout)["trust"] as? String == "signature")
            let both = try imprint("verify", d.rootfs, "--pubkey", tmp + "/ci.pub", "--expect", d.digest)
            #expect(both.out.contains("matches the expected digest, signature valid"))
            // Another key: the signature does not count.
            let wrongKey = try imprint("verify", d.rootfs, "--pubkey", tmp + "/other.pub", "--format", "json")
            #expect(wrongKey.status == 1)
            #expect((try jsonObject(wrongKey.stdout)["findings"] as! [[String: Any]]).map { $0["class"] as! String } == ["signature"])
            // The attacker rewrites code and manifest but cannot sign: caught.
            try sh("printf 'VALUE = \"evil\"\\n' > \(d.ctx)/pkg/mod.py && cp \(d.ctx)/pkg/mod.py \(d.app)/pkg/mod.py")
            #expect(try imprint("fingerprint", d.ctx, "-o", d.rootfs + "/.imprint/manifest.json", "-q").status == 0)
            let tampered = try imprint("verify", d.rootfs, "--pubkey", tmp + "/ci.pub")
            #expect(tampered.status == 1)
            #expect(tampered.out.contains("signature"))
            // No signature at all.
            try FileManager.default.removeItem(atPath: d.rootfs + "/.imprint/manifest.sig")
            let unsigned = try imprint("verify", d.rootfs, "--pubkey", tmp + "/ci.pub")
            #expect(unsigned.status == 1)
            #expect(unsigned.out.contains("no signature found"))
        }
    }

    @Test func junitAndGithubFormats() throws {
        try withTempDir { tmp in
            let d = try Self.deploy(tmp)
            try sh("printf 'x' >> main.py && rm static/site.css", cwd: d.app)
            let junit = try imprint("verify", d.rootfs, "--format", "junit", "-o", tmp + "/junit.xml")
            #expect(junit.status == 1)
            let parse = try run("python3", ["-c", """
            import sys, xml.etree.ElementTree as ET
            root = ET.parse(sys.argv[1]).getroot()
            cases = root.findall('.//testcase')
            failed = sorted(c.get('name') for c in cases if c.find('failure') is not None)
            print(len(cases), ','.join(failed))
            """, tmp + "/junit.xml"])
            #expect(parse.status == 0, "\(parse.err)")
            #expect(parse.out.hasSuffix(" missing,modified\n"))
            let summary = tmp + "/summary.md"
            let gh = try imprint("verify", d.rootfs, "--format", "github", env: ["GITHUB_STEP_SUMMARY": summary])
            #expect(gh.status == 1)
            #expect(gh.out.contains("::error file=main.py, title=imprint modified::content differs"))
            #expect(gh.out.contains("::error file=static/site.css, title=imprint missing::"))
            #expect(try String(contentsOfFile: summary, encoding: .utf8).contains("| modified | `main.py` |"))
        }
    }

    @Test func allowExtraIncludeAndAt() throws {
        try withTempDir { tmp in
            let d = try Self.deploy(tmp)
            try sh("mkdir -p logs && printf x > logs/a.log && mkdir -p pkg/__pycache__ && printf 'junk' > other.txt", cwd: d.app)
            let r = try imprint("verify", d.rootfs, "--at", "/app", "--allow-extra", "logs", "--allow-extra", "other.txt")
            #expect(r.status == 0, "\(r.out)")
            #expect(r.out.hasPrefix("VERIFIED"))
            let notAllowed = try imprint("verify", d.rootfs, "--at", "/app", "--allow-extra", "logs")
            #expect(notAllowed.status == 1)
            #expect(notAllowed.out.contains("other.txt"))
            // --include limits the check to matching manifest entries.
            try sh("printf 'changed' > static/site.css", cwd: d.app)
            let inc = try imprint("verify", d.rootfs, "--at", "/app", "--include", "pkg", "--include", "*.py", "--allow-extra", "**")
            #expect(inc.status == 0, "\(inc.out)")
            // A wrong --at is a clear error.
            let bad = try imprint("verify", d.rootfs, "--at", "/nowhere")
            #expect(bad.status == 2)
            #expect(bad.err.contains("/nowhere"))
        }
    }

    @Test func emittedManifestRoute() throws {
        try withTempDir { tmp in
            let d = try Self.deploy(tmp)
            #expect(try imprint("fingerprint", d.ctx, "--emit", ".imprint/manifest.json", "-q", "-o", "/dev/null").status == 0)
            let app = tmp + "/app2"
            try sh("mkdir -p \(app) && cd \(d.ctx) && tar cf - . | tar xpf - -C \(app)")
            let r = try imprint("verify", app, "--expect", d.digest)
            #expect(r.status == 0, "\(r.out)\(r.err)")
            #expect(r.out.contains("/.imprint/manifest.json") || r.out.contains("VERIFIED"))
        }
    }

    @Test func badInput() throws {
        try withTempDir { tmp in
            let d = try Self.deploy(tmp)
            #expect(try imprint("verify", tmp + "/none").status == 2)
            #expect(try imprint("verify", d.app + "/pkg").status == 2)   // no manifest
            try writeFile(tmp + "/bad.json", "{not json")
            let bad = try imprint("verify", d.rootfs, "--manifest", tmp + "/bad.json")
            #expect(bad.status == 2)
            #expect(bad.err.contains("bad.json"))
            // A manifest whose entries were edited by hand no longer matches its recorded digest.
            let m = try String(contentsOfFile: d.rootfs + "/.imprint/manifest.json", encoding: .utf8)
            try writeFile(tmp + "/edited.json", m.replacingOccurrences(of: "\"mode\":\"0755\"", with: "\"mode\":\"0700\""))
            let edited = try imprint("verify", d.rootfs, "--manifest", tmp + "/edited.json")
            #expect(edited.status == 2)
            #expect(edited.err.contains("does not match its entries"))
            #expect(try imprint("verify", d.rootfs, "--expect", "nonsense").status == 2)
        }
    }
}
