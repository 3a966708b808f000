import Foundation
import Testing

/// Dockerfile-aware expectations against real builders: for each Dockerfile, imprint reads the final stage's
/// COPY/ADD from the context into the manifest, two real builders build it (podman's builder through the docker
/// CLI, and buildah), and `imprint verify` of each image compares every file where its COPY put it: VERIFIED, or
/// exactly the files a later RUN changed, named with their layer.
@Suite(.serialized) struct DockerfileMappingTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var dockerfile: String
        var ignore = "*.log\n"
        /// Findings expected (class and image path); empty: VERIFIED.
        var expect: [(String, String)] = []
        /// A file a builder may get wrong (a same-size rewrite within the same second, which a layer differ that
        /// compares size and mtime misses): the image itself decides what imprint must say about it.
        var judgedByTheImage: String?
        var testDescription: String { name }
    }

    static let base = "FROM localhost/busybox-base\n"

    static let cases: [Case] = [
        Case(name: "context to /app", dockerfile: base + "COPY . /app\n"),
        Case(name: "context to /app/", dockerfile: base + "COPY . /app/\n"),
        Case(name: "WORKDIR then COPY . .", dockerfile: base + "WORKDIR /app\nCOPY . .\n"),
        Case(name: "relative WORKDIR chain", dockerfile: base + "WORKDIR /srv\nWORKDIR app\nCOPY . .\n"),
        Case(name: "directory with trailing slashes", dockerfile: base + "COPY src/ /app/src/\n"),
        Case(name: "directory without trailing slash", dockerfile: base + "COPY src /app/src\n"),
        Case(name: "file into a directory", dockerfile: base + "COPY requirements.txt /app/\n"),
        Case(name: "file renamed", dockerfile: base + "COPY requirements.txt /app/reqs.txt\n"),
        Case(name: "wildcard at the root", dockerfile: base + "COPY *.py /app/\n"),
        Case(name: "wildcard in a directory", dockerfile: base + "COPY src/*.py /app/\n"),
        Case(name: "several sources", dockerfile: base + "COPY a.txt b.txt /dst/\n"),
        Case(name: "chmod on a directory", dockerfile: base + "COPY --chmod=755 bin/ /usr/local/bin/\n"),
        Case(name: "chmod on a file", dockerfile: base + "COPY --chmod=600 secret.conf /etc/app.conf\n"),
        Case(name: "ARG in the source", dockerfile: base + "ARG DIR=src\nCOPY ${DIR}/ /app/\n"),
        Case(name: "ENV in the destination", dockerfile: base + "ENV APP=/srv/app\nCOPY . $APP\n"),
        Case(name: "ARG with a default in braces", dockerfile: base + "ARG DEST\nCOPY lib/ ${DEST:-/opt/lib}/\n"),
        Case(name: "multi-stage: only the final stage", dockerfile: "FROM localhost/busybox-base AS build\nCOPY . /tmp/all\n" + base + "COPY src/ /app/\n"),
        Case(name: "COPY --from is left out", dockerfile: "FROM localhost/busybox-base AS build\nRUN mkdir -p /out && echo built > /out/b\n" + base + "COPY --from=build /out /out\nCOPY . /app\n"),
        Case(name: ".dockerignore with an exception", dockerfile: base + "COPY . /app\n", ignore: "*.log\n*.md\n!README.md\n"),
        Case(name: ".dockerignore excluding a directory", dockerfile: base + "COPY . /app\n", ignore: "*.log\nlib\n"),
        Case(name: "later COPY overwrites", dockerfile: base + "COPY v1/config.ini /app/config.ini\nCOPY v2/config.ini /app/config.ini\n",
             judgedByTheImage: "app/config.ini"),
        Case(name: "nested directories", dockerfile: base + "COPY lib/ /opt/lib/\n"),
        Case(name: "JSON form", dockerfile: base + "COPY [\"src\", \"/app/src\"]\n"),
        Case(name: "line continuation", dockerfile: base + "COPY a.txt \\\n     b.txt /dst/\n"),
        Case(name: "lower-case instruction", dockerfile: base + "copy . /app\n"),
        Case(name: "wildcard matching directories", dockerfile: base + "COPY pkg* /app/\n"),
        Case(name: "ADD of a local file", dockerfile: base + "ADD notes.txt /app/\n"),
        Case(name: "chown is outside the digest", dockerfile: base + "COPY --chown=1000:1000 . /app\n"),
        Case(name: "escape directive", dockerfile: "# escape=`\n" + base + "COPY a.txt `\n     b.txt /dst/\n"),
        Case(name: "RUN appends to a copied file", dockerfile: base + "COPY . /app\nRUN echo tampered >> /app/app.py\n",
             expect: [("modified", "app/app.py")]),
        Case(name: "RUN adds a file", dockerfile: base + "COPY . /app\nRUN touch /app/generated.txt\n", expect: [("extra", "app/generated.txt")]),
        Case(name: "RUN changes a mode", dockerfile: base + "COPY . /app\nRUN chmod 700 /app/src/main.py\n", expect: [("mode", "app/src/main.py")]),
        Case(name: "RUN after a file COPY", dockerfile: base + "COPY requirements.txt /app/\nRUN sed -i s/flask/django/ /app/requirements.txt\n",
             expect: [("modified", "app/requirements.txt")]),
    ]

    static func writeContext(_ dir: String, _ c: Case) throws {
        let files: [(String, String, Int)] = [
            ("app.py", "print('app')\n", 0o644), ("requirements.txt", "flask==3.0\n", 0o644), ("README.md", "# readme\n", 0o644),
            ("notes.md", "notes\n", 0o644), ("debug.log", "log\n", 0o644), ("src/main.py", "import util\n", 0o644),
            ("src/util.py", "X = 1\n", 0o644), ("src/sub/deep.py", "D = 1\n", 0o644), ("bin/tool", "#!/bin/sh\necho tool\n", 0o644),
            ("lib/a/x.txt", "x\n", 0o644), ("lib/b/y.txt", "y\n", 0o644), ("pkg1/p1.txt", "p1\n", 0o644), ("pkg2/p2.txt", "p2\n", 0o644),
            ("v1/config.ini", "version=1\n", 0o644), ("v2/config.ini", "version=2\n", 0o644), ("secret.conf", "s=1\n", 0o644),
            ("a.txt", "a\n", 0o644), ("b.txt", "b\n", 0o644), ("notes.txt", "plain notes\n", 0o644),
        ]
        for (p, text, mode) in files { try writeFile(dir + "/" + p, text, mode: mode) }
        try writeFile(dir + "/Dockerfile", c.dockerfile)
        try writeFile(dir + "/.dockerignore", c.ignore)
    }

    @Test(.tags(.engine)) func realBuildersPutEveryFileWhereImprintPredicts() throws {
        try requireTool("buildah")
        let engine = try ContainerEngine()
        defer { engine.stop() }
        try engine.buildBusyboxBase()
        let buildah = "buildah --root \(engine.dir)/root --runroot \(engine.dir)/run --storage-driver vfs"
        try withTempDir { dir in
            for (i, c) in Self.cases.enumerated() {
                let ctx = dir + "/case\(i)"
                try Self.writeContext(ctx, c)
                let fp = try imprint("fingerprint", ctx, "-q", "-o", dir + "/m\(i).json")
                #expect(fp.status == 0, "\(c.name): \(fp.err)")
                try expectValidJSON(try Data(contentsOf: URL(fileURLWithPath: dir + "/m\(i).json")), schema: "manifest.schema.json")
                let m = try jsonObject(try Data(contentsOf: URL(fileURLWithPath: dir + "/m\(i).json")))
                let copies = ((m["metadata"] as? [String: Any])?["dockerfile"] as? [String: Any])?["copies"] as? [Any] ?? []
                #expect(!copies.isEmpty, "\(c.name): no copies recorded")
                try engine.sh("""
                docker build -q -t localhost/case\(i) \(ctx) >/dev/null
                docker save localhost/case\(i) -o \(dir)/docker\(i).tar
                \(buildah) bud --isolation chroot -q -t localhost/case\(i)b -f \(ctx)/Dockerfile \(ctx) >/dev/null
                \(buildah) push -q localhost/case\(i)b oci-archive:\(dir)/buildah\(i).tar
                """)
                for image in ["\(dir)/docker\(i).tar", "\(dir)/buildah\(i).tar"] {
                    // (An image named by its builder: docker… from podman's builder, buildah… from buildah.)
                    let r = try imprint("verify", image, "--manifest", dir + "/m\(i).json", "--format", "json")
                    let report = (try? jsonObject(r.stdout)) ?? [:]
                    let findings = (report["findings"] as? [[String: Any]] ?? []).filter { ($0["severity"] as? String) == "error" }
                    let got = findings.map { ($0["class"] as? String ?? "", $0["path"] as? String ?? "") }.sorted { $0.1 < $1.1 }
                    if let path = c.judgedByTheImage {
                        // What the builder really put there, read by running the image.
                        let tag = image.contains("/docker") ? "localhost/case\(i)" : "localhost/case\(i)b"
                        let content = try engine.runContainer("read-\(i)-\(image.contains("/docker") ? "d" : "b")", "--network none \(tag) cat /\(path)").out
                        let stale = content.trimmingCharacters(in: .whitespacesAndNewlines) != "version=2"
                        #expect(stale ? r.status == 1 && got.map { "\($0.0) \($0.1)" } == ["modified \(path)"] : r.status == 0 && got.isEmpty,
                                "\(c.name) (\(image)): the image holds \(content), imprint says \(got)")
                    } else if c.expect.isEmpty {
                        #expect(r.status == 0 && got.isEmpty, "\(c.name) (\(image)): \(got) \(r.err)")
                    } else {
                        #expect(r.status == 1, "\(c.name) (\(image)): \(r.err)")
                        #expect(got.map { "\($0.0) \($0.1)" } == c.expect.map { "\($0.0) \($0.1)" }, "\(c.name) (\(image)): \(got)")
                        // Attributed to the RUN layer, by its instruction.
                        for f in findings {
                            #expect((f["detail"] as? String) == "run-modified" && (f["message"] as? String ?? "").contains("layer"),
                                    "\(c.name): \(f)")
                        }
                    }
                }
            }
        }
    }
}
