import CBLAS
import Synchronization

/// The number of threads OpenBLAS uses for each GEMM.
public func blasThreadCount() -> Int {
    Int(openblas_get_num_threads())
}

/// Sets the number of threads OpenBLAS uses for each GEMM.
public func setBLASThreadCount(_ count: Int) {
    openblas_set_num_threads(Int32(count))
}

/// Runs `body` with OpenBLAS limited to one thread per call (so several threads can each run
/// their own small GEMMs), then restores the previous thread count. OpenBLAS's count is
/// process-wide: overlapping callers share one switch, counted, so that the last one out restores
/// the count the first one saw. Only where `SharedBLASThreads.maySwitch` (no other rank's GEMMs
/// would see the switch).
public func withSingleThreadedBLAS<R>(_ body: () throws -> R) rethrows -> R {
    singleThreadedBLAS.withLock { state in
        if state.users == 0 {
            state.saved = openblas_get_num_threads()
            openblas_set_num_threads(1)
        }
        state.users += 1
    }
    defer {
        singleThreadedBLAS.withLock { state in
            state.users -= 1
            if state.users == 0 { openblas_set_num_threads(state.saved) }
        }
    }
    return try body()
}

private let singleThreadedBLAS = Mutex<(users: Int, saved: Int32)>((0, 1))

/// Keeps OpenBLAS's thread count fixed while ranks run as threads of this process. A product's
/// bits depend on the count (OpenBLAS 0.3.21 splits a 128 x 2048 x 64 product differently on one
/// and two threads), and the count is process-wide: one rank switching it for its attention
/// would change the bits of the GEMMs another rank runs meanwhile, and with them the run's.
public enum SharedBLASThreads {
    private static let rankThreads = Atomic<Int>(0)

    /// Runs `body` while `count` rank threads of this process train.
    public static func withRankThreads<R>(_ count: Int, _ body: () throws -> R) rethrows -> R {
        rankThreads.add(count, ordering: .sequentiallyConsistent)
        defer { rankThreads.subtract(count, ordering: .sequentiallyConsistent) }
        return try body()
    }

    /// Whether a thread may switch OpenBLAS's count for a while (`withSingleThreadedBLAS`): no
    /// more than one rank runs in this process.
    public static var maySwitch: Bool { rankThreads.load(ordering: .sequentiallyConsistent) <= 1 }
}
