import Distributed

/// Megatron-LM's two conjugate operators over a tensor-parallel group (Shoeybi et al. 2019,
/// section 3, Figure 3), named as in megatron-core's `tensor_parallel/mappings.py`.
///
/// A layer enters the tensor-parallel region with `f` (every rank reads the same full input,
/// so the forward is the identity and the backward sums the input gradients of the ranks) and
/// leaves it with `g` (every rank holds a partial sum of the output, so the forward sums them
/// and the backward is the identity). A transformer layer has two f/g pairs in the forward and
/// two in the backward: one around the attention, one around the MLP.
///
/// With sequence parallelism (Korthikanti et al. 2022, section 4.2.2) the LayerNorms, residual
/// additions and the embedding output outside the region hold `1/t` of the tokens on each rank,
/// and the pair becomes g (all-gather along the sequence going in, reduce-scatter of the input
/// gradient coming back) and g-bar (reduce-scatter going out, all-gather of the output gradient
/// coming back): the same bytes as the two all-reduces, which each is the sum of. `enterRegion`
/// and `leaveRegion` (and their backwards) are the pair in whichever form the run uses; a
/// layer calls those.
///
/// Communication happens only through these calls, so the block reads as the paper's figure.
/// With a group of one rank (or none) every operator is the identity.
public struct TensorParallelRegion {
    /// The tensor-parallel group (nil: the whole model on this rank).
    public let group: Communicator?
    /// Whether the regions outside the tensor-parallel layers are split along the sequence
    /// (`--sequence-parallel`; never with a group of one rank).
    public let sequenceParallel: Bool

    /// Operators over `group`, with the sequence split over it when `sequenceParallel` and the
    /// group has more than one rank.
    public init(group: Communicator?, sequenceParallel: Bool = false) {
        self.group = group
        self.sequenceParallel = sequenceParallel && (group?.size ?? 1) > 1
    }

    /// The same group without sequence parallelism (decoding, which runs one token at a time).
    public var withoutSequenceParallel: TensorParallelRegion { TensorParallelRegion(group: group) }

    /// Rows (tokens) of `rows` this rank holds outside the region: `rows / t` with sequence
    /// parallelism (rank r holds the r-th contiguous block), all of them otherwise.
    public func localRows(_ rows: Int) -> Int { sequenceParallel ? rows / size : rows }

    /// The first of `rows` this rank holds outside the region (0 without sequence parallelism).
    public func firstLocalRow(_ rows: Int) -> Int { sequenceParallel ? rank * localRows(rows) : 0 }

    /// Ranks in the group (t).
    public var size: Int { group?.size ?? 1 }
    /// This rank's index in the group.
    public var rank: Int { group?.rank ?? 0 }
    /// Whether this rank adds the biases that follow a row-parallel product (rank 0 only, so the
    /// sum over the group counts them once).
    public var addsReplicatedBias: Bool { rank == 0 }

    /// f, forward: the identity. Stated at the call site so each layer's entry into the region
    /// is visible; costs nothing.
    @inline(__always)
    public func copyToRegion(_ input: UnsafePointer<Float>) -> UnsafePointer<Float> { input }

    /// f, backward: sums the input gradient `gradient` (`count` elements) over the group, in
    /// place. Each rank's column-parallel weights give part of the gradient of the shared input.
    public func copyToRegionBackward(_ gradient: UnsafeMutablePointer<Float>, count: Int) {
        group?.allReduce(gradient, count: count, operation: .sum)
    }

    /// g, forward: sums the partial outputs `partial` (`count` elements) of a row-parallel
    /// product (or of a vocabulary-parallel embedding) over the group, in place.
    public func reduceFromRegion(_ partial: UnsafeMutablePointer<Float>, count: Int) {
        group?.allReduce(partial, count: count, operation: .sum)
    }

    /// g, backward: the identity (every rank already holds the whole output gradient). Stated at
    /// the call site for symmetry with the forward; costs nothing.
    @inline(__always)
    public func reduceFromRegionBackward(_ gradient: UnsafePointer<Float>) -> UnsafePointer<Float> { gradient }

    // MARK: The pair as the run uses it (f/g, or with sequence parallelism g/g-bar).

    /// Enters the region with `input` (`[localRows(rows), channels]`, a LayerNorm's output): f
    /// returns `input` itself; with sequence parallelism the ranks' blocks are all-gathered into
    /// `gathered` (`[rows, channels]`), which is returned.
    public func enterRegion(_ input: UnsafePointer<Float>, gatheringInto gathered: UnsafeMutablePointer<Float>?,
                            rows: Int, channels: Int) -> UnsafePointer<Float> {
        guard sequenceParallel, let group, let gathered else { return copyToRegion(input) }
        group.allGather(send: input, receive: gathered, count: localRows(rows) * channels)
        return UnsafePointer(gathered)
    }

    /// `enterRegion`'s backward on the input gradient `gradient` (`[rows, channels]`, this rank's
    /// part): f's all-reduce in place, returning `gradient`; with sequence parallelism a
    /// reduce-scatter into `shard` (`[localRows(rows), channels]`), which is returned.
    public func enterRegionBackward(_ gradient: UnsafeMutablePointer<Float>, scatteringInto shard: UnsafeMutablePointer<Float>?,
                                    rows: Int, channels: Int) -> UnsafePointer<Float> {
        guard sequenceParallel, let group, let shard else {
            copyToRegionBackward(gradient, count: rows * channels)
            return UnsafePointer(gradient)
        }
        group.reduceScatter(send: gradient, receive: shard, count: localRows(rows) * channels)
        return UnsafePointer(shard)
    }

    /// Leaves the region: the partial sums `partial` (`[rows, channels]`, a row-parallel product's
    /// or the vocabulary-parallel embedding's) are summed over the group into `output`. g
    /// all-reduces in place (`output` must be `partial`); with sequence parallelism this rank's
    /// block of rows is reduce-scattered into `output` (`[localRows(rows), channels]`).
    public func leaveRegion(_ partial: UnsafeMutablePointer<Float>, into output: UnsafeMutablePointer<Float>,
                            rows: Int, channels: Int) {
        guard sequenceParallel, let group else {
            precondition(partial == output, "g sums in place")
            reduceFromRegion(partial, count: rows * channels)
            return
        }
        group.reduceScatter(send: partial, receive: output, count: localRows(rows) * channels)
    }

    /// `leaveRegion`'s backward on the output gradient `gradient`
    /// (`[localRows(rows), channels]`): g's identity, returning `gradient`; with sequence
    /// parallelism the blocks are all-gathered into `gathered` (`[rows, channels]`), returned.
    public func leaveRegionBackward(_ gradient: UnsafePointer<Float>, gatheringInto gathered: UnsafeMutablePointer<Float>?,
                                    rows: Int, channels: Int) -> UnsafePointer<Float> {
        guard sequenceParallel, let group, let gathered else { return reduceFromRegionBackward(gradient) }
        group.allGather(send: gradient, receive: gathered, count: localRows(rows) * channels)
        return UnsafePointer(gathered)
    }
}
