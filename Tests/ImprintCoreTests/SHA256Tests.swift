import Testing
@testable import ImprintCore

@Suite struct SHA256Tests {
    @Test func knownVectors() {
        #expect(SHA256.hash([]).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hash(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func incrementalEqualsOneShot() {
        let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let h = SHA256()
        h.update(Array(data[0..<777])); h.update(Array(data[777...]))
        #expect(h.finish() == SHA256.hash(data))
    }

    @Test func digestParsesBothForms() {
        let d = SHA256.hash(Array("x".utf8))
        #expect(Digest(hex: d.hex) == d)
        #expect(Digest(hex: d.prefixed) == d)
        #expect(Digest(hex: "sha256:xyz") == nil)
    }
}
