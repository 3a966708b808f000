import Foundation
import Testing
@testable import ImprintCore

@Suite struct FileHasherTests {
    @Test func fileThatChangedSizeIsAnError() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("imprint-size-\(UUID().uuidString)").path
        try Data("four".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        // The walk saw 10 bytes; by the time the hasher reads, the file has 4.
        let node = TreeNode(type: .file, mode: 0o644, size: 10)
        #expect(throws: ImprintError.self) { try FileHasher.hash([.init(path: Array(path.utf8), node: node)]) }
        let good = TreeNode(type: .file, mode: 0o644, size: 4)
        try FileHasher.hash([.init(path: Array(path.utf8), node: good)])
        #expect(good.digest == SHA256.hash(Array("four".utf8)))
    }

    @Test func manyFilesInParallelMatchOneShotHashes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imprint-par-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var jobs: [FileHasher.Job] = []
        var expected: [Digest] = []
        for i in 0..<5000 {
            let content = Array("file \(i) ".utf8) + [UInt8](repeating: UInt8(i % 251), count: i % 3000)
            let p = dir + "/f\(i)"
            try Data(content).write(to: URL(fileURLWithPath: p))
            jobs.append(.init(path: Array(p.utf8), node: TreeNode(type: .file, mode: 0o644, size: UInt64(content.count))))
            expected.append(SHA256.hash(content))
        }
        try FileHasher.hash(jobs, workers: 4)
        #expect(jobs.map(\.node.digest) == expected)
    }
}
