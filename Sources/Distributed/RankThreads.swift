import Kernels

/// Ranks as threads of this process, each with its own kernel thread pool and an equal share of
/// the cores: with one shared pool the ranks' elementwise loops would take turns. OpenBLAS's
/// thread count is process-wide (with one thread per rank, as on a 2-core machine with 2 ranks,
/// every GEMM runs on its caller's thread; with more, the ranks share OpenBLAS's workers).
public enum RankThreads {
    /// The most rank threads one process starts (each has its own stack, pool and buffers).
    public static let maximumRanks = 1024

    /// Runs `body` on `size` rank threads with `threadsPerRank` kernel and BLAS threads each
    /// (default: the cores shared out) and returns the results in rank order. OpenBLAS's thread
    /// count is process-wide: it is set for the run and restored afterwards.
    public static func run<T>(size: Int, threadsPerRank: Int? = nil,
                              _ body: @escaping @Sendable (ThreadCommunicator) throws -> T) throws -> [T] {
        guard size <= maximumRanks else {
            throw LayoutError.invalid("\(size) ranks as threads of one process is more than the \(maximumRanks) it runs; "
                + "start them with mpirun instead")
        }
        let threads = threadsPerRank ?? Self.threadsPerRank(ranksOnThisMachine: size)
        let previous = blasThreadCount()
        setBLASThreadCount(threads)
        defer { setBLASThreadCount(previous) }
        return try ThreadCommunicator.run(size: size) { world in
            try withOwnPool(threads: threads) { try body(world) }
        }
    }

    /// Kernel and BLAS threads of each of `ranksOnThisMachine` ranks: the cores (or
    /// MEGATRON_NUM_THREADS) shared out.
    public static func threadsPerRank(ranksOnThisMachine: Int) -> Int {
        max(1, ThreadPool.defaultThreadCount() / max(1, ranksOnThisMachine))
    }

    /// Runs `body` with a new pool of `threads` threads as this thread's kernel pool.
    public static func withOwnPool<R>(threads: Int, _ body: () throws -> R) rethrows -> R {
        let pool = ThreadPool(threadCount: threads)
        defer { pool.stop() }
        return try ThreadPool.withCurrent(pool) { try body() }
    }
}
