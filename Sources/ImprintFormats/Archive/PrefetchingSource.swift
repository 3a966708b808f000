import Foundation

/// Runs a producer (typically read → verify → inflate) on its own thread and hands its output to the
/// consumer through a small bounded queue of chunks, so decompression overlaps with tar parsing and hashing.
///
/// The producer's error, if any, is thrown by the consumer's `read` after the data produced before it.
// why @unchecked Sendable: every mutable field is read and written under `condition`; `produce` and `explain`
// run on the producer thread only.
package final class PrefetchingSource: ByteSource, @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [[UInt8]] = []
    private var free: [[UInt8]] = []
    private var current: [UInt8] = []
    private var currentOffset = 0
    private var ended = false
    private var failure: Error?
    private var cancelled = false
    private let maxQueued: Int
    private let chunkSize: Int
    private var started = false
    private let produce: (PrefetchingSource) throws -> Void
    private let explain: (Error) -> Error

    /// - Parameters:
    ///   - chunkSize: bytes per chunk.
    ///   - maxQueued: chunks the producer may run ahead.
    ///   - open: builds the source to drain on the producer thread; `finish` runs on that thread after EOF
    ///     (verification) and may throw.
    ///   - explain: maps a producer error to the error the consumer sees (e.g. a digest mismatch that explains
    ///     a decompression failure).
    package init(chunkSize: Int = 1 << 20, maxQueued: Int = 8, open: @escaping () throws -> ByteSource,
                finish: @escaping () throws -> Void = {}, explain: @escaping (Error) -> Error = { $0 }) {
        self.explain = explain
        self.chunkSize = chunkSize
        self.maxQueued = maxQueued
        self.produce = { me in
            let source = try open()
            while true {
                var chunk = me.takeFreeChunk()
                let n = try chunk.withUnsafeMutableBytes { try source.readFully(into: $0) }
                if n == 0 { break }
                if n < chunk.count { chunk.removeSubrange(n...) }
                if !me.enqueue(chunk) { return }
                if n < me.chunkSize { continue }
            }
            try finish()
        }
    }

    /// Starts the producer thread (idempotent). Reading starts it too.
    package func start() {
        condition.lock()
        defer { condition.unlock() }
        if started { return }
        started = true
        // The thread holds `self` until the producer ends; `self` does not keep the Thread (Foundation's Thread keeps
        // its block after it finished, so holding it would be a cycle that never frees the chunks).
        let t = Thread { [self] in
            do {
                try produce(self)
            } catch {
                let explained = explain(error)
                condition.lock(); failure = explained; condition.unlock()
            }
            condition.lock(); ended = true; condition.broadcast(); condition.unlock()
        }
        t.stackSize = 1 << 20
        t.start()
    }

    /// Stops the producer early (the consumer gave up); it exits at its next chunk.
    package func cancel() {
        condition.lock(); cancelled = true; queue.removeAll(); condition.broadcast(); condition.unlock()
    }

    /// Waits for the producer to finish, discarding data (used in error paths and after a reader stopped early).
    package func waitUntilDone() {
        condition.lock()
        while started && !ended { condition.wait() }
        condition.unlock()
    }

    deinit { cancel() }

    private func takeFreeChunk() -> [UInt8] {
        condition.lock()
        defer { condition.unlock() }
        if var c = free.popLast() {
            if c.count < chunkSize { c = [UInt8](repeating: 0, count: chunkSize) }
            return c
        }
        return [UInt8](repeating: 0, count: chunkSize)
    }

    private func enqueue(_ chunk: [UInt8]) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while queue.count >= maxQueued && !cancelled { condition.wait() }
        if cancelled { return false }
        queue.append(chunk)
        condition.broadcast()
        return true
    }

    package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        start()
        if currentOffset >= current.count {
            condition.lock()
            while queue.isEmpty && !ended { condition.wait() }
            if queue.isEmpty {
                let f = failure
                condition.unlock()
                if let f { throw f }
                return 0
            }
            if current.count == chunkSize { free.append(current) }
            current = queue.removeFirst()
            currentOffset = 0
            condition.broadcast()
            condition.unlock()
        }
        let n = min(buffer.count, current.count - currentOffset)
        current.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + currentOffset, byteCount: n) }
        currentOffset += n
        return n
    }
}
