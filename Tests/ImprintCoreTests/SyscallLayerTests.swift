import Foundation
import Testing
@testable import ImprintCore

/// One syscall layer: no file retries an interrupted call, sets the umask or reads a directory entry's name on its
/// own, and the layer's loops do what they claim.
@Suite struct SyscallLayerTests {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Sources").standardizedFileURL.path

    @Test func noHandWrittenEINTRLoopUmaskOrEntryNameOutsideTheLayer() throws {
        var offenders: [String] = []
        let e = FileManager.default.enumerator(atPath: Self.sources)
        var files = 0
        while let rel = e?.nextObject() as? String {
            guard rel.hasSuffix(".swift"), !rel.hasSuffix("Support/Syscall.swift") else { continue }
            files += 1
            let text = try String(contentsOfFile: Self.sources + "/" + rel, encoding: .utf8)
            for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let code = line.split(separator: "//", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                if code.contains("EINTR") || code.contains("umask(") || code.contains("d_name") { offenders.append("\(rel):\(i + 1): \(line.trimmingCharacters(in: .whitespaces))") }
            }
        }
        #expect(files > 100)
        #expect(offenders.isEmpty, "\(offenders.joined(separator: "\n"))")
    }

    @Test func writeAllWritesEverythingThroughAPipe() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let payload = [UInt8]((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let done = DispatchSemaphore(value: 0)
        let readFD = fds[0]
        let box = UnsafeTransfer(Box())
        Thread.detachNewThread {
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buf.withUnsafeMutableBytes { Syscall.read(readFD, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                box.value.bytes += buf[0..<n]
            }
            done.signal()
        }
        let err = payload.withUnsafeBytes { Syscall.writeAll(fds[1], $0) }
        close(fds[1])
        done.wait()
        close(fds[0])
        #expect(err == nil)
        #expect(box.value.bytes == payload)
    }

    final class Box { var bytes: [UInt8] = [] }

    @Test func atomicWritesGetTheModeThroughTheUmaskWithoutTouchingIt() throws {
        let dir = NSTemporaryDirectory() + "imprint-syscall-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let old = umask(0o027)
        defer { umask(old) }
        try AtomicFile.write(Array("x".utf8), to: dir + "/f", mode: 0o666)
        var st = stat()
        #expect(stat(dir + "/f", &st) == 0 && st.st_mode & 0o777 == 0o640)
        #expect(umask(0o027) == 0o027)  // left as it was
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["f"])  // no temporary file left
    }
}
