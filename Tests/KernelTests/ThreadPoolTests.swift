import Kernels
import Synchronization
import Testing

/// A job started from inside a job of the pool (a parallel kernel called by a kernel spread over
/// the pool's threads) runs on the calling thread and covers every index once.
@Suite struct ThreadPoolTests {
    @Test func aJobInsideAJobRunsOnItsThread() {
        let pool = ThreadPool(threadCount: 3)
        defer { pool.stop() }
        let count = 200_000
        let seen = Mutex([Int](repeating: 0, count: 3 * count))
        ThreadPool.withCurrent(pool) {
            #expect(!ThreadPool.isRunningJob)
            pool.run(chunks: 3) { outer in
                #expect(ThreadPool.isRunningJob)
                // On the caller's thread this used to lock the pool's caller lock twice; on a
                // worker's, wait for the caller, which waits for it.
                ThreadPool.current.parallelFor(count, minimumPerThread: 1000) { range in
                    seen.withLock { for i in range { $0[outer * count + i] += 1 } }
                }
            }
            #expect(!ThreadPool.isRunningJob)
        }
        #expect(seen.withLock { $0.allSatisfy { $0 == 1 } })
    }
}
