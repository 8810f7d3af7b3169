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
/// Communication happens only through these calls, so the block reads as the paper's figure.
/// With a group of one rank (or none) every operator is the identity.
public struct TensorParallelRegion {
    /// The tensor-parallel group (nil: the whole model on this rank).
    public let group: Communicator?

    /// Operators over `group`.
    public init(group: Communicator?) { self.group = group }

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
}
