import Foundation
import Testing
@testable import ImprintCore

/// Replays a container runtime's own answers: `Fixtures/runtime-oracle.jsonl` holds tar streams and layer stacks
/// (`ci/fuzzing/runtime_layers.py`: random cases from fixed seeds, and hand-written ones for every header
/// feature) with the tree containerd's `archive.Apply` (v1.6.20, on Go 1.19's archive/tar) unpacked them to, or
/// its refusal. imprint's reading must end with exactly that tree, or refuse.
@Suite struct RuntimeOracleTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var whiteouts: Bool
        var layers: [[UInt8]]
        /// nil when the runtime refuses.
        var expect: [[String]]?
        var refusal: String?
        var testDescription: String { name }
    }

    static let cases: [Case] = {
        guard let url = try? Fixture.url("runtime-oracle.jsonl"), let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line -> Case? in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let expect = o["expect"] as? [String: Any] else { return nil }
            let layers = (o["layers"] as? [String] ?? []).map { b64 -> [UInt8] in
                let packed = Array(Data(base64Encoded: b64) ?? Data())
                return (try? Compression.decompressing(MemorySource(packed), name: "fixture").0.readAll(limit: 64 << 20, what: "fixture")) ?? []
            }
            return Case(name: o["name"] as? String ?? "?", whiteouts: o["whiteouts"] as? Bool ?? true, layers: layers,
                        expect: expect["entries"] as? [[String]], refusal: expect["error"] as? String)
        }
    }()

    @Test func fixturesArePresent() {
        #expect(Self.cases.count >= 500)
        #expect(Self.cases.contains { $0.expect == nil } && Self.cases.contains { !$0.whiteouts })
        #expect(Self.cases.contains { $0.name.hasPrefix("crafted-") })
    }

    /// The tree imprint reads from the layers, as the oracle lists it: type, mode, path (base64), and the
    /// content digest, link target (base64) or device numbers.
    static func listing(_ c: Case) throws -> [[String]] {
        let flattener = LayerFlattener(capturePath: nil)
        flattener.whiteouts = c.whiteouts
        for (i, layer) in c.layers.enumerated() {
            let (plain, _) = try Compression.decompressing(MemorySource(layer), name: "layer \(i + 1)")
            try flattener.apply(TarReader(plain, name: "layer \(i + 1)"), layer: i)
            try plain.forEachChunk(bufferSize: 64 << 10) { _ in }
        }
        var out: [[String]] = []
        flattener.finish().walk { path, n in
            let detail: String
            switch n.type {
            case .file: detail = n.digest.hex
            case .symlink: detail = Data(n.target ?? []).base64EncodedString()
            case .charDevice, .blockDevice: detail = "\(n.devMajor),\(n.devMinor)"
            default: detail = ""
            }
            out.append([n.type.rawValue, octalMode(n.canonicalMode), Data(path).base64EncodedString(), detail])
        }
        // In byte order of the whole path, as the oracle lists them.
        return out.sorted { Array(Data(base64Encoded: $0[2])!).lexicographicallyPrecedes(Array(Data(base64Encoded: $1[2])!)) }
    }

    @Test(arguments: cases)
    func unpacksAsTheRuntimeDoes(_ c: Case) {
        do {
            let got = try Self.listing(c)
            if let expect = c.expect {
                #expect(got == expect, "imprint's tree differs from the runtime's")
            } else {
                Issue.record("imprint accepted what the runtime refuses: \(c.refusal ?? "")")
            }
        } catch {
            #expect(c.expect == nil, "imprint refused what the runtime unpacks: \(error)")
        }
    }
}
