import Distributed
import Kernels
import Parameters

/// ZeRO stage 1 over a data-parallel group (Megatron's `--use-distributed-optimizer`): the flat
/// parameter buffer is cut into `dp` equal contiguous shards (padded at the end); each rank keeps
/// Adam moments for its shard only. A step reduce-scatters the gradients in place (each rank's
/// shard of its own gradient buffer receives the sum of that shard over the group, as Megatron's
/// reduce-scatter into a view of its grad buffer), updates its shard of the weights, and
/// all-gathers the weights in place so every rank holds the whole updated model again: no shard
/// buffer besides the moments (and the master weights when it holds them).
///
/// In bf16 and fp16 it can hold the fp32 master weights itself (`masters`, this rank's shard
/// only: Megatron's 6 + 12/d bytes per parameter, the model keeping the 2-byte copy and the
/// fp32 gradients): then an update all-gathers the updated shards piece by piece and hands the
/// fp32 values to the model's receiver, and the model never holds them whole.
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
    /// The fp32 master weights of this rank's shard, when the optimizer holds them (nil: the
    /// model's fp32 weights are the weights updated).
    public let masters: FloatBuffer?
    /// Where the updated master weights go, range by range (`values`, layout start, count).
    private let receiver: ((UnsafePointer<Float>, Int, Int) -> Void)?
    /// Floats of each shard that one all-gather of the master weights moves.
    public static let masterGatherChunk = 1 << 18
    private lazy var masterStaging = FloatBuffer(count: min(shardSize, Self.masterGatherChunk) * data.size)

    /// Moments for this rank's shard. With a `masterWeightsReceiver` it also keeps the shard's
    /// fp32 master weights (zero until given: `storeMasters`, `restoreMasters`) and after each
    /// update hands every rank's updated values to the receiver (`update`).
    public init(layout: ParameterLayout, hyperparameters: AdamW.Hyperparameters, data: Communicator,
                masterWeightsReceiver: ((UnsafePointer<Float>, Int, Int) -> Void)? = nil) {
        let holdsMasterWeights = masterWeightsReceiver != nil
        receiver = masterWeightsReceiver
        self.hyperparameters = hyperparameters
        self.data = data
        self.layout = layout
        shardSize = (layout.totalCount + data.size - 1) / data.size
        m = FloatBuffer(count: shardSize)
        v = FloatBuffer(count: shardSize)
        masters = holdsMasterWeights ? FloatBuffer(count: shardSize) : nil
    }

    /// Bytes of the buffers it keeps from step to step: the moments' shard and, holding the master
    /// weights, their shard and the staging of one all-gather piece (allocated here if not yet).
    public var allocatedBytes: Int {
        4 * (m.count + v.count + (masters.map { $0.count + masterStaging.count } ?? 0))
    }

    /// Keeps the part of the layout range `start ..< start + count` (whose fp32 values are
    /// `values`) that lies in this rank's shard as its master weights (the fresh weights,
    /// delivered tensor by tensor).
    public func storeMasters(_ values: UnsafePointer<Float>, start: Int, count: Int) {
        guard let masters else { preconditionFailure("this optimizer holds no master weights") }
        let range = shardRange
        let from = max(start, range.lowerBound), to = min(start + count, range.upperBound)
        if from < to { (masters.pointer + (from - range.lowerBound)).update(from: values + (from - start), count: to - from) }
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

    /// Sets this rank's master weights from whole fp32 weights (of `layout.totalCount` values):
    /// at the start, and when resuming from a checkpoint.
    public func restoreMasters(from whole: UnsafePointer<Float>) {
        masters?.zero()
        storeMasters(whole, start: 0, count: layout.totalCount)
    }

    /// The first of this rank's master weights that is NaN or infinite, as the tensor's name,
    /// the element's index in the tensor and its value; nil when all are finite.
    public func firstNonFiniteMaster() -> (name: String, index: Int, value: Float)? {
        guard let masters else { preconditionFailure("this optimizer holds no master weights") }
        var found: (name: String, index: Int, value: Float)?
        forEachSegment { index, flat, local, count in
            guard found == nil else { return }
            let values = UnsafeBufferPointer(start: masters.pointer + local, count: count)
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                found = (layout.specs[index].name, flat - layout.offsets[index] + bad, values[bad])
            }
        }
        return found
    }

    /// Reduce-scatters `grads` in place (this rank's shard of the buffer gets the sum over the
    /// group; the rest of it is left undefined); returns the sum of squares of the shard, each
    /// element weighted by `weight(index of tensor)` (for counting tensor-parallel replicated
    /// parameters once).
    public func reduceScatterGradients(_ grads: ParameterStore, weight: (Int) -> Double) -> Double {
        data.reduceScatterInPlace(padded(grads), count: shardSize)
        let shard = reducedShard(of: grads)
        var squares = 0.0
        forEachSegment { index, _, local, count in
            let w = weight(index)
            guard w != 0 else { return }
            squares += w * SumOfSquares.of(shard + local, count: count)
        }
        return squares
    }

    /// Updates this rank's shard of `params` from the gradients `reduceScatterGradients` reduced
    /// in `grads` times `gradScale`, then all-gathers the whole buffer.
    func updateWeights(params: ParameterStore, grads: ParameterStore, gradScale: Float) {
        precondition(masters == nil, "an optimizer holding the master weights updates them (updateMasters)")
        step += 1
        let shard = reducedShard(of: grads)
        forEachSegment { index, flat, local, count in
            AdamW.update(params: params.buffer.pointer + flat, grads: shard + local,
                         m: m.pointer + local, v: v.pointer + local, count: count, step: step,
                         hyperparameters: hyperparameters, decay: layout.specs[index].weightDecay, gradScale: gradScale)
        }
        data.allGatherInPlace(padded(params), count: shardSize)
    }

    /// `store`'s buffer, which the collectives use whole: it must hold `dp` equal shards (a model
    /// built with `shardedOver: dp` pads its weights and gradients; the padding stays zero).
    private func padded(_ store: ParameterStore) -> UnsafeMutablePointer<Float> {
        precondition(store.buffer.count >= shardSize * data.size,
                     "the distributed optimizer needs stores padded to \(data.size) shards of \(shardSize) floats")
        return store.buffer.pointer
    }

    /// Where this rank's reduced gradients lie after `reduceScatterGradients(grads)`: its block
    /// of the buffer (offset 0 is the shard's first element).
    private func reducedShard(of grads: ParameterStore) -> UnsafeMutablePointer<Float> {
        padded(grads) + data.rank * shardSize
    }

    /// Updates this rank's shard of the master weights from the reduced gradients times
    /// `gradScale`, then all-gathers the shards and hands the receiver every rank's updated
    /// values of the layout range `start ..< start + count`, a piece at a time (so no rank ever
    /// holds the whole fp32 model).
    func updateMasters(grads: ParameterStore, gradScale: Float) {
        guard let masters, let receiver else { preconditionFailure("this optimizer holds no master weights") }
        step += 1
        let shard = reducedShard(of: grads)
        forEachSegment { index, _, local, count in
            AdamW.update(params: masters.pointer + local, grads: shard + local,
                         m: m.pointer + local, v: v.pointer + local, count: count, step: step,
                         hyperparameters: hyperparameters, decay: layout.specs[index].weightDecay, gradScale: gradScale)
        }
        gatherMasters(deliver: receiver)
    }

    /// Collective over the group: every rank's master weights, handed to `deliver` a layout range
    /// at a time, as after an update.
    public func gatherMasters(deliver: (UnsafePointer<Float>, Int, Int) -> Void) {
        guard let masters else { preconditionFailure("this optimizer holds no master weights") }
        let chunk = min(shardSize, Self.masterGatherChunk)
        for first in stride(from: 0, to: shardSize, by: chunk) {
            let count = min(chunk, shardSize - first)
            data.allGather(send: masters.pointer + first, receive: masterStaging.pointer, count: count)
            for rank in 0..<data.size {
                let start = rank * shardSize + first
                let real = min(count, layout.totalCount - start)  // the last shard's padding is dropped
                if real > 0 { deliver(masterStaging.pointer + rank * count, start, real) }
            }
        }
    }

    /// Collective over the group: the whole master weights in a new store on the ranks that
    /// `keep` them (nil on the others, which only take part).
    public func gatheredMasters(keep: Bool) -> ParameterStore? {
        let whole = keep ? ParameterStore(layout: layout) : nil
        gatherMasters { values, start, count in whole.map { ($0.buffer.pointer + start).update(from: values, count: count) } }
        return whole
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
