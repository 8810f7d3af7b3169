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
        do {
            let grid = try RankGrid(tensorParallel: tensorParallel, dataParallel: dataParallel,
                                    pipelineParallel: pipelineParallel, virtualStages: virtualStages)
            try grid.validate(heads: config.numAttentionHeads, hidden: config.hiddenSize, paddedVocabulary: nil,
                              layers: config.numLayers, globalBatchSize: globalBatchSize, microBatchSize: microBatchSize)
        } catch {
            throw .invalid(error.description)
        }
        guard !sequenceParallel || tensorParallel > 1 else { throw .invalid("--sequence-parallel needs --tensor-model-parallel-size > 1") }
    }
}
