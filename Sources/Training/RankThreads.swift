import Distributed
import Kernels

/// Ranks as threads of this process, each computing side by side with its own kernel thread pool
/// and an equal share of the cores: a shared pool would make the ranks take turns, and
/// attention's switch of OpenBLAS to one thread would change the rounding of another rank's GEMM.
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
