import Models

/// The time of one training iteration of this binary on a CPU, added up from its parts with
/// each part's cost from `KernelTimings` (micro-benchmarks of the same kernels; no constant
/// fitted to whole steps):
///
///     iteration = m x slowest stage's micro-batch (forward + backward)
///               + (p-1)/v x the stages' mean micro-batch (fill and drain)
///               + data-parallel reduction + optimizer step
///
/// A micro-batch of `b s` tokens on a stage: per layer the four linear layers' GEMMs (forward,
/// input and weight gradient, at the throughput measured for their shapes), the attention core,
/// the LayerNorms, GELU, residual additions and bias gradients, in bf16 the rounding of every
/// GEMM operand, and under TP the all-reduces (or SP's gathers and reduce-scatters) between rank
/// threads as memory copies; full recomputation adds a layer's forward, selective the attention
/// core's. The first stage adds the embedding, the last the final LayerNorm, the output layer and
/// the cross-entropy. Neighbouring stages hand each other the `b s h` boundary. Dropout is not
/// counted (runs compared against the model set it to 0).
public struct LocalStepTime: StepTimeParts {
    // `StepTimeParts`: the slowest stage's micro-batch in parts, the stages' mean, per iteration.
    public var gemmSeconds = 0.0, attentionSeconds = 0.0, elementwiseSeconds = 0.0
    public var tensorParallelSeconds = 0.0, pipelineParallelSeconds = 0.0, meanStageSeconds = 0.0
    public var dataParallelSeconds = 0.0, optimizerSeconds = 0.0

    public init(config: GPTConfig, layout: TrainingLayout, timings k: KernelTimings) {
        let t = layout.tensorParallel, p = layout.pipelineParallel, d = layout.dataParallel
        let h = config.hiddenSize, ffn = config.ffnHiddenSize, s = config.maxPositionEmbeddings
        let heads = config.numAttentionHeads, vocab = config.paddedVocabSize
        let n = layout.microBatchSize * s
        let residualRows = Double(layout.sequenceParallel ? n / t : n)
        let reduced = layout.precision != .fp32
        let layers = config.numLayers / p
        // One layer's linear layers: (rows, in, out) on this rank.
        let linears = [(n, h, 3 * h / t), (n, h / t, h), (n, h, ffn / t), (n, ffn / t, h)]

        /// The forward GEMMs of `shapes`, and with `backward` both gradients' as well.
        func gemms(_ shapes: [(Int, Int, Int)], backward: Bool) -> Double {
            shapes.reduce(0) { sum, shape in
                let (m, i, o) = shape
                let forward = k.gemmSeconds("forward", rows: m, inFeatures: i, outFeatures: o)
                guard backward else { return sum + forward }
                return sum + forward + k.gemmSeconds("inputGradient", rows: m, inFeatures: i, outFeatures: o)
                    + k.gemmSeconds("weightGradient", rows: m, inFeatures: i, outFeatures: o)
            }
        }
        /// bf16: a forward rounds each GEMM's input and output; a backward the output gradient
        /// and the input gradient.
        func rounding(_ shapes: [(Int, Int, Int)]) -> Double {
            guard reduced else { return 0 }
            return shapes.reduce(0) { $0 + Double($1.0 * ($1.1 + $1.2)) } * k.perElement(.round)
        }
        let attentionForward = k.attentionSeconds(batchHeads: layout.microBatchSize * heads / t, seqLength: s,
                                                  headDim: h / heads, backward: false)
        let attentionBackward = k.attentionSeconds(batchHeads: layout.microBatchSize * heads / t, seqLength: s,
                                                   headDim: h / heads, backward: true)
        // A layer's memory-bound work: two LayerNorms, GELU, two residual additions, the biases
        // copied into the GEMMs' outputs before they accumulate.
        let biasElements = Double(n * (3 * h / t + h + ffn / t + h))
        let layerForwardElementwise = 2 * residualRows * Double(h) * k.perElement(.layerNormForward)
            + Double(n * ffn / t) * k.perElement(.geluForward) + 2 * residualRows * Double(h) * k.perElement(.residual)
            + biasElements * k.perElement(.copy)
        // Backward: LayerNorms, GELU, the residual stream's gradient additions, bias gradients.
        let layerBackwardElementwise = 2 * residualRows * Double(h) * k.perElement(.layerNormBackward)
            + Double(n * ffn / t) * k.perElement(.geluBackward)
            + (2 * residualRows * Double(h) + biasElements) * k.perElement(.residual)
        // TP: two all-reduces forward and two backward of b s h floats (SP: gathers and
        // reduce-scatters moving the same); each rank reads every rank's part and writes its own.
        let collective = t > 1 ? Double(n * h) * 2 * k.perElement(.copy) : 0

        var perLayerGEMM = gemms(linears, backward: true)
        var perLayerAttention = attentionForward + attentionBackward
        // bf16 keeps a layer's LayerNorm, QKV, attention and fc1 outputs in bf16; the backward
        // widens them back (as costly as rounding).
        let widened = reduced ? (2 * residualRows * Double(h) + Double(n * (4 * h + ffn) / t)) * k.perElement(.round) : 0
        var perLayerElementwise = layerForwardElementwise + layerBackwardElementwise + 2 * rounding(linears) + widened
        var perLayerCollectives = 4 * collective
        switch layout.recompute {
        case .none: break
        case .selective: perLayerAttention += attentionForward
        case .full:
            perLayerGEMM += gemms(linears, backward: false)
            perLayerAttention += attentionForward
            perLayerElementwise += layerForwardElementwise + rounding(linears)
            perLayerCollectives += 2 * collective
        }

        // The first stage's embedding; the last stage's final LayerNorm, output layer and loss.
        let embedding = Double(n * h) * k.perElement(.embedding)
        let outputLayer = [(n, h, vocab / t)]
        let headGEMM = gemms(outputLayer, backward: true)
        let headElementwise = residualRows * Double(h) * (k.perElement(.layerNormForward) + k.perElement(.layerNormBackward))
            + Double(n * vocab / t) * k.perElement(.crossEntropy)
            + (reduced ? Double(n * (2 * h + vocab / t)) * k.perElement(.round) : 0)  // not the logits forward
        let stageLayers = Double(layers)
        let first = stageLayers * (perLayerGEMM + perLayerAttention + perLayerElementwise) + embedding
            + (p == 1 ? headGEMM + headElementwise : 0)
        let last = stageLayers * (perLayerGEMM + perLayerAttention + perLayerElementwise) + headGEMM + headElementwise
        let lastIsSlower = p > 1 && last > first
        gemmSeconds = stageLayers * perLayerGEMM + (p == 1 || lastIsSlower ? headGEMM : 0)
        attentionSeconds = stageLayers * perLayerAttention
        elementwiseSeconds = stageLayers * perLayerElementwise
            + (p == 1 ? embedding + headElementwise : lastIsSlower ? headElementwise : embedding)
        tensorParallelSeconds = stageLayers * perLayerCollectives
        // A boundary sent forward and its gradient back, per neighbour.
        pipelineParallelSeconds = p > 1 ? 2 * Double(layout.virtualStages) * Double(n * h / t) * k.perElement(.copy) : 0
        // The fill and drain go through every stage: with unequal stages (the embedding on the
        // first, the output layer on the last) the bubble is the stages' mean, not the slowest.
        let middle = stageLayers * (perLayerGEMM + perLayerAttention + perLayerElementwise)
        let communication = tensorParallelSeconds + pipelineParallelSeconds
        meanStageSeconds = p == 1 ? first + communication
            : (first + last + Double(p - 2) * middle) / Double(p) + communication

        // Once per iteration: the gradients over DP, their norm and AdamW on what this rank
        // updates, zeroing the gradients, and in bf16 the weights' rounding (or, sharded, their
        // all-gather).
        let parameters = DeviceParameters.perDevice(config: config, layout: layout)
        let sharded = layout.distributedOptimizer && d > 1
        dataParallelSeconds = d > 1 ? parameters * 2 * k.perElement(.copy) * (sharded ? 2 : 1) : 0
        optimizerSeconds = parameters / Double(sharded ? d : 1) * (k.perElement(.adamw) + k.perElement(.gradientNorm))
            + parameters * k.perElement(.copy)
            + (reduced ? parameters * k.perElement(.round) : 0)
    }
}
