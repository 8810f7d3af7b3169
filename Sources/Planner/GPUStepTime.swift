import Models

/// The time of one Megatron-LM training iteration on a GPU cluster, added up from its parts, each
/// costed by `GPUKernelCosts` (tile waves and rooflines from datasheet figures and published
/// micro-benchmarks) and `CommunicationModel` (rings at the measured collective bandwidth). No
/// constant is fitted to a whole step; the software is described by `SoftwareOptions`.
///
///     iteration = m x the slowest stage's micro-batch + (p-1)/v x the stages' mean micro-batch
///               + exposed data-parallel communication + optimizer step
///
/// A micro-batch of `n = b s` tokens per layer, on one TP rank (`r` = the residual width a rank
/// touches: `h`, or `h/t` with SP; `e` = bytes of an activation, masks 1 byte):
/// - GEMMs: QKV, projection, fc1 and fc2 forward, and each one's input and weight gradient;
/// - the attention core over `b a/t` heads: the scores and context batched GEMMs (four in the
///   backward) and the `s x s` scores' memory traffic: fused scale-mask-softmax 2e and dropout
///   2e+1 bytes per score forward, 5e+1 backward (unfused: 8e+1 and 9e+1); with FlashAttention
///   instead `4 b a s^2 d / t` FLOPs forward and 2.5x that backward (causal: half) at the
///   kernel's published efficiency, and no score traffic;
/// - memory-bound kernels, bytes per token: two LayerNorms `2 x 2e r` forward and `2 x 3e r`
///   backward, the QKV bias `2e 3h/t` forward and `e 3h/t` backward, two bias-dropout-adds
///   `(3e+1) r` forward (unfused `7e+1`) and `(6e+1) r` backward, bias-GELU `2e 4h/t` forward
///   (unfused `4e`) and `4e 4h/t` backward; without gradient-accumulation fusion the layer's
///   `12 h^2 / t` weight gradients added into the fp32 buffer (10 bytes each) per micro-batch;
/// - TP: four all-reduces of `n h e` (SP: all-gathers and reduce-scatters of the same volume,
///   and the backward's second all-gather of the QKV and fc1 inputs), not overlapped (Megatron
///   runs the column-parallel backward's collective beside the weight-gradient GEMM, whose SMs
///   NCCL then shares: counted in full here); full recomputation adds a layer's forward and its two all-reduces, selective
///   the attention core's forward;
/// - PP: a boundary forward and its gradient back per chunk, `n h e / t` per rank over the
///   network and then an all-gather inside the node (scatter-gather; SP sends its slice and
///   gathers nothing), or `n h e` from every rank.
/// The first stage adds the embedding, the last the final LayerNorm, the output layer and the
/// vocabulary-parallel cross-entropy (8 fp32 passes over the logits, forward and backward).
/// Left out: the TP collectives around the embedding and the output layer, the cross-entropy's
/// small all-reduces, the word-embedding gradient's all-reduce between the first and last
/// stages, and without gradient-accumulation fusion the embedding's fp32 gradient addition.
/// With FlashAttention, selective recomputation adds nothing (its backward recomputes already).
public struct GPUStepTime: StepTimeParts {
    // `StepTimeParts`: the slowest stage's micro-batch in parts, the stages' mean, per iteration.
    public var gemmSeconds = 0.0, attentionSeconds = 0.0, elementwiseSeconds = 0.0
    public var tensorParallelSeconds = 0.0, pipelineParallelSeconds = 0.0, meanStageSeconds = 0.0
    public var dataParallelSeconds = 0.0, optimizerSeconds = 0.0
    /// The backward's share of the slowest stage's micro-batch (what `--overlap-grad-reduce`
    /// can hide the gradient reduction behind) and the forward's (for `--overlap-param-gather`).
    public var backwardSeconds = 0.0
    public var forwardSeconds = 0.0

    public init(config: GPTConfig, layout: TrainingLayout, cluster: ClusterSpec, software: SoftwareOptions) {
        let kernels = GPUKernelCosts(cluster: cluster, precision: layout.precision)
        let comm = CommunicationModel(cluster: cluster)
        let t = layout.tensorParallel, p = layout.pipelineParallel, d = layout.dataParallel
        let h = config.hiddenSize, ffn = config.ffnHiddenSize, s = config.maxPositionEmbeddings
        let heads = config.numAttentionHeads, b = layout.microBatchSize
        let n = b * s, e = layout.precision.activationBytes
        let tokens = Double(n), r = Double(layout.sequenceParallel ? h / t : h)
        let qkv = Double(3 * h / t), wide = Double(ffn / t)

        // The four linear layers on this rank: (rows, in, out).
        let linears = [(n, h, 3 * h / t), (n, h / t, h), (n, h, ffn / t), (n, ffn / t, h)]
        let linearForward = linears.reduce(0) { $0 + kernels.gemm(m: $1.0, n: $1.2, k: $1.1, elementBytes: e) }
        let linearBackward = linears.reduce(0) {
            $0 + kernels.gemm(m: $1.0, n: $1.1, k: $1.2, elementBytes: e)  // input gradient
                + kernels.gemm(m: $1.1, n: $1.2, k: $1.0, elementBytes: e)  // weight gradient
        }

        // The attention core.
        let batchHeads = b * heads / t, headDim = h / heads
        let scores = Double(batchHeads) * Double(s) * Double(s)
        var attentionForward: Double, attentionBackward: Double
        if software.flashAttention {
            let flops = 4 * scores * Double(headDim) / 2  // causal: the masked half is skipped
            let rate = cluster.peakFLOPs * (cluster.flashAttentionEfficiency ?? 1)  // nil refused by `Planner`
            (attentionForward, attentionBackward) = (flops / rate, 2.5 * flops / rate)
        } else {
            let square = kernels.gemm(m: s, n: s, k: headDim, batch: batchHeads, elementBytes: e)  // Q K^T, dO V^T
            let thin = kernels.gemm(m: s, n: headDim, k: s, batch: batchHeads, elementBytes: e)  // P V, dV, dQ, dK
            let fused = software.maskedSoftmaxFusion
            attentionForward = square + thin + kernels.memory(bytes: scores * (fused ? 4 * e + 1 : 8 * e + 1))
            attentionBackward = square + 3 * thin + kernels.memory(bytes: scores * (fused ? 5 * e + 1 : 9 * e + 1))
        }

        // Memory-bound kernels of a layer.
        let dropoutAdd = software.biasDropoutFusion ? 3 * e + 1 : 7 * e + 1
        let biasGELU = software.biasGELUFusion ? 2 * e : 4 * e
        let elementwiseForward = kernels.memory(bytes: tokens * (4 * e * r + 2 * e * qkv + 2 * dropoutAdd * r + biasGELU * wide))
        var elementwiseBackward = kernels.memory(bytes: tokens * (6 * e * r + e * qkv + 2 * (6 * e + 1) * r + 4 * e * wide))
        if !software.gradientAccumulationFusion {  // each weight gradient added into the fp32 buffer
            elementwiseBackward += kernels.memory(bytes: Double(12 * h * h / t) * 10)
        }

        // TP all-reduces (or SP's all-gathers and reduce-scatters) of the layer's b s h activations.
        let tpCollective = comm.allReduce(bytes: tokens * Double(h) * e, groupSize: t, stride: 1)

        // What a layer's forward costs (recomputation runs in the backward).
        let layerForward = linearForward + attentionForward + elementwiseForward + 2 * tpCollective
        // SP's backward gathers the QKV and fc1 inputs again for their weight gradients (Megatron
        // keeps only the rank's 1/t): two all-gathers, one all-reduce's volume.
        var perLayer = (gemm: linearForward + linearBackward, attention: attentionForward + attentionBackward,
                        elementwise: elementwiseForward + elementwiseBackward,
                        tp: (layout.sequenceParallel ? 5 : 4) * tpCollective)
        switch layout.recompute {
        case .none: break
        case .selective:  // FlashAttention's backward already recomputes its scores
            perLayer.attention += software.flashAttention ? 0 : attentionForward
        case .full:
            perLayer.gemm += linearForward
            perLayer.attention += attentionForward
            perLayer.elementwise += elementwiseForward
            perLayer.tp += 2 * tpCollective
        }

        // The first stage's embedding (gather, position add, dropout; the gradient's scatter-add in
        // fp32); the last stage's final LayerNorm, output layer and cross-entropy.
        let vocab = config.paddedVocabSize
        let embedding = kernels.memory(bytes: tokens * Double(h) * (7 * e + 1 + 8))
        let headGEMM = kernels.gemm(m: n, n: vocab / t, k: h, elementBytes: e)
            + kernels.gemm(m: n, n: h, k: vocab / t, elementBytes: e) + kernels.gemm(m: h, n: vocab / t, k: n, elementBytes: e)
        let headElementwise = kernels.memory(bytes: tokens * (5 * e * r + Double(vocab / t) * 32))

        // The stages: the first adds the embedding, the last the head; the slowest (compute and
        // TP) sets the pace, their mean the fill and drain.
        let even = config.numLayers / p
        let counts = (try? layout.stageLayers(config)) ?? (first: even, middle: even, last: even)
        let perLayerTotal = perLayer.gemm + perLayer.attention + perLayer.elementwise + perLayer.tp
        let first = Double(counts.first) * perLayerTotal + embedding + (p == 1 ? headGEMM + headElementwise : 0)
        let middle = Double(counts.middle) * perLayerTotal
        let last = Double(counts.last) * perLayerTotal + headGEMM + headElementwise
        let times = [first, p > 2 ? middle : -1, p > 1 ? last : -1]
        let slowest = times.indices.max { times[$0] < times[$1] }!
        let layers = Double([counts.first, counts.middle, counts.last][slowest])
        let head = p == 1 || slowest == 2 ? 1.0 : 0, embedded = slowest == 0 ? 1.0 : 0
        gemmSeconds = layers * perLayer.gemm + head * headGEMM
        attentionSeconds = layers * perLayer.attention
        elementwiseSeconds = layers * perLayer.elementwise + head * headElementwise + embedded * embedding
        tensorParallelSeconds = layers * perLayer.tp

        // Pipeline boundaries: one forward and one gradient per chunk and micro-batch. With SP each
        // rank sends its s/t slice and nothing is gathered.
        let boundary = tokens * Double(h) * e
        let ppStride = t * d
        if p > 1 {
            let transfer = layout.sequenceParallel || software.scatterGatherInPipeline
                ? comm.sendReceive(bytes: boundary / Double(t), groupSize: p, stride: ppStride)
                    + (layout.sequenceParallel ? 0 : comm.allGather(bytes: boundary, groupSize: t, stride: 1))
                : comm.sendReceive(bytes: boundary, groupSize: p, stride: ppStride)
            pipelineParallelSeconds = 2 * Double(layout.virtualStages) * transfer
        }
        let communication = tensorParallelSeconds + pipelineParallelSeconds
        meanStageSeconds = (p == 1 ? first : (first + last + Double(p - 2) * middle) / Double(p)) + pipelineParallelSeconds
        forwardSeconds = layers * layerForward + head * headGEMM / 3
        backwardSeconds = computePerMicroBatch + communication - forwardSeconds

        // Once per iteration: the data-parallel reduction (all-reduce, or with the distributed
        // optimizer a reduce-scatter of gradients and an all-gather of weights), partly hidden
        // when overlapped; then the optimizer on what this rank owns: fused Adam reads and writes
        // the fp32 master weights and both moments, reads the fp32 gradient and writes the model's
        // copy (30 bytes a parameter), the gradient norm reads the gradient again (4), and every
        // local gradient is zeroed for the next iteration (4).
        let parameters = DeviceParameters.largestStage(config: config, layout: layout)
        let sharded = layout.distributedOptimizer && d > 1
        let gradientBytes = parameters * layout.precision.gradientBytes
        let weightBytes = parameters * layout.precision.weightBytes
        if sharded {
            let reduceScatter = comm.reduceScatter(bytes: gradientBytes, groupSize: d, stride: t)
            let allGather = comm.allGather(bytes: weightBytes, groupSize: d, stride: t)
            dataParallelSeconds = (software.overlapGradReduce ? max(0, reduceScatter - backwardSeconds) : reduceScatter)
                + (software.overlapParamGather ? max(0, allGather - forwardSeconds) : allGather)
        } else {
            let allReduce = comm.allReduce(bytes: gradientBytes, groupSize: d, stride: t)
            dataParallelSeconds = software.overlapGradReduce ? max(0, allReduce - backwardSeconds) : allReduce
        }
        optimizerSeconds = kernels.memory(bytes: parameters / Double(sharded ? d : 1) * 34 + parameters * 4)
    }
}
