import Kernels
import Models

/// The activation memory of `--cluster local` (this binary's implementation profile): the
/// buffers `GPTActivations` and `GPTScratch` allocate (`GPTMemory`), for the first pipeline
/// stage's layers, with the run's precision, recomputation and sequence parallelism, not
/// Megatron's GPU table.
enum LocalActivations {
    /// Bytes of `inFlight` micro-batches' saved activations of the first stage plus the shared
    /// scratch (and, in bf16, the GEMMs' pooled scratch), for a rank with `threads` kernel threads.
    static func bytes(config: GPTConfig, layout: TrainingLayout, inFlight: Double, threads: Int) -> Double {
        let t = layout.tensorParallel, p = layout.pipelineParallel, v = layout.virtualStages
        let precision = ComputePrecision(rawValue: layout.precision.rawValue) ?? .fp32
        let recomputation: ActivationRecomputation = switch layout.recompute {
        case .none: .none
        case .selective: ActivationRecomputation(granularity: .selective)
        case .full: ActivationRecomputation(granularity: .full, method: .uniform, numLayers: 1)
        }
        let s = config.maxPositionEmbeddings, b = layout.microBatchSize
        let perMicroBatch = GPTMemory.activationBytes(config: config, batch: b, seqLength: s, tensorParallel: t,
                                                      layerCount: config.numLayers / p, head: p == 1,
                                                      recomputation: recomputation, precision: precision,
                                                      sequenceParallel: layout.sequenceParallel)
        let scratch = GPTMemory.scratchBytes(config: config, batch: b, seqLength: s, tensorParallel: t,
                                             threads: threads, recomputation: recomputation,
                                             layersPerChunk: config.numLayers / (p * v), precision: precision, head: p == 1,
                                             sequenceParallel: layout.sequenceParallel)
            + (precision == .bf16 ? Double(ScratchPool.idleByteLimit) : 0)
        return inFlight * perMicroBatch + scratch
    }
}
