import Dispatch

/// Runs `body` on each document of a batch on `threads` threads (contiguous shares) and returns
/// the results in order; the caller then writes them sequentially, so the output keeps the input's
/// order whatever the thread count.
func parallelMap<T: Sendable>(_ batch: [CorpusDocument], threads: Int, _ body: @Sendable (CorpusDocument) -> T) -> [T] {
    let workers = max(1, min(threads, batch.count))
    if workers == 1 { return batch.map(body) }
    let slots = UnsafeMutableBufferPointer<T?>.allocate(capacity: batch.count)
    slots.initialize(repeating: nil)
    defer { slots.deallocate() }
    let shared = Slots(pointer: slots)
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
        for i in (batch.count * worker / workers)..<(batch.count * (worker + 1) / workers) { shared.pointer[i] = body(batch[i]) }
    }
    return slots.map { $0! }
}

/// Result slots the threads write, each thread its own.
private struct Slots<T>: @unchecked Sendable {
    let pointer: UnsafeMutableBufferPointer<T?>
}
