import Distributed
import Kernels
import Parameters

/// What the training step needs of an optimizer, so the plain AdamW (every data-parallel rank
/// updates the whole local model) and the distributed optimizer (ZeRO-1: each rank updates its
/// shard) are one step: reduce the gradients over the data-parallel group, then update.
public protocol ModelOptimizer: AnyObject {
    /// AdamW's settings; the step sets the learning rate before each update.
    var hyperparameters: AdamW.Hyperparameters { get set }
    /// Updates completed (Adam's bias-correction step).
    var step: Int { get }

    /// Sums `grads` over the data-parallel group `data` into what `update` reads, and returns
    /// the sum of squares of the reduced gradients this rank is responsible for, tensor `i`
    /// weighted by `weight(i)` (0 for a copy counted elsewhere), summed over the group.
    /// `bucketSize` is the element count of one all-reduce (Megatron's `--ddp-bucket-size`).
    func reduceGradients(_ grads: ParameterStore, data: Communicator?, bucketSize: Int,
                         weight: (Int) -> Double) -> Double

    /// Applies one update to `params` from the reduced gradients, each multiplied by
    /// `gradScale` first; afterwards every data-parallel rank holds the same weights.
    func update(params: ParameterStore, grads: ParameterStore, gradScale: Float)
}

extension AdamWOptimizer: ModelOptimizer {
    /// All-reduces the whole gradient buffer in buckets, one after another, then sums the squares.
    public func reduceGradients(_ grads: ParameterStore, data: Communicator?, bucketSize: Int,
                                weight: (Int) -> Double) -> Double {
        if let data {
            let total = grads.layout.totalCount
            for start in stride(from: 0, to: total, by: bucketSize) {
                data.allReduce(grads.buffer.pointer + start, count: min(bucketSize, total - start), operation: .sum)
            }
        }
        return GradientClipping.squares(grads, weight: weight)
    }
}

extension DistributedOptimizer: ModelOptimizer {
    /// Reduce-scatters the gradients into this rank's shard (`data` must be the optimizer's
    /// group; buckets do not apply) and sums the shards' squares over the group.
    public func reduceGradients(_ grads: ParameterStore, data: Communicator?, bucketSize: Int,
                                weight: (Int) -> Double) -> Double {
        precondition(data === self.data, "the distributed optimizer reduces over its own data-parallel group")
        let squares = reduceScatterGradients(grads, weight: weight)
        return self.data.allReduce([squares], operation: .sum)[0]
    }

    /// Updates this rank's shard from the reduce-scattered gradients and all-gathers the weights
    /// (into `params`, or, holding the master weights, to its receiver: `params` is not touched).
    public func update(params: ParameterStore, grads: ParameterStore, gradScale: Float) {
        if masters != nil { updateMasters(grads: grads, gradScale: gradScale) } else { updateWeights(params: params, grads: grads, gradScale: gradScale) }
    }
}
