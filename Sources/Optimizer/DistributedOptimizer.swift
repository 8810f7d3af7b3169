import Distributed
import Kernels
import Parameters

/// ZeRO stage 1 over a data-parallel group (Megatron's `--use-distributed-optimizer`): the flat
/// parameter buffer is cut into `dp` equal contiguous shards (padded at the end); each rank keeps
/// Adam moments for its shard only. A step reduce-scatters the gradients (each rank receives the
/// sum of its shard over the group), updates its shard of the weights, and all-gathers the
/// weights so every rank holds the whole updated model again.
public final class DistributedOptimizer {
    public var hyperparameters: AdamW.Hyperparameters
    public private(set) var step = 0
    public let data: Communicator
    public let layout: ParameterLayout
    /// Floats per shard (the padded buffer is `shardSize * dp`).
    public let shardSize: Int
    /// First moment of this rank's shard.
    public let m: FloatBuffer
    /// Second moment of this rank's shard.
    public let v: FloatBuffer
    private let gradientShard: FloatBuffer
    private let sendShard: FloatBuffer
    /// A padded copy of the whole buffer, only for stores without room for `dp` equal shards.
    private lazy var staging = FloatBuffer(count: shardSize * data.size)

    public init(layout: ParameterLayout, hyperparameters: AdamW.Hyperparameters, data: Communicator) {
        self.hyperparameters = hyperparameters
        self.data = data
        self.layout = layout
        shardSize = (layout.totalCount + data.size - 1) / data.size
        m = FloatBuffer(count: shardSize)
        v = FloatBuffer(count: shardSize)
        gradientShard = FloatBuffer(count: shardSize)
        sendShard = FloatBuffer(count: shardSize)
    }

    /// This rank's range of the flat buffer (clipped to the real parameters).
    public var shardRange: Range<Int> {
        let start = min(data.rank * shardSize, layout.totalCount)
        return start..<min(start + shardSize, layout.totalCount)
    }

    /// Sets this rank's moments from whole-buffer moments `m` and `v` (of `layout.totalCount`
    /// values) and the completed step count, when resuming from a checkpoint.
    public func restore(m wholeM: UnsafePointer<Float>, v wholeV: UnsafePointer<Float>, step: Int) {
        let range = shardRange
        m.zero()
        v.zero()
        m.pointer.update(from: wholeM + range.lowerBound, count: range.count)
        v.pointer.update(from: wholeV + range.lowerBound, count: range.count)
        self.step = step
    }

    /// Reduce-scatters `grads` (summed over the group) into this rank's gradient shard; returns
    /// the sum of squares of the shard, each element weighted by `weight(index of tensor)`
    /// (for counting tensor-parallel replicated parameters once).
    public func reduceScatterGradients(_ grads: ParameterStore, weight: (Int) -> Double) -> Double {
        let n = layout.totalCount
        if grads.buffer.count >= shardSize * data.size {
            // The store's padding (zero) completes the last shard: no copy.
            data.reduceScatter(send: grads.buffer.pointer, receive: gradientShard.pointer, count: shardSize)
        } else {
            staging.pointer.update(from: grads.buffer.pointer, count: n)
            (staging.pointer + n).update(repeating: 0, count: staging.count - n)
            data.reduceScatter(send: staging.pointer, receive: gradientShard.pointer, count: shardSize)
        }
        var squares = 0.0
        forEachSegment { index, _, local, count in
            let w = weight(index)
            guard w != 0 else { return }
            var partial = 0.0
            for k in 0..<count { let g = Double(gradientShard.pointer[local + k]); partial += g * g }
            squares += w * partial
        }
        return squares
    }

    /// Updates this rank's shard of `params` from the reduced gradients times `gradScale`, then
    /// all-gathers the whole buffer.
    public func update(params: ParameterStore, gradScale: Float) {
        step += 1
        forEachSegment { index, flat, local, count in
            AdamW.update(params: params.buffer.pointer + flat, grads: gradientShard.pointer + local,
                         m: m.pointer + local, v: v.pointer + local, count: count, step: step,
                         hyperparameters: hyperparameters, decay: layout.specs[index].weightDecay, gradScale: gradScale)
        }
        let n = layout.totalCount
        let range = shardRange
        sendShard.pointer.update(from: params.buffer.pointer + range.lowerBound, count: range.count)
        (sendShard.pointer + range.count).update(repeating: 0, count: shardSize - range.count)
        if params.buffer.count >= shardSize * data.size {
            data.allGather(send: sendShard.pointer, receive: params.buffer.pointer, count: shardSize)
        } else {
            data.allGather(send: sendShard.pointer, receive: staging.pointer, count: shardSize)
            params.buffer.pointer.update(from: staging.pointer, count: n)
        }
    }

    /// Calls `body(tensor index, flat offset, offset in the shard, count)` for each part of a
    /// tensor inside this rank's shard.
    private func forEachSegment(_ body: (Int, Int, Int, Int) -> Void) {
        let range = shardRange
        for (index, spec) in layout.specs.enumerated() {
            let start = max(layout.offsets[index], range.lowerBound)
            let end = min(layout.offsets[index] + spec.count, range.upperBound)
            if start < end { body(index, start, start - range.lowerBound, end - start) }
        }
    }
}
