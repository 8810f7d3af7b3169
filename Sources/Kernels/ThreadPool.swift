#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import CBLAS

/// A fixed pool of worker threads for the non-BLAS loops (elementwise ops, LayerNorm, softmax).
///
/// `parallelFor` splits `0..<count` into contiguous chunks; the calling thread runs chunk 0 and
/// the workers the rest. Workers spin briefly after a job (a dispatch then costs well under a
/// microsecond) and then sleep on a condition variable, so they leave the cores to OpenBLAS
/// during GEMMs. Callers of one pool take turns; rank threads that should compute side by side
/// each install their own pool with `withCurrent`.
public final class ThreadPool: @unchecked Sendable {
    /// The process-wide pool, sized by `MEGATRON_NUM_THREADS` or the number of online cores.
    public static let process = ThreadPool(threadCount: ThreadPool.defaultThreadCount())

    /// The pool the kernels use on this thread: the one installed by `withCurrent`, else `process`.
    public static var current: ThreadPool {
        guard let pointer = pthread_getspecific(currentKey) else { return process }
        return Unmanaged<ThreadPool>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// Runs `body` with `pool` as this thread's `current` pool.
    public static func withCurrent<R>(_ pool: ThreadPool, _ body: () throws -> R) rethrows -> R {
        let previous = pthread_getspecific(currentKey)
        pthread_setspecific(currentKey, Unmanaged.passUnretained(pool).toOpaque())
        defer { pthread_setspecific(currentKey, previous) }
        return try body()
    }

    private static let currentKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// Set while this thread runs a chunk of a job, of any pool. A job started from inside one
    /// (a kernel that parallelizes, called by a kernel already spread over the pool, as the bf16
    /// attention core's emulated GEMM widening its operands) runs its chunks on this thread one
    /// after another: the pool's threads are busy with the outer job, which would wait on itself.
    private static let runningJobKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// Whether this thread is running a chunk of a job.
    public static var isRunningJob: Bool { pthread_getspecific(runningJobKey) != nil }

    /// Runs `body` marked as running a job's chunk.
    private static func runningJob(_ body: () -> Void) {
        let previous = pthread_getspecific(runningJobKey)
        pthread_setspecific(runningJobKey, UnsafeRawPointer(bitPattern: 1))
        defer { pthread_setspecific(runningJobKey, previous) }
        body()
    }

    /// Threads that run a job, the caller included.
    public let threadCount: Int

    private typealias Job = (Int) -> Void  // chunk index
    private nonisolated(unsafe) var job: Job?
    /// The job's generation (upper bits) and chunk count (low 16 bits) in one value, so that a
    /// worker never pairs one job's generation with another's chunk count.
    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private let callerLock = Mutex<Void>(())
    private let stopping = Atomic<Bool>(false)

    /// Spin iterations before a worker sleeps (roughly 20-50 microseconds).
    private static let spinLimit = 20_000

    /// Creates a pool that runs jobs on `threadCount` threads (the caller and `threadCount - 1` workers).
    public init(threadCount: Int) {
        precondition(threadCount < 1 << 16, "at most 65535 threads")
        self.threadCount = max(1, threadCount)
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        for worker in 1..<self.threadCount {
            startWorker(index: worker)
        }
    }

    /// The thread count from `MEGATRON_NUM_THREADS`, else the cores this process may run on.
    public static func defaultThreadCount() -> Int {
        if let text = getenv("MEGATRON_NUM_THREADS"), let value = Int(String(cString: text)), value > 0 {
            return value
        }
        return availableCores
    }

    /// The cores in this process's CPU affinity mask (fewer than the online cores when a launcher
    /// such as mpirun binds it), else the online cores.
    public static var availableCores: Int {
        let count = Int(megatron_affinity_core_count())
        return count > 0 ? count : onlineCores
    }

    /// The processors the system has online.
    public static var onlineCores: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Ends the worker threads once they are idle; the pool must not be used afterwards.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        pthread_mutex_lock(mutex)
        generation.store(nextGeneration(chunks: 0), ordering: .releasing)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Runs `body` over contiguous sub-ranges covering `0..<count`, in parallel when each thread
    /// gets at least `minimumPerThread` items. Returns after every sub-range has run.
    public func parallelFor(_ count: Int, minimumPerThread: Int = 4096,
                            _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(threadCount, max(1, count / max(1, minimumPerThread)))
        if chunks == 1 {
            body(0..<count)
            return
        }
        run(chunks: chunks) { chunk in
            body((count * chunk / chunks)..<(count * (chunk + 1) / chunks))
        }
    }

    /// Runs `body(chunk)` for every chunk in `0..<chunks` (at most `threadCount`), one per thread
    /// (one after another on this thread when it is already running a job's chunk).
    public func run(chunks: Int, _ body: (Int) -> Void) {
        precondition(chunks <= threadCount, "more chunks than threads")
        if chunks <= 1 {
            if chunks == 1 { body(0) }
            return
        }
        if Self.isRunningJob {
            for chunk in 0..<chunks { body(chunk) }
            return
        }
        callerLock.withLock { _ in
            withoutActuallyEscaping(body) { body in
                job = body
                pending.store(chunks - 1, ordering: .releasing)
                pthread_mutex_lock(mutex)
                generation.store(nextGeneration(chunks: chunks), ordering: .releasing)
                pthread_cond_broadcast(condition)
                pthread_mutex_unlock(mutex)
                Self.runningJob { body(0) }
                while pending.load(ordering: .acquiring) > 0 {}
                job = nil
            }
        }
    }

    /// The generation value that announces the next job of `chunks` chunks.
    private func nextGeneration(chunks: Int) -> Int {
        ((generation.load(ordering: .relaxed) >> 16) + 1) << 16 | chunks
    }

    /// Runs the current job's chunk. Kept out of line so the worker's reference to the closure
    /// is released before it reports completion (the caller then checks that nothing escaped).
    @inline(never)
    private func runJob(_ index: Int) {
        job?(index)
    }

    private func startWorker(index: Int) {
        let context = Unmanaged.passRetained(WorkerContext(pool: self, index: index)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { raw in
            let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
            context.pool.workerLoop(index: context.index)
            return nil
        }, context)
        precondition(status == 0, "pthread_create failed with \(status)")
        pthread_detach(thread)
    }

    private func workerLoop(index: Int) {
        // The pool's generation starts at 0 before any worker exists; a worker that starts late
        // must still run the jobs published before it first looked.
        var seen = 0
        while true {
            var spins = 0
            var current = generation.load(ordering: .acquiring)
            while current == seen && spins < Self.spinLimit {
                spins += 1
                current = generation.load(ordering: .acquiring)
            }
            if current == seen {
                pthread_mutex_lock(mutex)
                current = generation.load(ordering: .acquiring)
                while current == seen {
                    pthread_cond_wait(condition, mutex)
                    current = generation.load(ordering: .acquiring)
                }
                pthread_mutex_unlock(mutex)
            }
            seen = current
            if stopping.load(ordering: .acquiring) { return }
            if index < current & 0xFFFF {
                Self.runningJob { runJob(index) }
                pending.wrappingSubtract(1, ordering: .releasing)
            }
        }
    }
}

private final class WorkerContext {
    let pool: ThreadPool
    let index: Int
    init(pool: ThreadPool, index: Int) {
        self.pool = pool
        self.index = index
    }
}
