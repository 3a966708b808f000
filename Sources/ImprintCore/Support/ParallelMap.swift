import Foundation
import Synchronization

/// `items.map(transform)` on all cores, results in the order of `items`. Work is handed out one index at a time,
/// so uneven items balance; each result slot is initialised by the one worker that took its index and read only
/// after every worker is done.
public func parallelMap<T, R>(_ items: [T], workers: Int = ProcessInfo.processInfo.activeProcessorCount,
                              _ transform: (T) -> R) -> [R] {
    if items.count < 2 || workers < 2 { return items.map(transform) }
    let slots = UnsafeMutableBufferPointer<R>.allocate(capacity: items.count)
    defer { slots.deallocate() }
    let next = Atomic<Int>(0)
    withoutActuallyEscaping(transform) { transform in
        DispatchQueue.concurrentPerform(iterations: min(workers, items.count)) { _ in
            while true {
                let i = next.add(1, ordering: .relaxed).oldValue
                if i >= items.count { return }
                (slots.baseAddress! + i).initialize(to: transform(items[i]))
            }
        }
    }
    // Every slot was initialised exactly once; move them out.
    return Array(unsafeUninitializedCapacity: items.count) { buffer, count in
        _ = buffer.moveInitialize(fromContentsOf: slots)
        count = items.count
    }
}

/// `parallelMap` for a transform that can fail: each item's result or error, in order.
public func parallelMap<T, R>(_ items: [T], workers: Int = ProcessInfo.processInfo.activeProcessorCount,
                              _ transform: (T) throws -> R) -> [Result<R, Error>] {
    parallelMap(items, workers: workers) { (item: T) -> Result<R, Error> in Result { try transform(item) } }
}
