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

    /// Checks that the layout divides the model and the batch; the error names the flag.
    public func validate(for config: GPTConfig) throws(PlanError) {
        let t = tensorParallel, p = pipelineParallel
        guard t >= 1, p >= 1, dataParallel >= 1, virtualStages >= 1, microBatchSize >= 1, globalBatchSize >= 1 else {
            throw .invalid("parallel sizes and batch sizes must be at least 1")
        }
        guard config.numAttentionHeads % t == 0 else {
            throw .invalid("--tensor-model-parallel-size \(t) does not divide --num-attention-heads \(config.numAttentionHeads)")
        }
        guard config.hiddenSize % t == 0 else {
            throw .invalid("--tensor-model-parallel-size \(t) does not divide --hidden-size \(config.hiddenSize)")
        }
        guard config.numLayers % (p * virtualStages) == 0 else {
            throw .invalid("--num-layers \(config.numLayers) does not divide into \(p) pipeline stages x \(virtualStages) virtual stages")
        }
        guard virtualStages == 1 || p > 1 else {
            throw .invalid("--num-layers-per-virtual-pipeline-stage needs --pipeline-model-parallel-size > 1")
        }
        guard globalBatchSize % (microBatchSize * dataParallel) == 0 else {
            throw .invalid("--global-batch-size \(globalBatchSize) is not a multiple of --micro-batch-size \(microBatchSize) x data-parallel size \(dataParallel)")
        }
        guard virtualStages == 1 || microBatches % p == 0 else {
            throw .invalid("interleaved schedules need the micro-batch count \(microBatches) to be a multiple of the pipeline size \(p)")
        }
        guard !sequenceParallel || t > 1 else { throw .invalid("--sequence-parallel needs --tensor-model-parallel-size > 1") }
    }
}
