import Foundation
import Testing

/// Builds real images with buildah (`FROM scratch`, `COPY . /app`) and checks that the bytes buildah put under
/// `/app` are exactly the entries of imprint's manifest: same root digest, same entry list.
@Suite(.serialized) struct BuildahAgreementTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        /// Shell commands run inside the context directory to create it.
        var setup: String
        var ignore: String?
        /// BuildKit's result where it differs from buildah 1.28 (paths of all entries, walk order).
        var buildkitPaths: [String]? = nil
        var testDescription: String { name }
    }

    static let files = "mkdir -p a/b docs build/sub node_modules/x deep/p/q empty; for f in a.txt b.txt c.txt x.log y.log keep.md README.md README-secret.md notes.md f1.txt fz.txt abc.md bcd.md xy.go ay.go 'q*z' qz a/b/c.tmp deep/p/q/z deep/z docs/keep.md docs/drop.md build/a.keep build/sub/b.keep build/c.o node_modules/x/README.md node_modules/x/i.js '#notcomment' 'a(b)c' abc x+y xxy; do printf '%s\\n' \"$f\" > \"$f\"; done"

    static let cases: [Case] = [
        Case(name: "comments, blank lines, whitespace", setup: files, ignore: "# a comment\n\n   *.log   \n #notcomment\n\t\n"),
        Case(name: "leading ./ and / stripped, paths cleaned", setup: files, ignore: "./a.txt\n/b.txt\nx/../c.txt\ndocs/\n"),
        Case(name: "star, question mark, classes, escapes", setup: files, ignore: "f?.txt\n[a-c]*.md\n[^x]y.go\nq\\*z\n"),
        Case(name: "double star across directories", setup: files, ignore: "**/*.tmp\ndeep/**/z\n"),
        Case(name: "exceptions, last match wins", setup: files, ignore: "*.md\n!README*.md\nREADME-secret.md\n"),
        Case(name: "exception order reversed", setup: files, ignore: "*.md\nREADME-secret.md\n!README*.md\n"),
        Case(name: "excluded directory with re-included file", setup: files, ignore: "docs\n!docs/keep.md\n"),
        Case(name: "match everything, re-include a path", setup: files, ignore: "**\n!a/b\n"),
        Case(name: "parent directory match excludes children", setup: files, ignore: "a*\nnode_modules\n"),
        Case(name: "Dockerfile and .dockerignore excluded", setup: files + "; printf 'FROM scratch\\nCOPY . /app\\n' > Dockerfile", ignore: ".dockerignore\nDockerfile\n"),
        Case(name: "wildcard exception into an excluded directory", setup: files, ignore: "build/**\n!build/**/*.keep\nnode_modules\n!node_modules/**/README.md\n",
             buildkitPaths: [".dockerignore", "#notcomment", "README-secret.md", "README.md", "a", "a(b)c", "a.txt", "a/b", "a/b/c.tmp", "abc", "abc.md", "ay.go", "b.txt", "bcd.md", "build", "build/a.keep", "build/sub", "build/sub/b.keep", "c.txt", "deep", "deep/p", "deep/p/q", "deep/p/q/z", "deep/z", "docs", "docs/drop.md", "docs/keep.md", "empty", "f1.txt", "fz.txt", "keep.md", "node_modules", "node_modules/x", "node_modules/x/README.md", "notes.md", "q*z", "qz", "x+y", "x.log", "xxy", "xy.go", "y.log"]),
        Case(name: "regex metacharacters", setup: files, ignore: "a(b)c\nx+y\n",
             buildkitPaths: [".dockerignore", "#notcomment", "README-secret.md", "README.md", "a", "a.txt", "a/b", "a/b/c.tmp", "abc", "abc.md", "ay.go", "b.txt", "bcd.md", "build", "build/a.keep", "build/c.o", "build/sub", "build/sub/b.keep", "c.txt", "deep", "deep/p", "deep/p/q", "deep/p/q/z", "deep/z", "docs", "docs/drop.md", "docs/keep.md", "empty", "f1.txt", "fz.txt", "keep.md", "node_modules", "node_modules/x", "node_modules/x/README.md", "node_modules/x/i.js", "notes.md", "q*z", "qz", "xxy", "xy.go", "y.log", "x.log"].sorted()),
        Case(name: "symlinks, empty dirs, modes, FIFO, non-UTF-8 names", setup: "mkdir -p e/f empty; echo s > s.sh; chmod 755 s.sh; echo p > private; chmod 600 private; chmod 700 e; ln -s s.sh link; ln -s /nonexistent/target dangling; ln -s e dirlink; mkfifo pipe; printf x > \"$(printf 'caf\\351')\"; printf y > 'sp ace'; printf z > 'new\nline'", ignore: nil),
    ]

    @Test(.tags(.engine), arguments: cases)
    func agreesWithBuildah(_ c: Case) throws {
        try requireTool("buildah")
        try requireTool("umoci")
        try withTempDir { tmp in
            let ctx = tmp + "/ctx"
            try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
            try sh(c.setup, cwd: ctx)
            if let ig = c.ignore { try writeFile(ctx + "/.dockerignore", ig) }
            let dockerfile = tmp + "/Dockerfile"
            try writeFile(dockerfile, "FROM scratch\nCOPY . /app\n")
            let app = try buildWithBuildah(tmp: tmp, context: ctx, dockerfile: dockerfile)

            let built = try imprint("fingerprint", app, "--ignore-file", "/dev/null", "--digest-only", "-q")
            let ours = try imprint("fingerprint", ctx, "--ignore-semantics", "buildah", "--digest-only", "-q")
            #expect(ours.status == 0, "\(ours.err)")
            if built.out != ours.out {
                let theirs = try entryList(app, ignoreFile: "/dev/null").map(\.line)
                let ours = try entryList(ctx, semantics: "buildah").map(\.line)
                Issue.record("--ignore-semantics buildah differs from buildah's /app\nonly in buildah: \(theirs.filter { !ours.contains($0) })\nonly in imprint: \(ours.filter { !theirs.contains($0) })")
            }

            let buildkit = try entryList(ctx, semantics: "buildkit")
            if let expected = c.buildkitPaths {
                #expect(buildkit.map(\.path).sorted() == expected.sorted())
            } else {
                let fromBuildah = try entryList(app, ignoreFile: "/dev/null")
                #expect(buildkit.map(\.path) == fromBuildah.map(\.path))
                #expect(buildkit.map(\.line) == fromBuildah.map(\.line))
            }
        }
    }

    @Test(.tags(.engine)) func dockerfileSpecificIgnoreFileWins() throws {
        try requireTool("buildah")
        try withTempDir { tmp in
            let ctx = tmp + "/ctx"
            try sh("mkdir -p ctx/docker && cd ctx && echo 1 > one && echo 2 > two && printf 'one\\n' > .dockerignore && printf 'two\\n' > docker/api.Dockerfile.dockerignore && printf 'FROM scratch\\nCOPY . /app\\n' > docker/api.Dockerfile", cwd: tmp)
            let r = try imprint("fingerprint", ctx, "-f", ctx + "/docker/api.Dockerfile", "-q")
            #expect(r.status == 0)
            let m = try jsonObject(r.stdout)
            let paths = (m["entries"] as! [[String: Any]]).map { $0["path"] as! String }
            #expect(paths.contains("one"))
            #expect(!paths.contains("two"))
            #expect(((m["metadata"] as! [String: Any])["ignoreFile"] as! [String: Any])["path"] as? String == "docker/api.Dockerfile.dockerignore")
            // buildah takes the same file through --ignorefile: the bytes must agree.
            let app = try buildWithBuildah(tmp: tmp, context: ctx, dockerfile: ctx + "/docker/api.Dockerfile",
                                           extra: ["--ignorefile", ctx + "/docker/api.Dockerfile.dockerignore"])
            let built = try imprint("fingerprint", app, "--ignore-file", "/dev/null", "--digest-only", "-q")
            let ours = try imprint("fingerprint", ctx, "-f", ctx + "/docker/api.Dockerfile", "--digest-only", "-q")
            #expect(built.out == ours.out)
        }
    }

    /// Which ignore file buildah reads without --ignorefile: `<Containerfile or Dockerfile>.dockerignore` beside the
    /// file it builds, then `.containerignore`, then `.dockerignore`.
    @Test(.tags(.engine)) func buildahsIgnoreFilePrecedence() throws {
        try requireTool("buildah")
        let steps: [(remove: String, excluded: String)] = [("", "c"), ("Containerfile.dockerignore", "a"), (".containerignore", "b")]
        try withTempDir { tmp in
            let ctx = tmp + "/ctx"
            try sh("mkdir -p ctx && cd ctx && for f in a b c; do echo $f > $f; done && echo a > .containerignore && echo b > .dockerignore && echo c > Containerfile.dockerignore && printf 'FROM scratch\\nCOPY . /app\\n' > Containerfile", cwd: tmp)
            for (i, step) in steps.enumerated() {
                if !step.remove.isEmpty { try FileManager.default.removeItem(atPath: ctx + "/" + step.remove) }
                try FileManager.default.createDirectory(atPath: tmp + "/b\(i)", withIntermediateDirectories: true)
                let app = try buildWithBuildah(tmp: tmp + "/b\(i)", context: ctx, dockerfile: ctx + "/Containerfile")
                let built = try imprint("fingerprint", app, "--ignore-file", "/dev/null", "--digest-only", "-q")
                let ours = try imprint("fingerprint", ctx, "--ignore-semantics", "buildah", "--digest-only", "-q")
                #expect(built.out == ours.out && !FileManager.default.fileExists(atPath: app + "/" + step.excluded), "step \(i): \(ours.err)")
            }
        }
    }

    @Test(.tags(.engine)) func realProjectTree() throws {
        try requireTool("buildah")
        try withTempDir { tmp in
            // This repository's own sources with a realistic ignore file.
            let ctx = tmp + "/ctx"
            try sh("mkdir -p \(ctx) && cd '\(TestEnv.packageRoot.path)' && tar --exclude='./.build*' --exclude=./.git -cf - . | tar -xf - -C \(ctx)", cwd: tmp)
            try writeFile(ctx + "/.dockerignore", ".build*\n.git\n**/*.md\n!README.md\nTests/**/Fixtures\n*.swp\nci/**\n!ci/install-deps.sh\n")
            let dockerfile = tmp + "/Dockerfile"
            try writeFile(dockerfile, "FROM scratch\nCOPY . /app\n")
            let app = try buildWithBuildah(tmp: tmp, context: ctx, dockerfile: dockerfile)
            for semantics in ["buildah", "buildkit", "classic"] {
                let built = try imprint("fingerprint", app, "--ignore-file", "/dev/null", "--digest-only", "-q")
                let ours = try imprint("fingerprint", ctx, "--ignore-semantics", semantics, "--digest-only", "-q")
                #expect(built.out == ours.out, "\(semantics)")
            }
        }
    }

    /// Builds, pushes to an OCI layout, unpacks with umoci and returns the path of `/app` in the rootfs.
    func buildWithBuildah(tmp: String, context: String, dockerfile: String, extra: [String] = []) throws -> String {
        let store = ["--root", tmp + "/r", "--runroot", tmp + "/rr", "--storage-driver", "vfs"]
        let b = try run("buildah", store + ["bud", "--isolation", "chroot", "-q", "-f", dockerfile, "-t", "t"] + extra + [context])
        #expect(b.status == 0, "buildah bud failed: \(b.err)")
        let p = try run("buildah", store + ["push", "-q", "t", "oci:\(tmp)/oci:t"])
        #expect(p.status == 0, "buildah push failed: \(p.err)")
        let u = try run("umoci", ["unpack", "--image", "\(tmp)/oci:t", tmp + "/bundle"])
        #expect(u.status == 0, "umoci unpack failed: \(u.err)")
        return tmp + "/bundle/rootfs/app"
    }

    struct Line { var path: String; var line: String }

    func entryList(_ dir: String, semantics: String = "buildkit", ignoreFile: String? = nil) throws -> [Line] {
        var args = ["fingerprint", dir, "-q", "--ignore-semantics", semantics]
        if let ignoreFile { args += ["--ignore-file", ignoreFile] }
        let r = try imprint(args)
        let m = try jsonObject(r.stdout)
        return (m["entries"] as! [[String: Any]]).map { e in
            let path = e["path"] as! String
            let line = [path, e["type"] as! String, e["mode"] as! String, e["sha256"] as? String ?? e["target"] as? String ?? ""].joined(separator: " ")
            return Line(path: path, line: line)
        }
    }
}
