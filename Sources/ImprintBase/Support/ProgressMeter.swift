import Synchronization

/// How much long-running work has been done, for the command line's progress line: files (and archive entries)
/// finished, content bytes hashed or read, and the bytes of work known to be ahead (a large file being hashed).
/// Lock-free counters, cheap enough for the hashing loops that feed them.
package final class ProgressMeter: Sendable {
    package static let shared = ProgressMeter()

    private let itemCount = Atomic<Int>(0)
    private let byteCount = Atomic<UInt64>(0)
    private let plannedBytes = Atomic<UInt64>(0)
    private let plannedDone = Atomic<UInt64>(0)

    package struct Snapshot: Sendable, Equatable {
        package var items: Int
        package var bytes: UInt64
        /// Bytes of work announced by `plan`, and how many of them are done: the rest is known to be ahead.
        package var planned: UInt64
        package var plannedDone: UInt64
        package var ahead: UInt64 { planned > plannedDone ? planned - plannedDone : 0 }

        package init(items: Int = 0, bytes: UInt64 = 0, planned: UInt64 = 0, plannedDone: UInt64 = 0) {
            (self.items, self.bytes, self.planned, self.plannedDone) = (items, bytes, planned, plannedDone)
        }
    }

    package init() {}

    /// Work finished: `items` files or entries, `bytes` of content.
    @inline(__always)
    package func add(items: Int = 0, bytes: UInt64 = 0) {
        if items != 0 { itemCount.add(items, ordering: .relaxed) }
        if bytes != 0 { byteCount.add(bytes, ordering: .relaxed) }
    }

    /// Work about to be done, so the time it will take can be estimated.
    package func plan(bytes: UInt64) {
        plannedBytes.add(bytes, ordering: .relaxed)
    }

    /// Bytes of planned work done (also counted as done work).
    @inline(__always)
    package func addPlanned(bytes: UInt64) {
        byteCount.add(bytes, ordering: .relaxed)
        plannedDone.add(bytes, ordering: .relaxed)
    }

    package func snapshot() -> Snapshot {
        Snapshot(items: itemCount.load(ordering: .relaxed), bytes: byteCount.load(ordering: .relaxed),
                 planned: plannedBytes.load(ordering: .relaxed), plannedDone: plannedDone.load(ordering: .relaxed))
    }
}
