import Distributed
import FileSupport
import Kernels
import Models
import Optimizer
import Parameters
import Pipeline

/// What one rank of a training run allocates, from the sizes this implementation really
/// allocates (`GPTMemory` for activations and scratch, the parameter layout for weights): the
/// weights and gradients, the Adam moments (a 1/DP shard of them with ZeRO-1, plus its
/// buffers), the whole-model tensor that fresh weights are sliced from at start-up (tensor or
/// pipeline parallelism: one at a time, the largest counted), and the activations of the
/// micro-batches in flight (the schedule's peak) with the shared scratch. The start-up buffers
/// are freed before the optimizer and the activations exist (bf16 and fp16 under ZeRO-1: the
/// optimizer exists at start-up, taking its master shard a tensor at a time, or from a
/// checkpoint's weights read whole).
public struct MemoryRequirement: Sendable, CustomStringConvertible {
    public var weightsAndGradients = 0.0
    public var optimizer = 0.0
    public var initialization = 0.0
    public var activations = 0.0
    public var scratch = 0.0
    /// Micro-batches whose activations are held at once (the schedule's peak on this stage).
    public var microBatchesInFlight = 0

    /// The peak: start-up (weights, gradients, start-up buffers) or a step, whichever is larger.
    public var peak: Double {
        weightsAndGradients + max(initialization, optimizer + activations + scratch)
    }

    public var description: String {
        var parts = ["weights and gradients \(SystemMemory.describe(weightsAndGradients))",
                     "Adam moments \(SystemMemory.describe(optimizer))",
                     "activations \(SystemMemory.describe(activations)) (\(microBatchesInFlight) in flight)",
                     "scratch \(SystemMemory.describe(scratch))"]
        if initialization > 0 { parts.append("at start-up \(SystemMemory.describe(initialization))") }
        return parts.joined(separator: ", ")
    }

    /// The requirement of pipeline stage `stage` of `layout` for `config` with micro-batches of
    /// `microBatchSize` and global batches of up to `globalBatchSize`; `threads` kernel threads.
    public init(config: GPTConfig, layout: RankGrid, stage: Int, microBatchSize: Int, globalBatchSize: Int,
                seqLength: Int, distributedOptimizer: Bool, threads: Int, recomputation: ActivationRecomputation = .none,
                precision: ComputePrecision = .fp32, sequenceParallel: Bool = false, loadsCheckpoint: Bool = false) {
        let t = layout.tensorParallel, p = layout.pipelineParallel, v = layout.virtualStages
        let parameters = Self.parameterCount(config, tensorParallel: t, stage: stage, stages: p)
        weightsAndGradients = 8 * parameters
        let sharded = distributedOptimizer && layout.dataParallel > 1
        if sharded && precision != .fp32 {
            // The optimizer holds the fp32 master weights' shard and the piece of every shard one
            // all-gather moves (the gradients are reduced in place); the model its low-precision copy,
            // the fp32 copy of what it reads in fp32 and the padded fp32 gradients. At start-up
            // the fresh weights come a tensor at a time (sliced from a whole-model tensor under TP
            // or PP); a checkpoint's are read whole for a moment.
            let d = Double(layout.dataParallel)
            let shard = (parameters / d).rounded(.up)
            let gather = min(shard, Double(DistributedOptimizer.masterGatherChunk)) * d
            optimizer = 4 * (2 * shard + shard + gather)
            let readInFP32 = Self.parameterCount(config, tensorParallel: t, stage: stage, stages: p, readInFP32Only: true)
            weightsAndGradients = 4 * shard * d + Double(precision.operandBytes) * parameters + 4 * readInFP32
            let largestTensor = 4 * Double(GPTModel.parameterSpecs(config.oneLayer, tensorParallel: t).map(\.count).max() ?? 0)
            initialization = optimizer + max(Self.wholeTensorBytes(config, layout: layout) + largestTensor,
                                             loadsCheckpoint ? 4 * parameters : 0)
        } else if sharded {
            // The moments' shard: the gradients are reduce-scattered and the weights all-gathered
            // in place, in buffers padded to dp equal shards.
            let shard = (parameters / Double(layout.dataParallel)).rounded(.up)
            optimizer = 4 * 2 * shard
            weightsAndGradients = 8 * shard * Double(layout.dataParallel)
        } else {
            optimizer = 8 * parameters
        }
        if !(sharded && precision != .fp32) {
            // bf16 and fp16 keep a low-precision copy of the weights for the GEMMs.
            weightsAndGradients += Double(precision.operandBytes) * parameters
            initialization = Self.wholeTensorBytes(config, layout: layout)
        }
        let microBatches = max(1, globalBatchSize / (microBatchSize * layout.dataParallel))
        let kind: PipelineScheduleKind = v > 1 ? .interleaved(virtualStages: v) : .oneForwardOneBackward
        if let schedule = try? PipelineSchedule(kind: kind, stages: p, microBatches: microBatches),
           let simulation = try? PipelineSimulation(schedule) {
            microBatchesInFlight = simulation.peakActivations[stage]
        } else {
            microBatchesInFlight = microBatches * v
        }
        let perChunk = config.numLayers / (p * v)
        activations = Double(microBatchesInFlight) * GPTMemory.activationBytes(
            config: config, batch: microBatchSize, seqLength: seqLength, tensorParallel: t, layerCount: perChunk,
            head: stage == p - 1, recomputation: recomputation, precision: precision, sequenceParallel: sequenceParallel)
        scratch = GPTMemory.scratchBytes(config: config, batch: microBatchSize, seqLength: seqLength, tensorParallel: t,
                                         threads: threads, recomputation: recomputation, layersPerChunk: perChunk,
                                         precision: precision, head: stage == p - 1, sequenceParallel: sequenceParallel)
        // The bf16 GEMMs' pooled scratch (oneDNN's scratchpads, the emulation's widened operands).
        if precision == .bf16 { scratch += Double(ScratchPool.idleByteLimit) }
    }

    /// Parameters (floats) of one tensor-parallel rank of pipeline stage `stage`, without
    /// building the layout of every layer.
    /// `readInFP32Only`: only the tensors the model reads in fp32 (`GPTModel.readsInFP32`).
    static func parameterCount(_ config: GPTConfig, tensorParallel t: Int, stage: Int, stages: Int,
                               readInFP32Only: Bool = false) -> Double {
        let one = config.oneLayer
        var embedding = 0.0, positions = 0.0, layer = 0.0, head = 0.0
        for spec in GPTModel.parameterSpecs(one, tensorParallel: t) where !readInFP32Only || GPTModel.readsInFP32(spec.name) {
            let count = Double(spec.shape.reduce(1, *))
            if spec.name == wordEmbeddingName { embedding = count }
            else if spec.name.hasPrefix("embedding.") { positions += count }  // and BERT's token types
            else if spec.name.hasPrefix("decoder.layers.") { layer += count }
            else { head += count }
        }
        var total = Double(config.numLayers / stages) * layer
        if stage == 0 { total += embedding + positions }
        // The head's tensors hold an untied output layer; a tied one is the embedding's copy.
        if stage == stages - 1 {
            total += head + (stage == 0 || config.untieEmbeddingsAndOutputWeights || readInFP32Only ? 0 : embedding)
        }
        return total
    }

    /// The buffer a rank under tensor or pipeline parallelism draws the whole model's fresh
    /// tensors into, one at a time, before slicing its own (`GPTModel.initialize` and
    /// `forEachFreshTensor`): the largest.
    static func wholeTensorBytes(_ config: GPTConfig, layout: RankGrid) -> Double {
        guard layout.tensorParallel > 1 || layout.pipelineParallel > 1 else { return 0 }
        return 4 * Double(GPTModel.parameterSpecs(config.oneLayer).map(\.count).max() ?? 0)
    }

    /// The divisors of `n`, ascending.
    static func divisors(of n: Int) -> [Int] {
        var small = [Int](), large = [Int]()
        var d = 1
        while d * d <= n {
            if n % d == 0 {
                small.append(d)
                if d != n / d { large.append(n / d) }
            }
            d += 1
        }
        return small + large.reversed()
    }
}

extension GPTConfig {
    /// The same model with one layer (to count a layer's tensors without laying out them all).
    var oneLayer: GPTConfig {
        var one = self
        one.numLayers = 1
        return one
    }
}
