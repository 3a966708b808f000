import Foundation
import Testing
@testable import ImprintCore

/// The spec-shaped OCI documents: every field read is written back (unknown ones and `null`s included), the
/// canonical form is byte-ordered and stable, and malformed documents are refused with the field named.
@Suite struct OCIDocumentTests {
    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
    static let d1 = "sha256:" + String(repeating: "a", count: 64)
    static let d2 = "sha256:" + String(repeating: "b", count: 64)

    @Test func manifestRoundTripKeepsEveryField() throws {
        // Unknown members at every level, a modelled member that is null, keys whose byte order and
        // locale order differ ("os.version" < "os_x" in bytes, not in a case-insensitive numeric sort).
        let doc = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(Self.d1)","size":7,"x-vendor":{"k":[1,2.5,true,null]}},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\#(Self.d2)","size":9,"urls":null,"platform":{"architecture":"amd64","os":"linux","os.version":"10","os_x":"y"}}],"annotations":{"a":"b"},"Z-extra":"kept"}"#
        let m = try OCIJSON.decode(ImageManifest.self, from: Array(doc.utf8), what: "m")
        #expect(m.layers[0].size == 9 && m.config.digest.prefixed == Self.d1)
        #expect(m.unknown.values["Z-extra"] == .string("kept"))
        let out = Self.text(try OCIJSON.encode(m))
        let expected = #"{"Z-extra":"kept","annotations":{"a":"b"},"config":{"digest":"\#(Self.d1)","mediaType":"application/vnd.oci.image.config.v1+json","size":7,"x-vendor":{"k":[1,2.5,true,null]}},"layers":[{"digest":"\#(Self.d2)","mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","platform":{"architecture":"amd64","os":"linux","os.version":"10","os_x":"y"},"size":9,"urls":null}],"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}"#
        #expect(out == expected)
        // Written back and read again: the same bytes (the digest of a document imprint writes is stable).
        #expect(Self.text(try OCIJSON.encode(try OCIJSON.decode(ImageManifest.self, from: Array(out.utf8), what: "m"))) == out)
    }

    @Test func aModelledFieldGivenAValueReplacesAKeptNull() throws {
        let doc = #"{"architecture":"amd64","os":"linux","config":{"Labels":null,"Env":null,"Healthcheck":{"Test":["CMD","true"]}},"rootfs":{"type":"layers","diff_ids":[]}}"#
        var c = try OCIJSON.decode(ImageConfig.self, from: Array(doc.utf8), what: "c")
        c.config?.labels = ["x": "1"]
        let out = Self.text(try OCIJSON.encode(c))
        #expect(out == #"{"architecture":"amd64","config":{"Env":null,"Healthcheck":{"Test":["CMD","true"]},"Labels":{"x":"1"}},"os":"linux","rootfs":{"diff_ids":[],"type":"layers"}}"#)
    }

    @Test func stampedConfigAppendsOrReplacesTheStamp() throws {
        let doc = #"{"architecture":"arm64","os":"linux","variant":"v8","created":"2024-01-01T00:00:00Z","config":{"Cmd":["python","app.py"],"Labels":{"keep":"me"}},"rootfs":{"type":"layers","diff_ids":["\#(Self.d1)"]},"history":[{"created_by":"COPY . /app"},{"created_by":"ENV X=1","empty_layer":true}],"container_config":{"Hostname":"h"}}"#
        let original = try OCIJSON.decode(ImageConfig.self, from: Array(doc.utf8), what: "c")
        var stamper = ImageStamper(environment: ["SOURCE_DATE_EPOCH": "86400"])
        stamper.stampPath = ".imprint/manifest.json"
        let root = Digest(hex: Self.d2)!
        let once = stamper.stampedConfig(original, diffID: root, root: root, replacing: false)
        #expect(once.rootfs.diffIDs.map(\.prefixed) == [Self.d1, Self.d2])
        #expect(once.labels == ["keep": "me", Imprint.digestLabel: Self.d2])
        #expect(once.history?.last?.createdBy == "imprint stamp" && once.history?.last?.created == "1970-01-02T00:00:00Z")
        #expect(once.unknown.values["container_config"] != nil && once.config?.cmd == ["python", "app.py"])
        // Re-stamping replaces the stamp layer's diff_id and history entry instead of stacking a second one.
        let again = stamper.stampedConfig(once, diffID: root, root: root, replacing: true)
        #expect(again == once)
        var info = ImageInfo(manifestDescriptor: nil, manifestBytes: nil, manifest: nil,
                             configDescriptor: Descriptor(mediaType: MediaType.ociConfig, digest: root, size: 1),
                             configBytes: [], config: once,
                             layers: [ImageLayer(descriptor: Descriptor(mediaType: MediaType.ociLayer, digest: root, size: 1)),
                                      ImageLayer(descriptor: Descriptor(mediaType: MediaType.ociLayer, digest: root, size: 1))],
                             isDockerFamily: false)
        #expect(ImageStamper.isStamped(info))
        #expect(RegistryImageReader.stampLayerIndex(info) == 1)
        info.config = original
        #expect(!ImageStamper.isStamped(info))
    }

    @Test(arguments: [
        (#"{"schemaVersion":2,"config":{"digest":"sha512:abc","size":1},"layers":[]}"#, "field config.digest: unsupported or malformed digest sha512:abc (only sha256 is supported)"),
        (#"{"schemaVersion":2,"config":{"digest":"\#(d1)","size":-1},"layers":[]}"#, "field config.size: not a whole number of bytes"),
        (#"{"schemaVersion":2,"config":{"digest":"\#(d1)","size":true},"layers":[]}"#, "field config.size: not a whole number of bytes"),
        (#"{"schemaVersion":2,"config":{"digest":"\#(d1)","size":1.5},"layers":[]}"#, "field config.size: not a whole number of bytes"),
        (#"{"schemaVersion":2,"config":{"digest":"\#(d1)","size":72057594037927937},"layers":[]}"#, "field config.size: 72057594037927937 bytes is more than imprint reads (2^56)"),
        (#"{"schemaVersion":2,"config":{"digest":"\#(d1)","size":1}}"#, "field layers is missing"),
        (#"{"schemaVersion":2,"config":{"digest":"\#(d1)","size":1},"layers":[{"digest":"\#(d1)"}]}"#, "field layers[0].size is missing"),
        (#"{"schemaVersion":2,"config":{"digest":"\#(d1)","size":1},"layers":{}}"#, "field layers is not an array"),
        (#"{"schemaVersion":2,"config":{"digest":"\#(d1)","size":1},"layers":[],"annotations":{"a":1}}"#, "field annotations.a is not a string"),
        (#"[1,2]"#, "the document is not an object"),
        (#"{"schemaVersion":2,"#, "is not valid JSON (or holds a number out of range)"),
    ])
    func malformedManifestsAreRefusedNamingTheField(doc: String, message: String) throws {
        do {
            _ = try OCIJSON.decode(ImageManifest.self, from: Array(doc.utf8), what: "manifest m")
            Issue.record("accepted \(doc)")
        } catch let e as ImprintError {
            #expect(e.code == .badInput)
            #expect(e.message == "manifest m: " + message)
            #expect(!e.message.contains("\n"))
        }
    }

    @Test func dockerArchiveListKeepsItsOtherFields() throws {
        let doc = #"[{"Config":"c.json","RepoTags":null,"Layers":["l.tar"],"LayerSources":{"x":{"size":1}}}]"#
        var list = try OCIJSON.decode([DockerArchiveEntry].self, from: Array(doc.utf8), what: "manifest.json")
        #expect(list[0].repoTags == nil && list[0].layers == ["l.tar"])
        list[0].layers.append("s.tar")
        #expect(Self.text(try OCIJSON.encode(list)) == #"[{"Config":"c.json","LayerSources":{"x":{"size":1}},"Layers":["l.tar","s.tar"],"RepoTags":null}]"#)
    }

    @Test func configChangesCompareTheModelledAndDockerFields() throws {
        func config(_ runtime: String) throws -> ImageConfig {
            try OCIJSON.decode(ImageConfig.self, from: Array(#"{"architecture":"amd64","os":"linux","config":\#(runtime),"rootfs":{"type":"layers","diff_ids":[]}}"#.utf8), what: "c")
        }
        let a = try config(#"{"Cmd":["a"],"Env":["X=1","Y=2"],"Shell":["/bin/sh","-c"],"ExposedPorts":{"80/tcp":{}}}"#)
        let b = try config(#"{"Cmd":["b","c/d"],"Env":["X=1","Y=3"],"Shell":["/bin/bash","-c"],"Labels":{"v":"2"}}"#)
        let changes = ImageDiff.configChanges(a, b).map { "\($0.field) \($0.a ?? "-") \($0.b ?? "-")" }
        #expect(changes == [#"Cmd ["a"] ["b","c/d"]"#, #"Shell ["/bin/sh","-c"] ["/bin/bash","-c"]"#, "Env.Y 2 3", "Labels.v - 2", "ExposedPorts.80/tcp present -"])
        #expect(ImageDiff.configChanges(a, nil).isEmpty)
    }
}
