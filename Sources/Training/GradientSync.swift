import Distributed
import Models
import Optimizer
import Parameters

/// Everything that happens to the gradients between the backward passes and the optimizer:
/// the LayerNorm gradients summed over the tensor-parallel group under sequence parallelism, the
/// tied word embedding's copies summed between the first and last pipeline stage, the
/// data-parallel reduction (the optimizer's: all-reduce in buckets, or reduce-scatter into the
/// ZeRO-1 shards), and the global gradient norm over every model-parallel rank.
struct GradientSync {
    let parallel: ParallelState
    /// Elements per data-parallel all-reduce (`--ddp-bucket-size`).
    let bucketSize: Int

    /// Where `model`'s sequence-parallel LayerNorm gradients are packed for their all-reduce
    /// (nil without sequence parallelism), kept from step to step.
    let sequenceParallelScratch: FloatBuffer?

    /// Megatron's default bucket: `max(40M, 1M x DP)` elements.
    init(parallel: ParallelState, bucketSize: Int?, model: GPTModel) {
        self.parallel = parallel
        self.bucketSize = bucketSize ?? max(40_000_000, 1_000_000 * parallel.dataParallel)
        let count = model.sequenceParallelGradientCount
        sequenceParallelScratch = count > 0 ? FloatBuffer(count: count) : nil
    }

    /// Reduces `model`'s gradients for `optimizer` and returns the global gradient norm of the
    /// data-parallel mean (the gradients stay summed over DP: the optimizer divides through its
    /// gradient scale).
    func synchronize(_ model: GPTModel, optimizer: any ModelOptimizer) -> Double {
        // With sequence parallelism each tensor-parallel rank's LayerNorm gradients cover its own
        // tokens: summed over the group first.
        model.allReduceSequenceParallelGradients(packingInto: sequenceParallelScratch)
        // The last stage's copy of the word embedding (output layer) and the first stage's
        // (input embedding) get the sum of both gradients, so the copies stay equal.
        // (Untied, the output layer is a weight of its own: nothing to sum.)
        if let embedding = parallel.embedding, !model.config.untieEmbeddingsAndOutputWeights,
           let index = model.layout.index(of: wordEmbeddingName) {
            embedding.allReduce(model.grads.pointer(at: index), count: model.layout.specs[index].count, operation: .sum)
        }
        var squares = optimizer.reduceGradients(model.grads, data: parallel.data, bucketSize: bucketSize) {
            model.countsInGradientNorm($0) ? 1 : 0
        }
        if let tensor = parallel.tensor { squares = tensor.allReduce([squares], operation: .sum)[0] }
        if let pipeline = parallel.pipeline { squares = pipeline.allReduce([squares], operation: .sum)[0] }
        return squares.squareRoot() / Double(parallel.dataParallel)
    }
}
