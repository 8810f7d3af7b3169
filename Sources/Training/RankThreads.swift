import Distributed
import Kernels

/// Ranks as threads of this process, each with its own kernel thread pool and an equal share of
/// the cores: with one shared pool the ranks' elementwise loops would take turns. OpenBLAS's
/// thread count is process-wide (with one thread per rank, as on a 2-core machine with 2 ranks,
/// every GEMM runs on its caller's thread; with more, the ranks share OpenBLAS's workers).
public enum RankThreads {
    /// Runs `body` on `size` rank threads with `threadsPerRank` kernel and BLAS threads each
    /// (default: the cores shared out) and returns the results in rank order. OpenBLAS's thread
    /// count is process-wide: it is set for the run and restored afterwards.
    public static func run<T>(size: Int, threadsPerRank: Int? = nil,
                              _ body: @escaping @Sendable (ThreadCommunicator) throws -> T) throws -> [T] {
        let threads = threadsPerRank ?? max(1, ThreadPool.defaultThreadCount() / max(1, size))
        let previous = blasThreadCount()
        setBLASThreadCount(threads)
        defer { setBLASThreadCount(previous) }
        return try ThreadCommunicator.run(size: size) { world in
            let pool = ThreadPool(threadCount: threads)
            defer { pool.stop() }
            return try ThreadPool.withCurrent(pool) { try body(world) }
        }
    }
}
