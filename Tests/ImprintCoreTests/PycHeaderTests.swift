import Testing
@testable import ImprintCore

@Suite struct PycHeaderTests {
    static func header(_ magic: UInt16, _ flags: UInt32, _ a: UInt32, _ b: UInt32) -> [UInt8] {
        var out: [UInt8] = [UInt8(magic & 0xff), UInt8(magic >> 8), 0x0d, 0x0a]
        for v in [flags, a, b] { for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
        return out
    }

    @Test func timestampHeader() throws {
        let h = try PycHeader.parse(Self.header(3495, 0, 1_700_000_000, 14) + [0xe3, 0, 0])
        #expect(h.magicNumber == 3495)
        #expect(h.pythonVersion == PythonVersion(3, 11))
        #expect(h.validation == .timestamp(mtime: 1_700_000_000, size: 14))
        #expect(h.magicWord == 0x0a0d_0da7)
        #expect(h.bytes == Self.header(3495, 0, 1_700_000_000, 14))
    }

    @Test(arguments: [(UInt32(1), false), (UInt32(3), true)])
    func hashHeaders(flags: UInt32, checked: Bool) throws {
        let h = try PycHeader.parse(Self.header(3531, flags, 0x4433_2211, 0x8877_6655))
        #expect(h.sourceHash == 0x8877_6655_4433_2211)
        #expect(h.validation == (checked ? .checkedHash(0x8877_6655_4433_2211) : .uncheckedHash(0x8877_6655_4433_2211)))
        #expect(h.summary.contains("source hash 1122334455667788"))
        #expect(h.pythonVersion == PythonVersion(3, 12))
    }

    /// importlib validates flags 2 (check_source without the hash bit) as a timestamp pyc.
    @Test func flagsTwoIsTimestamp() throws {
        let h = try PycHeader.parse(Self.header(3495, 2, 5, 6))
        #expect(h.validation == .timestamp(mtime: 5, size: 6))
    }

    @Test(arguments: [
        ([UInt8](), "end of file"),
        ([0xa7, 0x0d, 0x0d], "end of file"),
        ([0xa7, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0], "16-byte"),
        (header(3495, 4, 0, 0), "invalid flags 4"),
        (header(3495, 0x100, 0, 0), "invalid flags"),
        ([0xa7, 0x0d, 0x0a, 0x0d] + [UInt8](repeating: 0, count: 12), "bad magic"),
        (Array("print('hi')\n#####".utf8), "bad magic"),
    ] as [([UInt8], String)])
    func invalidHeaders(bytes: [UInt8], reason: String) {
        #expect {
            _ = try PycHeader.parse(bytes)
        } throws: { error in
            (error as? ImprintError)?.code == .badInput && "\(error)".contains(reason)
        }
    }

    @Test func legacyTwelveByteHeader() throws {
        var b: [UInt8] = [0x33, 0x0d, 0x0d, 0x0a]  // 3379 = Python 3.6
        b += [1, 0, 0, 0, 9, 0, 0, 0]
        let h = try PycHeader.parse(b)
        #expect(h.pythonVersion == PythonVersion(3, 6))
        #expect(h.validation == .timestamp(mtime: 1, size: 9))
    }

    @Test(arguments: [
        (UInt16(3394), "3.7"), (3413, "3.8"), (3425, "3.9"), (3439, "3.10"), (3495, "3.11"), (3531, "3.12"),
        (3571, "3.13"), (3627, "3.14"), (3450, "3.11"), (3500, "3.12"), (3600, "3.14"), (3656, "3.15"),
        (3379, "3.6"), (62211, "2.7"),
    ] as [(UInt16, String)])
    func magicToVersion(number: UInt16, version: String) {
        #expect(PycMagic.version(forNumber: number)?.description == version)
    }

    @Test func magicTable() {
        #expect(PycMagic.version(forNumber: 1234) == nil)
        #expect(PycMagic.describe(9999) == "9999 (unknown)")
        #expect(PycMagic.describe(3495) == "3495 (Python 3.11)")
        #expect(PycMagic.describe(3500) == "3500 (Python 3.12 pre-release)")
        for (v, n) in PycMagic.finalReleases { #expect(PycMagic.version(forNumber: n) == v) }
        #expect(PycMagic.sipHashVariant(forMagicWord: PycMagic.word(forNumber: 3439)) == .sipHash24)
        #expect(PycMagic.sipHashVariant(forMagicWord: PycMagic.word(forNumber: 3495)) == .sipHash13)
    }

    @Test(arguments: [
        ("mod.cpython-311.pyc", "mod", "cpython-311", nil, "3.11"),
        ("__init__.cpython-37.opt-1.pyc", "__init__", "cpython-37", "1", "3.7"),
        ("mod.cpython-313t.opt-2.pyc", "mod", "cpython-313t", "2", "3.13"),
        ("mod.pypy39.pyc", "mod", "pypy39", nil, nil),
    ] as [(String, String, String, String?, String?)])
    func cacheNames(name: String, stem: String, tag: String, opt: String?, version: String?) throws {
        let c = try #require(PycCacheName(fileName: Bytes(utf8: name)))
        #expect(c.stem == Bytes(utf8: stem))
        #expect(c.cacheTag == tag)
        #expect(c.optimization == opt)
        #expect(c.pythonVersion?.description == version)
    }

    @Test(arguments: ["mod.pyc", "a.b.cpython-311.opt-1.pyc", "mod.cpython-311.opt1.pyc", "mod.cpython-311.opt-.pyc",
                      "mod.cpython-311.py", ".cpython-311.pyc"])
    func cacheNamesCPythonNeverLooksUp(name: String) {
        #expect(PycCacheName(fileName: Bytes(utf8: name)) == nil)
    }

    @Test func pythonVersionParsing() {
        #expect(PythonVersion("3.11") == PythonVersion(3, 11))
        #expect(PythonVersion("3.11.7") == PythonVersion(3, 11))
        #expect(PythonVersion("cpython-310") == PythonVersion(3, 10))
        #expect(PythonVersion("x") == nil)
        #expect(PythonVersion(3, 9) < PythonVersion(3, 10))
        #expect(PythonVersion(3, 12).cacheTag == "cpython-312")
    }
}

@Suite struct SipHashTests {
    /// The reference vectors of the SipHash paper / reference implementation (key 00..0f, message 00..n-1).
    @Test func sipHash24ReferenceVectors() {
        let k0: UInt64 = 0x0706_0504_0302_0100, k1: UInt64 = 0x0f0e_0d0c_0b0a_0908
        #expect(SipHash.hash([UInt8](), k0: k0, k1: k1, variant: .sipHash24) == 0x726f_db47_dd0e_0e31)
        #expect(SipHash.hash(Array(0..<15), k0: k0, k1: k1, variant: .sipHash24) == 0xa129_ca61_49be_45e5)
    }

    /// Four keys side by side: each lane gives what that key gives alone, and the reference key gives the
    /// reference vector in the last lane too (no lane leaks into another).
    @Test func lanesAreIndependent() {
        let k0: UInt64 = 0x0706_0504_0302_0100, k1: UInt64 = 0x0f0e_0d0c_0b0a_0908
        let keys: [(UInt64, UInt64)] = [(1, 2), (3, 0), (0xdead_beef, 0xfeed), (k0, k1)]
        let message = [UInt8](0..<15)
        var lanes = SipHashLanes(keys: keys, variant: .sipHash24)
        message.withUnsafeBytes { lanes.update($0) }
        let hashes = lanes.finalize()
        #expect(hashes.count == 4)
        #expect(hashes[3] == 0xa129_ca61_49be_45e5)
        for (i, k) in keys.enumerated() {
            #expect(hashes[i] == SipHash.hash(message, k0: k.0, k1: k.1, variant: .sipHash24), "lane \(i)")
        }
    }

    @Test(arguments: [SipHash.Variant.sipHash13, .sipHash24])
    func streamingEqualsOneShot(variant: SipHash.Variant) {
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }
        let whole = SipHash.hash(data, k0: 42, k1: 0, variant: variant)
        for chunk in [1, 3, 7, 8, 9, 64, 999] {
            var h = SipHash(k0: 42, k1: 0, variant: variant)
            var i = 0
            while i < data.count {
                h.update(data[i..<min(i + chunk, data.count)])
                i += chunk
            }
            #expect(h.finalize() == whole, "chunk \(chunk)")
        }
    }

    /// Every Python from 3.7 on, each lane equal to that magic's hash alone, whatever the chunks.
    @Test func multiMagicHasher() {
        let data = (0..<1001).map { UInt8(truncatingIfNeeded: $0 &* 97 &+ 3) }
        for chunk in [1, 5, 8, 13, 1001] {
            var h = PycSourceHasher()
            var i = 0
            while i < data.count { h.update(data[i..<min(i + chunk, data.count)]); i += chunk }
            let all = h.finalize()
            #expect(all.count == 8 && Set(all.keys) == Set(PycSourceHasher.hashBasedReleases))
            for w in PycSourceHasher.hashBasedReleases {
                #expect(all[w] == PycSourceHash.hash(data, magic: w), "magic word \(w), chunk \(chunk)")
            }
        }
    }
}

/// The checker over hand-made trees: headers captured on nodes, content from a dictionary.
@Suite struct BytecodeCheckerUnitTests {
    static func file(_ content: [UInt8], mtime: Int64? = 1_700_000_000) -> TreeNode {
        let n = TreeNode(type: .file, mode: 0o644, size: UInt64(content.count), digest: SHA256.hash(content))
        n.mtime = mtime
        return n
    }

    static let src = Array("VALUE = \"old\"\n".utf8)
    static var srcHash311: UInt64 { PycSourceHash.hash(src, magic: PycMagic.word(forNumber: 3495)) }

    func run(_ files: [String: [UInt8]], pycHeaders: Bool = true, python: PythonVersion? = nil,
             mtimes: [String: Int64] = [:]) -> [BytecodeFinding] {
        let tree = Tree()
        for (p, c) in files {
            let n = Self.file(c, mtime: mtimes[p] ?? 1_700_000_000)
            if pycHeaders && p.hasSuffix(".pyc") { n.pycHeader = Array(c.prefix(16)) }
            tree.insert(Bytes(utf8: p), n)
        }
        let byPath = Dictionary(uniqueKeysWithValues: files.map { (Bytes(utf8: $0.key), $0.value) })
        return BytecodeChecker(content: { byPath[$0] }, python: python).check(tree)
    }

    @Test func freshTimestampPycHasNoFinding() {
        let f = run(["app/mod.py": Self.src,
                     "app/__pycache__/mod.cpython-311.pyc": PycHeaderTests.header(3495, 0, 1_700_000_000, UInt32(Self.src.count))])
        #expect(f.isEmpty)
    }

    @Test func mtimeComparedModulo2To32() {
        let big: Int64 = 0x1_0000_0005
        let f = run(["app/mod.py": Self.src,
                     "app/__pycache__/mod.cpython-311.pyc": PycHeaderTests.header(3495, 0, 5, UInt32(Self.src.count))],
                    mtimes: ["app/mod.py": big])
        #expect(f.isEmpty)
    }

    @Test func headerFromContentWhenNotCaptured() {
        let f = run(["app/mod.py": Self.src,
                     "app/__pycache__/mod.cpython-311.pyc": PycHeaderTests.header(3495, 0, 1, UInt32(Self.src.count))],
                    pycHeaders: false)
        #expect(f.map(\.kind) == [.staleTimestampPyc])
        // CPython ignores it and compiles the source: no old code runs, so a warning.
        #expect(f.first?.severity == .warning)
        #expect(f.first?.sourceSide?.contains("mtime 1700000000") == true)
        #expect(f.first?.pycSide?.contains("source mtime 1,") == true)
    }

    @Test func hashPycs() {
        let h = Self.srcHash311
        let lo = UInt32(truncatingIfNeeded: h), hi = UInt32(truncatingIfNeeded: h >> 32)
        let f = run(["a/m1.py": Self.src, "a/__pycache__/m1.cpython-311.pyc": PycHeaderTests.header(3495, 3, lo, hi),
                     "a/m2.py": Self.src, "a/__pycache__/m2.cpython-311.pyc": PycHeaderTests.header(3495, 3, lo ^ 1, hi),
                     "a/m3.py": Self.src, "a/__pycache__/m3.cpython-311.pyc": PycHeaderTests.header(3495, 1, lo, hi),
                     "a/m4.py": Self.src, "a/__pycache__/m4.cpython-311.pyc": PycHeaderTests.header(3495, 1, lo, hi ^ 1)])
        #expect(f.map(\.kind) == [.staleCheckedHashPyc, .uncheckedHashPyc, .staleUncheckedHashPyc])
        // Only the stale unchecked-hash pyc runs old code; CPython ignores the stale checked-hash one.
        #expect(f.map(\.severity) == [.warning, .warning, .error])
        #expect(f.map(\.runsStaleCode) == [false, false, true])
    }

    @Test func orphansAndLegacy() {
        let ts = PycHeaderTests.header(3495, 0, 1_700_000_000, 14)
        let f = run(["p/__pycache__/gone.cpython-311.pyc": ts,  // orphan cache
                     "p/legacy.pyc": ts,  // orphan sourceless
                     "p/both.py": Self.src, "p/both.pyc": ts,  // source wins
                     "p/pkg/__init__.py": [], "p/pkg.pyc": ts,  // package wins
                     "p/ext.cpython-311-x86_64-linux-gnu.so": [1], "p/ext.pyc": ts,  // extension wins
                     "p/bad.pyc": [1, 2, 3],  // import fails
                     "p/__pycache__/weird.pyc": ts])
        let got = f.map { "\($0.path.lossyString) \($0.kind.rawValue) \($0.severity.rawValue)" }
        #expect(got == [
            "p/__pycache__/gone.cpython-311.pyc orphan-cache-pyc info",
            "p/__pycache__/weird.pyc orphan-cache-pyc info",
            "p/bad.pyc invalid-pyc error",
            "p/both.pyc sourceless-pyc warning",
            "p/ext.pyc sourceless-pyc warning",
            "p/legacy.pyc orphan-sourceless-pyc error",
            "p/pkg.pyc sourceless-pyc warning",
        ])
        #expect(f.first { $0.kind == .orphanSourcelessPyc }?.runsStaleCode == true)
    }

    @Test func mixedVersionsAndTagMismatch() {
        let n = UInt32(Self.src.count)
        var files: [String: [UInt8]] = [:]
        for m in ["a", "b", "c"] {
            files["x/\(m).py"] = Self.src
            files["x/__pycache__/\(m).cpython-311.pyc"] = PycHeaderTests.header(3495, 0, 1_700_000_000, n)
        }
        files["x/__pycache__/a.cpython-310.pyc"] = PycHeaderTests.header(3439, 0, 1_700_000_000, n)
        files["x/__pycache__/b.cpython-311.opt-1.pyc"] = PycHeaderTests.header(3531, 0, 1_700_000_000, n)
        let f = run(files)
        let got = f.map { "\($0.path.lossyString) \($0.kind.rawValue)" }
        #expect(got == [
            "x/__pycache__/a.cpython-310.pyc mixed-python-versions",
            "x/__pycache__/b.cpython-311.opt-1.pyc invalid-pyc",
            "x/__pycache__/b.cpython-311.opt-1.pyc mixed-python-versions",
        ])
        // With an explicit version the 3.11 ones are the odd ones out.
        let g = run(files, python: PythonVersion(3, 10))
        #expect(g.filter { $0.kind == .mixedPythonVersions }.count == 4)
    }

    @Test func staleForOtherVersionIsOnlyWarningWhenPythonGiven() {
        let f = run(["m.py": Self.src, "__pycache__/m.cpython-310.pyc": PycHeaderTests.header(3439, 0, 1, 1)],
                    python: PythonVersion(3, 11))
        #expect(f.map(\.kind) == [.staleTimestampPyc, .mixedPythonVersions])
        #expect(f.map(\.severity) == [.warning, .warning])
    }

    @Test func noContentReader() {
        let tree = Tree()
        tree.insert(Bytes(utf8: "m.py"), Self.file(Self.src))
        let pyc = Self.file([])
        tree.insert(Bytes(utf8: "__pycache__/m.cpython-311.pyc"), pyc)
        tree.insert(Bytes(utf8: "n.py"), Self.file(Self.src))
        let pyc2 = Self.file([])
        pyc2.pycHeader = PycHeaderTests.header(3495, 3, 0, 0)
        tree.insert(Bytes(utf8: "__pycache__/n.cpython-311.pyc"), pyc2)
        let f = BytecodeChecker.check(tree: tree, content: nil)
        #expect(f.map(\.kind) == [.unreadablePyc, .unverifiableHashPyc])
        // Pre-computed source hashes stand in for content.
        let hashes = [Bytes(utf8: "n.py"): [PycMagic.word(forNumber: 3495): UInt64(0)]]
        #expect(BytecodeChecker(sourceHashes: hashes).check(tree).map(\.kind) == [.unreadablePyc])
    }

    /// Malformed input never crashes: random headers of every length, random trees of pycs.
    @Test func randomInputDoesNotCrash() {
        var (rng, seed) = SplitMix64.random()
        // A crash ends the test process: the seed is printed first, to replay it.
        print("randomInputDoesNotCrash: seed \(seed)")
        for i in 0..<3000 {
            var b = (0..<(i % 21)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if i % 3 == 0 && b.count >= 4 { b[2] = 0x0d; b[3] = 0x0a }
            if i % 6 == 0 && b.count >= 8 { b[4] = UInt8(i % 5); b[5] = 0; b[6] = 0; b[7] = 0 }
            _ = try? PycHeader.parse(b)
        }
        let tree = Tree()
        for i in 0..<200 {
            let n = Self.file((0..<(i % 20)).map { _ in UInt8.random(in: 0...255, using: &rng) }, mtime: i % 4 == 0 ? nil : Int64(i) - 100)
            if i % 2 == 0 { n.pycHeader = (0..<(i % 17)).map { _ in UInt8.random(in: 0...255, using: &rng) } }
            let names = ["m\(i % 7).py", "m\(i % 7).pyc", "__pycache__/m\(i % 7).cpython-3\(i % 15).pyc", "__pycache__/.pyc", "__pycache__/a.b.c.d.pyc"]
            tree.insert(Bytes(utf8: "d\(i % 3)/" + names[i % names.count]), n)
        }
        tree.insert(Bytes(utf8: "d0/loop.py"), .symlink(Bytes(utf8: "loop.py")))
        tree.insert(Bytes(utf8: "d0/__pycache__/loop.cpython-311.pyc"), .symlink(Bytes(utf8: "../../../x")))
        let f = BytecodeChecker(content: { _ in throw ImprintError(.io, "boom") }, python: PythonVersion(3, 11)).check(tree)
        #expect(!f.isEmpty, "seed \(seed)")
    }

    @Test func symlinkedSource() {
        let tree = Tree()
        tree.insert(Bytes(utf8: "real/mod.py"), Self.file(Self.src))
        tree.insert(Bytes(utf8: "app/mod.py"), .symlink(Bytes(utf8: "../real/mod.py")))
        let pyc = Self.file([])
        pyc.pycHeader = PycHeaderTests.header(3495, 0, 1_700_000_000, UInt32(Self.src.count))
        tree.insert(Bytes(utf8: "app/__pycache__/mod.cpython-311.pyc"), pyc)
        #expect(BytecodeChecker.check(tree: tree, content: nil).isEmpty)
    }
}
