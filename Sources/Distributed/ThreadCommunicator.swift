#if canImport(Glibc)
import Glibc
#endif
import Kernels

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
        // The ranks' GEMMs share OpenBLAS's process-wide thread count: none may switch it meanwhile.
        try SharedBLASThreads.withRankThreads(size) { try start(size: size, body) }
    }

    private static func start<T>(size: Int, _ body: @escaping @Sendable (ThreadCommunicator) throws -> T) throws -> [T] {
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

    /// Each rank reduces its slice of the elements over all ranks into the same slice of its own
    /// buffer (no other rank reads that slice), then copies the other slices from their owners.
    private func reduce<T: BinaryFloatingPoint>(_ buffer: UnsafeMutablePointer<T>, count: Int, operation: ReduceOperation) {
        guard size > 1 else { return }
        group.publish(UnsafeMutableRawPointer(buffer), rank: rank)
        let inputs = (0..<size).map { UnsafePointer(group.address($0).assumingMemoryBound(to: T.self)) }
        let mine = slice(rank, of: count)
        combine(inputs, into: buffer, range: mine, operation: operation)
        group.wait()
        for owner in 0..<size where owner != rank {
            let range = slice(owner, of: count)
            (buffer + range.lowerBound).update(from: inputs[owner] + range.lowerBound, count: range.count)
        }
        group.wait()
    }

    /// Rank `owner`'s share of `count` elements.
    private func slice(_ owner: Int, of count: Int) -> Range<Int> {
        (count * owner / size)..<(count * (owner + 1) / size)
    }

    /// `output[range]` = `inputs[0][range]` op `inputs[1][range]` op ..., in rank order (so every
    /// rank's result has the same bits). Blocks of 1024 elements are combined in a local buffer
    /// one input at a time, which keeps the loops vectorizable and lets `output` be an input.
    private func combine<T: BinaryFloatingPoint>(_ inputs: [UnsafePointer<T>], into output: UnsafeMutablePointer<T>,
                                                 range: Range<Int>, operation: ReduceOperation) {
        let blockSize = 1024
        withUnsafeTemporaryAllocation(of: T.self, capacity: blockSize) { block in
            let block = block.baseAddress!
            for start in stride(from: range.lowerBound, to: range.upperBound, by: blockSize) {
                let n = min(blockSize, range.upperBound - start)
                block.update(from: inputs[0] + start, count: n)
                for input in inputs.dropFirst() {
                    let source = input + start
                    switch operation {
                    case .sum: for i in 0..<n { block[i] += source[i] }
                    case .max: for i in 0..<n { block[i] = Swift.max(block[i], source[i]) }
                    }
                }
                (output + start).update(from: block, count: n)
            }
        }
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
        let inputs = (0..<size).map { UnsafePointer(group.address($0).assumingMemoryBound(to: Float.self)) + rank * count }
        combine(inputs, into: receive, range: 0..<count, operation: .sum)
        group.wait()
    }

    /// Rank r sums block r of every rank's buffer into its own (the only one writing it, and
    /// the only one reading block r of any buffer).
    public func reduceScatterInPlace(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        guard size > 1 else { return }
        group.publish(UnsafeMutableRawPointer(buffer), rank: rank)
        let inputs = (0..<size).map { UnsafePointer(group.address($0).assumingMemoryBound(to: Float.self)) + rank * count }
        combine(inputs, into: buffer + rank * count, range: 0..<count, operation: .sum)
        group.wait()
    }

    /// Each rank copies block q from rank q's buffer, where no one writes it.
    public func allGatherInPlace(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        guard size > 1 else { return }
        group.publish(UnsafeMutableRawPointer(buffer), rank: rank)
        for q in 0..<size where q != rank {
            (buffer + q * count).update(from: group.address(q).assumingMemoryBound(to: Float.self) + q * count, count: count)
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

/// A group's shared table of published addresses and its barrier.
final class ThreadGroup: @unchecked Sendable {
    let members: [Int]
    private let monitor: Monitor
    private var arrived = 0
    private var generation = 0
    /// One slot per rank; each rank writes only its own (raw storage, not an Array, so that
    /// concurrent writers do not touch shared Array state).
    private let addresses: UnsafeMutablePointer<UnsafeMutableRawPointer?>
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
