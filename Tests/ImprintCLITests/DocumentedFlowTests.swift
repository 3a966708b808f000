import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The flow the README documents, right by construction: each case here is a way it once went wrong.
@Suite struct DocumentedFlowTests {
    func app(_ dir: String) throws -> String {
        let app = dir + "/app"
        try writeFile(app + "/app.py", "print('hi')\n")
        try writeFile(app + "/pkg/mod.py", "VALUE = 1\n")
        try writeFile(app + "/.dockerignore", "**/__pycache__\n")
        return app
    }

    func digest(_ args: [String], cwd: String) throws -> String {
        let r = try imprint(args + ["--digest-only", "-q"], cwd: cwd)
        #expect(r.status == 0, "\(r.err)")
        return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func outputsWrittenIntoTheContextDoNotChangeTheDigest() throws {
        try withTempDir { dir in
            let app = try app(dir)
            let before = try digest(["fingerprint", "."], cwd: app)
            // -o inside the context, then --emit: later fingerprints still give the same digest.
            #expect(try imprint("fingerprint", ".", "-q", "-o", "manifest.json", cwd: app).status == 0)
            #expect(try digest(["fingerprint", "."], cwd: app) == before)
            #expect(try imprint("fingerprint", ".", "-q", "--emit", ".imprint/manifest.json", "--digest-file", "../out/d.txt", cwd: app).status == 0)
            #expect(try digest(["fingerprint", "."], cwd: app) == before)
            #expect(try String(contentsOfFile: dir + "/out/d.txt", encoding: .utf8) == before + "\n")
            // A manifest that is data (not written into this place by imprint) is part of the context.
            try sh("cp '\(dir)/app/manifest.json' '\(dir)/app/pkg/data.json'")
            #expect(try digest(["fingerprint", "."], cwd: app) != before)
        }
    }

    @Test func theDefaultDockerfilesIgnoreFileWins() throws {
        try withTempDir { dir in
            let app = try app(dir)
            try writeFile(app + "/Dockerfile", "FROM scratch\nCOPY . /app\n")
            try writeFile(app + "/Dockerfile.dockerignore", "pkg\n")
            let r = try imprint("fingerprint", ".", "-q", "--format", "sha256sum", cwd: app)
            #expect(r.status == 0)
            #expect(!r.out.contains("pkg/mod.py"), "Dockerfile.dockerignore replaces .dockerignore for the default Dockerfile")
            let m = try imprint("fingerprint", ".", "-q", cwd: app)
            #expect(m.out.contains("\"path\": \"Dockerfile.dockerignore\""))
        }
    }

    @Test func aMissingDockerfileIsAnError() throws {
        try withTempDir { dir in
            let app = try app(dir)
            let r = try imprint("fingerprint", ".", "-f", "nope.Dockerfile", cwd: app)
            #expect(r.status == 2)
            #expect(r.err.contains("the Dockerfile nope.Dockerfile does not exist"), "\(r.err)")
        }
    }

    @Test func anEmptyContextIsReported() throws {
        try withTempDir { dir in
            let app = try app(dir)
            try writeFile(app + "/.dockerignore", "*\n")
            let r = try imprint("fingerprint", ".", "--digest-only", cwd: app)
            #expect(r.status == 0)
            #expect(r.err.contains("empty-context: .: nothing in the context is sent to the builder"), "\(r.err)")
            #expect(try imprint("fingerprint", ".", "--strict", "-o", dir + "/m.json", cwd: app).status == 1)
        }
    }

    @Test func aRootOnlyPycachePatternSaysToWriteStarStar() throws {
        try withTempDir { dir in
            let app = try app(dir)
            try writeFile(app + "/.dockerignore", "__pycache__\n")
            try writeFile(app + "/pkg/__pycache__/mod.cpython-311.pyc", "x")
            let r = try imprint("fingerprint", ".", "-o", dir + "/m.json", cwd: app)
            #expect(r.err.contains("ignore-pattern: pkg/__pycache__: .dockerignore line 1: \"__pycache__\" matches only at the context root"), "\(r.err)")
            #expect(r.err.contains("write **/__pycache__"))
            #expect(r.err.contains("add **/__pycache__ and **/*.pyc to .dockerignore"))
        }
    }

    @Test func aTamperedSizeInTheManifestDoesNotVerify() throws {
        try withTempDir { dir in
            let app = try app(dir)
            #expect(try imprint("fingerprint", ".", "-q", "-o", dir + "/m.json", cwd: app).status == 0)
            var text = try String(contentsOfFile: dir + "/m.json", encoding: .utf8)
            text = text.replacingOccurrences(of: "\"path\":\"app.py\",\"type\":\"file\",\"mode\":\"0644\",\"size\":12", with: "\"path\":\"app.py\",\"type\":\"file\",\"mode\":\"0644\",\"size\":99")
            try writeFile(dir + "/m.json", text)
            let r = try imprint("verify", app, "--manifest", dir + "/m.json")
            #expect(r.status == 1, "\(r.out)\(r.err)")
            #expect(r.out.contains("the manifest records a size the content does not have"), "\(r.out)")
        }
    }

    @Test func onlyBytecodeFailingSaysSoInTheHeadline() throws {
        try requireTool("python3")
        try withTempDir { dir in
            let app = try app(dir)
            try writeFile(app + "/.dockerignore", "")
            try sh("cd '\(app)/pkg' && python3 -c \"import py_compile as p; p.compile('mod.py', cfile='mod.pyc', doraise=True)\" && rm mod.py")
            #expect(try imprint("fingerprint", ".", "-q", "-o", dir + "/m.json", cwd: app).status == 0)
            let r = try imprint("verify", app, "--manifest", dir + "/m.json")
            #expect(r.status == 1)
            let first = r.out.split(separator: "\n").first ?? ""
            #expect(first.contains("holds the files of") && first.contains("but Python would not run them as built"), "\(first)")
            #expect(!r.out.contains("target digest at"), "no digest line that repeats the manifest's")
        }
    }

    @Test(.tags(.engine)) func stampCheckRefusesWhatVerifyWouldReject() throws {
        try requireTool("python3")
        let img = try BuiltImage.get()
        try withTempDir { dir in
            // A context with an orphan legacy pyc: files match, but verify rejects the bytecode.
            let ctx = dir + "/ctx"
            try sh("cp -a '\(img.context)' '\(ctx)' && cd '\(ctx)/lib' && python3 -c \"import py_compile as p; p.compile('util.py', cfile='old.pyc', doraise=True)\"")
            try sh("""
            cd '\(dir)' && cp '\(img.dir)/Dockerfile' . && B="buildah --root \(dir)/r --runroot \(dir)/rr --storage-driver vfs"
            $B bud --isolation chroot -q -f Dockerfile -t t ctx >/dev/null && $B push -q t oci:\(dir)/oci:t >/dev/null
            """)
            #expect(try imprint("fingerprint", ctx, "-q", "-o", dir + "/m.json").status == 0)
            let index = try Data(contentsOf: URL(fileURLWithPath: dir + "/oci/index.json"))
            let r = try imprint("stamp", dir + "/oci", "--manifest", dir + "/m.json", "--check")
            #expect(r.status == 1, "\(r.err)")
            #expect(r.err.contains("orphan-sourceless-pyc"), "\(r.err)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/oci/index.json")) == index, "nothing was stamped")
        }
    }

    @Test(.tags(.engine)) func extractFindsAnEmittedManifestLikeVerify() throws {
        let img = try BuiltImage.get()
        try withTempDir { dir in
            let ctx = dir + "/ctx"
            try sh("cp -a '\(img.context)' '\(ctx)'")
            #expect(try imprint("fingerprint", ctx, "-q", "--emit", ".imprint/manifest.json").status == 0)
            try sh("""
            cd '\(dir)' && cp '\(img.dir)/Dockerfile' . && B="buildah --root \(dir)/r --runroot \(dir)/rr --storage-driver vfs"
            $B bud --isolation chroot -q -f Dockerfile -t t ctx >/dev/null && $B push -q t oci:\(dir)/oci:t >/dev/null
            """)
            let r = try imprint("extract", dir + "/oci", "-o", dir + "/x.json")
            #expect(r.status == 0, "\(r.err)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/x.json")) == (try Data(contentsOf: URL(fileURLWithPath: ctx + "/.imprint/manifest.json"))))
            #expect(try imprint("verify", dir + "/oci").status == 0)
        }
    }

    @Test(.tags(.registry)) func restampingInARegistryReplacesTheStampLayer() throws {
        try withTempDir { dir in
            let reg = try LocalRegistry(dir: dir)
            defer { reg.stop() }
            try makeTwoLayerImage(dir)
            try reg.push("\(dir)/img:v1", "app:v1")
            try writeFile(dir + "/ctx/a.txt", "one\n")
            #expect(try imprint("stamp", "registry://\(reg.host)/app:v1", "--context", dir + "/ctx").status == 0)
            try writeFile(dir + "/ctx/a.txt", "two\n")
            #expect(try imprint("stamp", "registry://\(reg.host)/app:v1", "--context", dir + "/ctx").status == 0)
            let inspect = try imprint("inspect", "registry://\(reg.host)/app:v1", "--format", "json")
            let layers = try jsonObject(inspect.stdout)["layers"] as? [Any] ?? []
            #expect(layers.count == 3, "two base layers and one stamp, not two stamps: \(layers.count)")
            let x = try imprint("extract", "registry://\(reg.host)/app:v1")
            #expect(x.out.contains("\"path\":\"a.txt\""))
            let fp = try imprint("fingerprint", dir + "/ctx", "--digest-only", "-q")
            #expect(try imprint("verify", "registry://\(reg.host)/app:v1", "--stamp-only", "--expect", fp.out.trimmingCharacters(in: .whitespacesAndNewlines)).status == 0)
        }
    }
}
