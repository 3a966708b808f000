import Foundation
import Testing

/// The post-deploy job end to end: fingerprint a context, put it in a real image (umoci), stamp it, then verify
/// the image, a tar stream of its rootfs on stdin, and the unpacked directory.
@Suite(.serialized) struct VerifyImageTests {
    static func makeStampedImage(_ tmp: String) throws -> String {
        try requireTool("umoci")
        try sh("""
        mkdir -p ctx/pkg
        printf 'VALUE = "v1"\\n' > ctx/pkg/mod.py
        printf '' > ctx/pkg/__init__.py
        printf 'print("main")\\n' > ctx/main.py
        mkdir -p ctx/static && printf 'body{}' > ctx/static/site.css
        printf '#!/bin/sh\\n' > ctx/run.sh && chmod 755 ctx/run.sh
        ln -s main.py ctx/entry.py
        umoci init --layout L && umoci new --image L:app && umoci unpack --image L:app B >/dev/null
        mkdir -p B/rootfs/app B/rootfs/etc && printf 'base' > B/rootfs/etc/os-release
        (cd ctx && tar cf - .) | tar xpf - -C B/rootfs/app
        umoci repack --image L:app B >/dev/null && rm -rf B
        """, cwd: tmp)
        let fp = try imprint("fingerprint", tmp + "/ctx", "-o", tmp + "/manifest.json", "-q")
        #expect(fp.status == 0)
        let stamp = try imprint("stamp", "oci:\(tmp)/L:app", "--manifest", tmp + "/manifest.json")
        #expect(stamp.status == 0, "\(stamp.err)")
        return try jsonObject(try Data(contentsOf: URL(fileURLWithPath: tmp + "/manifest.json")))["digest"] as! String
    }

    @Test func imageTarStreamAndDirectoryAllVerify() throws {
        try withTempDir { tmp in
            let digest = try Self.makeStampedImage(tmp)
            let image = try imprint("verify", "oci:\(tmp)/L:app", "--expect", digest)
            #expect(image.status == 0, "\(image.out)\(image.err)")
            #expect(image.out.hasPrefix("VERIFIED: "))
            try sh("umoci unpack --image L:app U >/dev/null && tar -C U/rootfs -cf rootfs.tar .", cwd: tmp)
            let stream = try imprint("verify", "-", "--expect", digest, stdinFile: tmp + "/rootfs.tar")
            #expect(stream.status == 0, "\(stream.out)\(stream.err)")
            let gz = try sh("gzip -k rootfs.tar && echo ok", cwd: tmp)
            #expect(gz.status == 0)
            #expect(try imprint("verify", "-", "--expect", digest, stdinFile: tmp + "/rootfs.tar.gz").status == 0)
            let dir = try imprint("verify", tmp + "/U/rootfs", "--expect", digest)
            #expect(dir.status == 0, "\(dir.out)\(dir.err)")
            // kubectl exec pod -- tar cf - /app: only the app directory, manifest given separately.
            try sh("tar -C U/rootfs -cf app.tar app", cwd: tmp)
            let app = try imprint("verify", "-", "--manifest", tmp + "/manifest.json", "--at", "/app", "--expect", digest, stdinFile: tmp + "/app.tar")
            #expect(app.status == 0, "\(app.out)\(app.err)")
            // A different expected digest: the image is not what CI built.
            let other = try imprint("verify", "oci:\(tmp)/L:app", "--expect", "sha256:" + String(repeating: "0", count: 64))
            #expect(other.status == 1)
            #expect(other.out.contains("digest-mismatch"))
        }
    }

    @Test func stampCheckRefusesAnImageThatDoesNotHoldTheContext() throws {
        try withTempDir { tmp in
            _ = try Self.makeStampedImage(tmp)
            // The context moved on but the image was not rebuilt (a cached COPY layer): not stamped, exit 1.
            try sh("printf 'VALUE = \"v2\"\\n' > ctx/pkg/mod.py && cp L/index.json index.before", cwd: tmp)
            let stale = try imprint("stamp", "oci:\(tmp)/L:app", "--context", tmp + "/ctx", "--check")
            #expect(stale.status == 1)
            #expect(stale.err.contains("not stamping"))
            #expect(stale.err.contains("pkg/mod.py: content differs"))
            try sh("cmp L/index.json index.before", cwd: tmp)
            // Rebuilt with the new context: --check passes and the image is stamped.
            try sh("umoci unpack --image L:app B >/dev/null && cp ctx/pkg/mod.py B/rootfs/app/pkg/mod.py && umoci repack --image L:app B >/dev/null", cwd: tmp)
            let fresh = try imprint("stamp", "oci:\(tmp)/L:app", "--context", tmp + "/ctx", "--check", "--at", "/app")
            #expect(fresh.status == 0, "\(fresh.err)")
        }
    }

    @Test func stampWithKeyThenVerifyWithPubkey() throws {
        try withTempDir { tmp in
            _ = try Self.makeStampedImage(tmp)
            #expect(try imprint("keygen", "-o", tmp + "/ci").status == 0)
            #expect(try imprint("keygen", "-o", tmp + "/other").status == 0)
            let stamp = try imprint("stamp", "oci:\(tmp)/L:app", "--manifest", tmp + "/manifest.json", "--key", tmp + "/ci.key")
            #expect(stamp.status == 0, "\(stamp.err)")
            let ok = try imprint("verify", "oci:\(tmp)/L:app", "--pubkey", tmp + "/ci.pub", "--require-trust")
            #expect(ok.status == 0, "\(ok.out)\(ok.err)")
            #expect(ok.out.contains("signature valid"))
            try sh("umoci unpack --image L:app U >/dev/null && test -f U/rootfs/.imprint/manifest.sig && tar -C U/rootfs -cf rootfs.tar .", cwd: tmp)
            #expect(try imprint("verify", "-", "--pubkey", tmp + "/ci.pub", stdinFile: tmp + "/rootfs.tar").status == 0)
            let wrong = try imprint("verify", "oci:\(tmp)/L:app", "--pubkey", tmp + "/other.pub")
            #expect(wrong.status == 1)
            #expect(wrong.out.contains("signature"))
        }
    }

    @Test(arguments: VerifyTests.mutations)
    func mutationsInATarStream(_ m: VerifyTests.Mutation) throws {
        try requireTool("python3")
        try withTempDir { tmp in
            let digest = try Self.makeStampedImage(tmp)
            try sh("umoci unpack --image L:app U >/dev/null", cwd: tmp)
            try sh(m.script, cwd: tmp + "/U/rootfs/app")
            try sh("tar -C U/rootfs -cf rootfs.tar .", cwd: tmp)
            let r = try imprint("verify", "-", "--expect", digest, "--at", "/app", "--format", "json", stdinFile: tmp + "/rootfs.tar")
            #expect(r.status == (m.severity == "error" ? 1 : 0), "\(r.out)\(r.err)")
            try expectValidJSON(r.stdout, schema: "verify-report.schema.json")
            let got = (try jsonObject(r.stdout)["findings"] as! [[String: Any]]).filter { ($0["severity"] as? String) == m.severity }.map { f -> String in
                let cls = f["class"] as! String
                return (cls == "bytecode" ? "bytecode/\(f["detail"] as! String)" : cls) + " " + (f["path"] as! String)
            }
            #expect(got.sorted() == m.expected.sorted())
        }
    }
}
