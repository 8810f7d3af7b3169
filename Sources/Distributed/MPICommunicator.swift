import CMPI
#if canImport(Glibc)
import Glibc
#endif

/// Ranks as processes started by `mpirun` (or srun), communicating through Open MPI. Every
/// operation is the matching MPI call on this group's communicator; only the main thread calls
/// MPI. Sends are buffered like the thread backend's: the data is copied and sent with
/// `MPI_Isend`, and finished sends are reaped on later calls.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    public let members: [Int]
    let communicator: MPI_Comm
    private var pendingSends: [(request: MPI_Request?, data: UnsafeMutablePointer<Float>)] = []
    /// Groups split from this one (their sends are flushed with this one's).
    private var children: [MPICommunicator] = []

    private init(communicator: MPI_Comm, members: [Int]) {
        self.communicator = communicator
        var value: Int32 = 0
        MPI_Comm_rank(communicator, &value)
        rank = Int(value)
        MPI_Comm_size(communicator, &value)
        size = Int(value)
        self.members = members
    }

    /// Whether this process was started by an MPI launcher (Open MPI's mpirun, PMIx or PMI,
    /// e.g. Slurm's srun), judged from the environment the launcher sets.
    public static var isLaunchedByMPI: Bool {
        ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"].contains { (name: String) in getenv(name) != nil }
    }

    /// The world size the launcher announced in the environment, if any.
    public static var launcherWorldSize: Int? {
        for name in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"] {
            if let text = getenv(name), let value = Int(String(cString: text)) { return value }
        }
        return nil
    }

    /// Initializes MPI (once per process) and returns the world communicator. Fails when the
    /// library sees another world size than the launcher announced (a binary linked against
    /// one MPI and started by another's launcher runs as N separate one-rank jobs).
    public static func world() throws(LayoutError) -> MPICommunicator {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 {
            var provided: Int32 = 0
            MPI_Init_thread(nil, nil, Int32(MPI_THREAD_FUNNELED), &provided)
            atexit { MPICommunicator.finalize() }
        }
        var size: Int32 = 0
        MPI_Comm_size(cmpi_comm_world(), &size)
        let world = MPICommunicator(communicator: cmpi_comm_world(), members: Array(0..<Int(size)))
        if let announced = launcherWorldSize, announced != world.size {
            throw .invalid("the launcher started \(announced) ranks but MPI sees a world of \(world.size): "
                + "start megatron with Open MPI's mpirun (the MPI it was built with)")
        }
        return world
    }

    /// Ends the MPI job of this process (called at exit).
    static func finalize() {
        var initialized: Int32 = 0, finalized: Int32 = 0
        MPI_Initialized(&initialized)
        MPI_Finalized(&finalized)
        if initialized != 0 && finalized == 0 { MPI_Finalize() }
    }

    /// Stops every rank of the job: one rank's failure would otherwise leave the others
    /// waiting in a collective.
    public func abort(code: Int32) -> Never {
        MPI_Abort(cmpi_comm_world(), code)
        exit(code)
    }

    public func allReduce(_ buffer: UnsafeMutablePointer<Float>, count: Int, operation: ReduceOperation) {
        guard size > 1 else { return }
        reapSends()
        MPI_Allreduce(cmpi_in_place(), buffer, mpiCount(count), cmpi_float(), mpiOperation(operation), communicator)
    }

    public func allReduce(_ buffer: UnsafeMutablePointer<Double>, count: Int, operation: ReduceOperation) {
        guard size > 1 else { return }
        reapSends()
        MPI_Allreduce(cmpi_in_place(), buffer, mpiCount(count), cmpi_double(), mpiOperation(operation), communicator)
    }

    public func allGather(send: UnsafePointer<Float>, receive: UnsafeMutablePointer<Float>, count: Int) {
        guard size > 1 else { receive.update(from: send, count: count); return }
        reapSends()
        MPI_Allgather(send, mpiCount(count), cmpi_float(), receive, mpiCount(count), cmpi_float(), communicator)
    }

    public func reduceScatter(send: UnsafePointer<Float>, receive: UnsafeMutablePointer<Float>, count: Int) {
        guard size > 1 else { receive.update(from: send, count: count); return }
        reapSends()
        MPI_Reduce_scatter_block(send, receive, mpiCount(count), cmpi_float(), cmpi_sum(), communicator)
    }

    /// `MPI_Reduce_scatter_block` with `MPI_IN_PLACE` leaves block r's sum at the start of the
    /// buffer: moved to block r.
    public func reduceScatterInPlace(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        guard size > 1 else { return }
        reapSends()
        MPI_Reduce_scatter_block(cmpi_in_place(), buffer, mpiCount(count), cmpi_float(), cmpi_sum(), communicator)
        if rank > 0 { (buffer + rank * count).update(from: buffer, count: count) }
    }

    public func allGatherInPlace(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        guard size > 1 else { return }
        reapSends()
        MPI_Allgather(cmpi_in_place(), 0, cmpi_float(), buffer, mpiCount(count), cmpi_float(), communicator)
    }

    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) {
        guard size > 1 else { return }
        reapSends()
        MPI_Bcast(buffer, mpiCount(count), cmpi_float(), Int32(root), communicator)
    }

    public func send(_ buffer: UnsafePointer<Float>, count: Int, to destination: Int, tag: Int) {
        reapSends()
        let copy = UnsafeMutablePointer<Float>.allocate(capacity: max(1, count))
        copy.update(from: buffer, count: count)
        var request: MPI_Request? = cmpi_request_null()
        MPI_Isend(copy, mpiCount(count), cmpi_float(), Int32(destination), Int32(tag), communicator, &request)
        pendingSends.append((request, copy))
    }

    public func receive(_ buffer: UnsafeMutablePointer<Float>, count: Int, from source: Int, tag: Int) {
        reapSends()
        var status = MPI_Status()
        MPI_Recv(buffer, mpiCount(count), cmpi_float(), Int32(source), Int32(tag), communicator, &status)
        var received: Int32 = 0
        MPI_Get_count(&status, cmpi_float(), &received)
        precondition(Int(received) == count, "received \(received) floats, expected \(count)")
    }

    public func barrier() {
        reapSends()
        MPI_Barrier(communicator)
    }

    public func split(color: Int, key: Int) -> Communicator {
        var child: MPI_Comm? = nil
        MPI_Comm_split(communicator, Int32(color), Int32(key), &child)
        // The members' global ranks, gathered in the new group's order.
        var childSize: Int32 = 0
        MPI_Comm_size(child!, &childSize)
        var globalRank = Int32(members[rank])
        var globals = [Int32](repeating: 0, count: Int(childSize))
        MPI_Allgather(&globalRank, 1, cmpi_int(), &globals, 1, cmpi_int(), child!)
        let group = MPICommunicator(communicator: child!, members: globals.map(Int.init))
        children.append(group)
        return group
    }

    /// Waits for every buffered send of this group and the groups split from it to be delivered.
    public func flushSends() {
        for child in children { child.flushSends() }
        for index in pendingSends.indices {
            MPI_Wait(&pendingSends[index].request, cmpi_status_ignore())
            pendingSends[index].data.deallocate()
        }
        pendingSends.removeAll()
    }

    /// Frees the copies of sends that have completed.
    private func reapSends() {
        var index = 0
        while index < pendingSends.count {
            var done: Int32 = 0
            MPI_Test(&pendingSends[index].request, &done, cmpi_status_ignore())
            if done != 0 {
                pendingSends[index].data.deallocate()
                pendingSends.remove(at: index)
            } else {
                index += 1
            }
        }
    }

    private func mpiOperation(_ operation: ReduceOperation) -> MPI_Op {
        operation == .sum ? cmpi_sum() : cmpi_max()
    }

    private func mpiCount(_ count: Int) -> Int32 {
        precondition(count <= Int(Int32.max), "a message of \(count) elements exceeds MPI's Int32 count")
        return Int32(count)
    }
}
