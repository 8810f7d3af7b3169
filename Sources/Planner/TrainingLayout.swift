import Distributed
import Models

/// How a training run is spread over devices (Megatron's flags).
public struct TrainingLayout: Sendable, Equatable {
    /// `--tensor-model-parallel-size`.
    public var tensorParallel = 1
    /// `--pipeline-model-parallel-size`.
    public var pipelineParallel = 1
    /// Data-parallel replicas (derived from the cluster when not given).
    public var dataParallel = 1
    /// Model chunks per pipeline stage (interleaved 1F1B); 1 without interleaving.
    public var virtualStages = 1
    public var microBatchSize = 1
    public var globalBatchSize = 1
    public var sequenceParallel = false
    public var recompute = CostModel.Recompute.none
    public var distributedOptimizer = false
    public var precision = MemoryModel.Precision.bf16
    /// Kernel fusions, pipeline scatter-gather, attention kernel and overlap (GPU time model).
    public var software = SoftwareOptions()
    /// Layers of the first and the last pipeline stage when they differ from the rest
    /// (`--decoder-first-pipeline-num-layers`, `--decoder-last-pipeline-num-layers`); the other
    /// stages share the remaining layers evenly. nil: every stage holds `layers / p`.
    public var firstStageLayers: Int?
    public var lastStageLayers: Int?

    public init() {}

    /// Devices the layout uses.
    public var devices: Int { tensorParallel * pipelineParallel * dataParallel }

    /// Micro-batches per pipeline per iteration.
    public var microBatches: Int { globalBatchSize / (microBatchSize * dataParallel) }

    /// Checks that the layout divides the model and the batch (`RankGrid`'s rules, the same
    /// training checks); the error names the flag.
    public func validate(for config: GPTConfig) throws(PlanError) {
        guard microBatchSize >= 1, globalBatchSize >= 1 else {
            throw .invalid("parallel sizes and batch sizes must be at least 1")
        }
        let stages = try stageLayers(config)
        do {
            let grid = try RankGrid(tensorParallel: tensorParallel, dataParallel: dataParallel,
                                    pipelineParallel: pipelineParallel, virtualStages: virtualStages)
            try grid.validate(heads: config.numAttentionHeads, hidden: config.hiddenSize, paddedVocabulary: nil,
                              layers: isUneven ? stages.middle * pipelineParallel : config.numLayers, globalBatchSize: globalBatchSize,
                              microBatchSize: microBatchSize)
        } catch {
            throw .invalid(error.description)
        }
        guard !sequenceParallel || tensorParallel > 1 else { throw .invalid("--sequence-parallel needs --tensor-model-parallel-size > 1") }
    }

    /// Whether the first or last stage holds its own number of layers.
    public var isUneven: Bool { firstStageLayers != nil || lastStageLayers != nil }

    /// Layers of the first, a middle and the last pipeline stage; an uneven split that does not
    /// add up, or leaves the middle stages unequal, is an error naming the flags.
    public func stageLayers(_ config: GPTConfig) throws(PlanError) -> (first: Int, middle: Int, last: Int) {
        let p = pipelineParallel, layers = config.numLayers
        guard isUneven else {
            return (layers / max(p, 1), layers / max(p, 1), layers / max(p, 1))
        }
        let flags = "--decoder-first-pipeline-num-layers / --decoder-last-pipeline-num-layers"
        guard p >= 2, virtualStages == 1 else { throw .invalid("\(flags) need --pipeline-model-parallel-size >= 2 and no interleaving") }
        guard (firstStageLayers ?? 1) >= 1, (lastStageLayers ?? 1) >= 1 else { throw .invalid("\(flags) must be at least 1") }
        let others = p - (firstStageLayers == nil ? 0 : 1) - (lastStageLayers == nil ? 0 : 1)
        let remaining = layers - (firstStageLayers ?? 0) - (lastStageLayers ?? 0)
        guard remaining >= 0, others == 0 ? remaining == 0 : remaining % others == 0 && remaining > 0 else {
            throw .invalid("\(flags): the other \(others) stages cannot share the remaining \(remaining) of --num-layers \(layers) evenly")
        }
        let middle = others == 0 ? 0 : remaining / others
        return (firstStageLayers ?? middle, middle, lastStageLayers ?? middle)
    }
}
