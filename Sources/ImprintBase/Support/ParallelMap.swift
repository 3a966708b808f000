import Foundation
import Synchronization

/// `items.map(transform)` on all cores, results in the order of `items`. Work is handed out one index at a time,
/// so uneven items balance; each result slot is initialised by the one worker that took its index and read only
/// after every worker is done.
package func parallelMap<T, R>(_ items: [T], workers: Int = ProcessInfo.processInfo.activeProcessorCount,
                              _ transform: (T) -> R) -> [R] {
    if items.count < 2 || workers < 2 { return items.map(transform) }
    let slots = UnsafeMutableBufferPointer<R>.allocate(capacity: items.count)
    defer { slots.deallocate() }
    let next = Atomic<Int>(0)
    // Shared: `next` (atomic); each slot is written by the one worker that took its index.
    concurrentWorkers(min(workers, items.count)) { _ in
        while true {
            let i = next.add(1, ordering: .relaxed).oldValue
            if i >= items.count { return }
            (slots.baseAddress! + i).initialize(to: transform(items[i]))
        }
    }
    // Every slot was initialised exactly once; move them out.
    return Array(unsafeUninitializedCapacity: items.count) { buffer, count in
        _ = buffer.moveInitialize(fromContentsOf: slots)
        count = items.count
    }
}

/// `parallelMap` for a transform that can fail: each item's result or error, in order.
package func parallelMap<T, R>(_ items: [T], workers: Int = ProcessInfo.processInfo.activeProcessorCount,
                              _ transform: (T) throws -> R) -> [Result<R, Error>] {
    parallelMap(items, workers: workers) { (item: T) -> Result<R, Error> in Result { try transform(item) } }
}

/// Carries a value across a boundary the compiler treats as concurrent, where the code around it guarantees the
/// access is safe (the pattern swift-nio calls `UnsafeTransfer`).
// why @unchecked Sendable: used only by `concurrentWorkers`, `LayeredDiff`, `ChildProcess` and `keepUntilExit`, whose
// call sites each say how the state they share is guarded (a lock, an atomic, slots written by exactly one thread
// and read after it finished, or an object only kept and never used again).
package struct UnsafeTransfer<Value>: @unchecked Sendable {
    package let value: Value
    package init(_ value: Value) { self.value = value }
}

/// Runs `body(i)` for every i in 0..<count on up to all cores and returns when every call has. This is the one
/// place ImprintCore fans work out to a thread pool; every caller documents, where it calls this, how its workers
/// share state.
package func concurrentWorkers(_ count: Int, _ body: (Int) -> Void) {
    withoutActuallyEscaping(body) { body in
        let transfer = UnsafeTransfer(body)
        DispatchQueue.concurrentPerform(iterations: count) { i in transfer.value(i) }
    }
}
