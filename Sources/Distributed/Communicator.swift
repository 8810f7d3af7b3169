/// Reduction operators of `allReduce`.
public enum ReduceOperation: Sendable {
    case sum, max
}

/// Collective and point-to-point communication among the ranks of a group, the operations
/// Megatron needs from `torch.distributed`. Every rank of the group must make the same
/// collective calls in the same order. Every rank of a reduction gets the same bits (the thread
/// backend adds in rank order; Open MPI's algorithms give all ranks one result, in its own order).
public protocol Communicator: AnyObject {
    /// This rank's index in the group, `0..<size`.
    var rank: Int { get }
    /// Number of ranks in the group.
    var size: Int { get }
    /// Global ranks of the group's members, in group order.
    var members: [Int] { get }

    /// Replaces `buffer` on every rank with the element-wise reduction over all ranks.
    func allReduce(_ buffer: UnsafeMutablePointer<Float>, count: Int, operation: ReduceOperation)
    /// The same for Float64 values.
    func allReduce(_ buffer: UnsafeMutablePointer<Double>, count: Int, operation: ReduceOperation)
    /// `receive` (`size * count`) gets every rank's `send` (`count`), in rank order.
    func allGather(send: UnsafePointer<Float>, receive: UnsafeMutablePointer<Float>, count: Int)
    /// Sums `send` (`size * count`) over the ranks; rank r receives block r (`count`).
    func reduceScatter(send: UnsafePointer<Float>, receive: UnsafeMutablePointer<Float>, count: Int)
    /// `reduceScatter` within one buffer (`size * count`): afterwards rank r's block r
    /// (`buffer + r * count`) holds the sum of every rank's block r; its other blocks hold
    /// anything. (ZeRO-1's reduced-gradient shard, with no buffer of its own.)
    func reduceScatterInPlace(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    /// `allGather` within one buffer (`size * count`): rank r's block r (`buffer + r * count`)
    /// is copied into block r of every rank's buffer.
    func allGatherInPlace(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    /// Copies `root`'s `buffer` to every rank.
    func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int)
    /// Sends `count` floats to group rank `destination` (buffered: returns without waiting).
    func send(_ buffer: UnsafePointer<Float>, count: Int, to destination: Int, tag: Int)
    /// Receives `count` floats from group rank `source` with the same tag.
    func receive(_ buffer: UnsafeMutablePointer<Float>, count: Int, from source: Int, tag: Int)
    /// Returns when every rank has called it.
    func barrier()
    /// Splits the group like `MPI_Comm_split`: ranks passing the same `color` form a new group,
    /// ordered by `key` then rank. Collective over this group.
    func split(color: Int, key: Int) -> Communicator
}

extension Communicator {
    /// All-reduces a few Float64 values (norms, loss sums).
    public func allReduce(_ values: [Double], operation: ReduceOperation) -> [Double] {
        var values = values
        values.withUnsafeMutableBufferPointer { allReduce($0.baseAddress!, count: $0.count, operation: operation) }
        return values
    }
}
