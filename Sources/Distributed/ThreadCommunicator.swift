#if canImport(Glibc)
import Glibc
#endif

/// Ranks as threads of one process: collectives read the other ranks' buffers directly through
/// shared memory. Each group has a table where ranks publish their buffer addresses for the
/// current collective and a barrier; results are computed in rank order, so every rank (and
/// every run) gets the same bits.
public final class ThreadCommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public var size: Int { group.members.count }
    public var members: [Int] { group.members }
    let group: ThreadGroup
    let world: ThreadWorld

    init(group: ThreadGroup, rank: Int, world: ThreadWorld) {
        self.group = group
        self.rank = rank
        self.world = world
    }

    /// Runs `body` on `size` new threads, one per rank, each with its communicator over the whole
    /// world, and returns their results in rank order after all have finished.
    public static func run<T>(size: Int, _ body: @escaping @Sendable (ThreadCommunicator) throws -> T) throws -> [T] {
        let world = ThreadWorld(size: size)
        let results = ResultSlots<T>(count: size)
        var threads = [pthread_t]()
        for rank in 0..<size {
            let communicator = ThreadCommunicator(group: world.root, rank: rank, world: world)
            let box = Unmanaged.passRetained(ThreadStart {
                let result = Result { try body(communicator) }
                if case .failure = result { world.fail() }  // wake the others out of their waits
                results.store(rank, result)
            })
            var thread = pthread_t()
            var attributes = pthread_attr_t()
            pthread_attr_init(&attributes)
            pthread_attr_setstacksize(&attributes, 16 << 20)
            let status = pthread_create(&thread, &attributes, { argument in
                let start = Unmanaged<ThreadStart>.fromOpaque(argument!).takeRetainedValue()
                start.body()
                return nil
            }, box.toOpaque())
            pthread_attr_destroy(&attributes)
            precondition(status == 0, "cannot start rank thread \(rank)")
            threads.append(thread)
        }
        for thread in threads { pthread_join(thread, nil) }
        return try results.values(failed: world.failed)
    }

    public func allReduce(_ buffer: UnsafeMutablePointer<Float>, count: Int, operation: ReduceOperation) {
        reduce(buffer, count: count, operation: operation)
    }

    public func allReduce(_ buffer: UnsafeMutablePointer<Double>, count: Int, operation: ReduceOperation) {
        reduce(buffer, count: count, operation: operation)
    }

    /// Each rank reduces one slice of the elements over all ranks into the group's scratch, then
    /// every rank copies the whole result.
    private func reduce<T: BinaryFloatingPoint>(_ buffer: UnsafeMutablePointer<T>, count: Int, operation: ReduceOperation) {
        guard size > 1 else { return }
        let scratch = group.scratch(bytes: count * MemoryLayout<T>.stride, rank: rank).assumingMemoryBound(to: T.self)
        group.publish(UnsafeMutableRawPointer(buffer), rank: rank)
        let lower = count * rank / size, upper = count * (rank + 1) / size
        let inputs = (0..<size).map { group.address($0).assumingMemoryBound(to: T.self) }
        for i in lower..<upper {
            var value = inputs[0][i]
            for r in 1..<size {
                value = operation == .sum ? value + inputs[r][i] : Swift.max(value, inputs[r][i])
            }
            scratch[i] = value
        }
        group.wait()
        buffer.update(from: scratch, count: count)
        group.wait()
    }

    public func allGather(send: UnsafePointer<Float>, receive: UnsafeMutablePointer<Float>, count: Int) {
        group.publish(UnsafeMutableRawPointer(mutating: send), rank: rank)
        for r in 0..<size {
            (receive + r * count).update(from: group.address(r).assumingMemoryBound(to: Float.self), count: count)
        }
        group.wait()
    }

    public func reduceScatter(send: UnsafePointer<Float>, receive: UnsafeMutablePointer<Float>, count: Int) {
        group.publish(UnsafeMutableRawPointer(mutating: send), rank: rank)
        let inputs = (0..<size).map { group.address($0).assumingMemoryBound(to: Float.self) + rank * count }
        for i in 0..<count {
            var value = inputs[0][i]
            for r in 1..<size { value += inputs[r][i] }
            receive[i] = value
        }
        group.wait()
    }

    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) {
        group.publish(UnsafeMutableRawPointer(buffer), rank: rank)
        if rank != root { buffer.update(from: group.address(root).assumingMemoryBound(to: Float.self), count: count) }
        group.wait()
    }

    public func send(_ buffer: UnsafePointer<Float>, count: Int, to destination: Int, tag: Int) {
        world.mailbox.post(Array(UnsafeBufferPointer(start: buffer, count: count)),
                           from: members[rank], to: members[destination], tag: tag)
    }

    public func receive(_ buffer: UnsafeMutablePointer<Float>, count: Int, from source: Int, tag: Int) {
        let message = world.mailbox.take(from: members[source], to: members[rank], tag: tag)
        precondition(message.count == count, "received \(message.count) floats, expected \(count)")
        buffer.update(from: message, count: count)
    }

    public func barrier() {
        group.wait()
    }

    public func split(color: Int, key: Int) -> Communicator {
        let child = group.split(rank: rank, color: color, key: key, globalRank: members[rank])
        return ThreadCommunicator(group: child.group, rank: child.rank, world: world)
    }
}

/// State shared by all ranks of a thread world. When one rank's body throws, the world fails:
/// ranks waiting in a collective or a receive leave their thread, and `run` reports the error.
final class ThreadWorld: @unchecked Sendable {
    let monitor = Monitor()
    let root: ThreadGroup
    let mailbox: Mailbox
    private(set) var failed = false

    init(size: Int) {
        root = ThreadGroup(members: Array(0..<size), monitor: monitor)
        mailbox = Mailbox(monitor: monitor)
    }

    func fail() {
        monitor.locked { failed = true; monitor.failed = true }
        monitor.broadcast()
    }
}

/// One mutex and condition for every wait of a thread world (barriers and receives), so that a
/// failure can wake them all.
final class Monitor: @unchecked Sendable {
    let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    var failed = false

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        pthread_cond_destroy(condition)
        mutex.deallocate()
        condition.deallocate()
    }

    func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    func broadcast() { pthread_cond_broadcast(condition) }

    /// Waits (the mutex held) until woken; leaves the thread if the world has failed.
    func wait() {
        pthread_cond_wait(condition, mutex)
        exitIfFailed()
    }

    /// Called with the mutex held.
    func exitIfFailed() {
        if failed {
            pthread_mutex_unlock(mutex)
            pthread_exit(nil)
        }
    }
}

/// A group's shared table of published addresses, its barrier and scratch memory.
final class ThreadGroup: @unchecked Sendable {
    let members: [Int]
    private let monitor: Monitor
    private var arrived = 0
    private var generation = 0
    /// One slot per rank; each rank writes only its own (raw storage, not an Array, so that
    /// concurrent writers do not touch shared Array state).
    private let addresses: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    private var scratchMemory: UnsafeMutableRawPointer?
    private var scratchBytes = 0
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var splits: [Int: [(color: Int, key: Int, globalRank: Int)]] = [:]
    private var children: [Int: ThreadGroup] = [:]
    private var splitRound = 0

    init(members: [Int], monitor: Monitor) {
        self.members = members
        self.monitor = monitor
        addresses = .allocate(capacity: members.count)
        addresses.initialize(repeating: nil, count: members.count)
        pthread_mutex_init(lock, nil)
    }

    deinit {
        addresses.deallocate()
        pthread_mutex_destroy(lock)
        lock.deallocate()
        scratchMemory?.deallocate()
    }

    /// A barrier over the group's ranks.
    func wait() {
        pthread_mutex_lock(monitor.mutex)
        monitor.exitIfFailed()
        let mine = generation
        arrived += 1
        if arrived == members.count {
            arrived = 0
            generation += 1
            monitor.broadcast()
        } else {
            while generation == mine { monitor.wait() }
        }
        pthread_mutex_unlock(monitor.mutex)
    }

    /// Records `address` for `rank` and waits until every rank has published.
    func publish(_ address: UnsafeMutableRawPointer, rank: Int) {
        addresses[rank] = address
        wait()
    }

    func address(_ rank: Int) -> UnsafeMutableRawPointer { addresses[rank]! }

    /// Shared scratch of at least `bytes` (grown by rank 0 between two barriers).
    func scratch(bytes: Int, rank: Int) -> UnsafeMutableRawPointer {
        if rank == 0 && bytes > scratchBytes {
            scratchMemory?.deallocate()
            scratchMemory = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            scratchBytes = bytes
        }
        wait()
        return scratchMemory!
    }

    /// Collective: every rank reports its color and key; ranks of one color share a new group.
    func split(rank: Int, color: Int, key: Int, globalRank: Int) -> (group: ThreadGroup, rank: Int) {
        pthread_mutex_lock(lock)
        let round = splitRound
        splits[round, default: []].append((color, key, globalRank))
        pthread_mutex_unlock(lock)
        wait()
        pthread_mutex_lock(lock)
        let entries = splits[round]!
        let mine = entries.filter { $0.color == color }.sorted { ($0.key, $0.globalRank) < ($1.key, $1.globalRank) }
        let childKey = round &* 1_000_003 &+ color
        let child: ThreadGroup
        if let existing = children[childKey] {
            child = existing
        } else {
            child = ThreadGroup(members: mine.map(\.globalRank), monitor: monitor)
            children[childKey] = child
        }
        pthread_mutex_unlock(lock)
        wait()
        if rank == 0 {
            pthread_mutex_lock(lock)
            splits[round] = nil
            splitRound += 1
            pthread_mutex_unlock(lock)
        }
        wait()
        return (child, mine.firstIndex { $0.globalRank == globalRank }!)
    }
}

/// Buffered point-to-point messages keyed by (source, destination, tag), delivered in order.
final class Mailbox: @unchecked Sendable {
    private var queues: [Key: [[Float]]] = [:]
    private let monitor: Monitor

    struct Key: Hashable {
        var source: Int, destination: Int, tag: Int
    }

    init(monitor: Monitor) { self.monitor = monitor }

    func post(_ message: [Float], from source: Int, to destination: Int, tag: Int) {
        pthread_mutex_lock(monitor.mutex)
        queues[Key(source: source, destination: destination, tag: tag), default: []].append(message)
        monitor.broadcast()
        pthread_mutex_unlock(monitor.mutex)
    }

    func take(from source: Int, to destination: Int, tag: Int) -> [Float] {
        let key = Key(source: source, destination: destination, tag: tag)
        pthread_mutex_lock(monitor.mutex)
        monitor.exitIfFailed()
        while queues[key]?.isEmpty ?? true { monitor.wait() }
        let message = queues[key]!.removeFirst()
        pthread_mutex_unlock(monitor.mutex)
        return message
    }
}

/// A thread's entry point, passed through pthread_create's argument.
private final class ThreadStart {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// One result per rank thread, each slot written by its own thread.
private final class ResultSlots<T>: @unchecked Sendable {
    private let slots: UnsafeMutableBufferPointer<Result<T, Error>?>
    init(count: Int) {
        slots = .allocate(capacity: count)
        slots.initialize(repeating: nil)
    }
    deinit {
        _ = slots.deinitialize()
        slots.deallocate()
    }
    func store(_ index: Int, _ result: Result<T, Error>) { slots[index] = result }

    /// The results in rank order, or the first rank's error (ranks that left a failed world
    /// have no result).
    func values(failed: Bool) throws -> [T] {
        for case .failure(let error)? in slots { throw error }
        return slots.map { try! $0!.get() }
    }
}
