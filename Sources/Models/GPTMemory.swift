import Kernels

/// The bytes a GPT stage allocates for one micro-batch shape, counted from the same sizes as
/// `GPTActivations` and `GPTScratch` allocate (a test holds the two together), so a run can be
/// refused before it allocates instead of dying in the allocator or the OOM killer, and the
/// saved activations can be reported. Figures are `Double` so absurd shapes do not overflow.
public enum GPTMemory {
    /// Bytes of one micro-batch's `GPTActivations` for `layerCount` layers on one rank of a
    /// tensor-parallel group of `t`, with the final LayerNorm and logits when `head`, keeping
    /// what `recomputation` does not recompute; with `sequenceParallel` the residual region holds
    /// `1/t` of the tokens.
    public static func activationBytes(config: GPTConfig, batch: Int, seqLength: Int, tensorParallel t: Int,
                                       layerCount: Int, head: Bool, recomputation: ActivationRecomputation = .none,
                                       precision: ComputePrecision = .fp32, sequenceParallel: Bool = false) -> Double {
        let n = Double(batch) * Double(seqLength), c = Double(config.hiddenSize)
        let m = shardRows(n, tensorParallel: t, sequenceParallel: sequenceParallel)
        let groups = recomputation.recomputedGroups(layerCount: layerCount)
        let recomputedLayers = groups.reduce(0) { $0 + $1.count }
        let kept = Double(layerCount - recomputedLayers) * layerBytes(config: config, batch: batch, seqLength: seqLength,
                                                                        tensorParallel: t,
                                                                        keepsAttentionCore: !recomputation.recomputesAttentionCore,
                                                                        precision: precision,
                                                                        sequenceParallel: sequenceParallel)
        // tokens, targets, loss mask, input, output gradient; a boundary copy per recomputed group.
        var floats = 3 * n + m * c + m * c + Double(groups.count) * m * c
        if head, let bert = config.bert {
            // BERT's final LayerNorm output, fp32 and gathered; logits only with the masked-LM head.
            let logitRows = bert.head == .pretraining ? n : 0
            floats += n * c + 2 * m + logitRows * Double(config.paddedVocabSize / t) + 2 * logitRows
        } else if head {
            // The final LayerNorm's output is bf16 in bf16 (2 bytes: half a float).
            floats += (precision == .bf16 ? 0.5 : 1) * m * c + 2 * m + n * Double(config.paddedVocabSize / t) + 2 * n
        }
        let bert = config.bert == nil ? 0 : BERTActivations.byteCount(config: config, batch: batch, seqLength: seqLength, head: head,
                                                                        localRows: Int(m))
        return 4 * floats + kept + bert
    }

    /// Bytes one kept layer saves (`GPTLayerActivations`).
    public static func layerBytes(config: GPTConfig, batch: Int, seqLength: Int, tensorParallel t: Int,
                                  keepsAttentionCore: Bool = true, precision: ComputePrecision = .fp32,
                                  sequenceParallel: Bool = false) -> Double {
        let n = Double(batch) * Double(seqLength), c = Double(config.hiddenSize)
        let m = shardRows(n, tensorParallel: t, sequenceParallel: sequenceParallel)
        let local = c / Double(t), ffnLocal = Double(config.ffnHiddenSize / t)
        let lse = Double(batch) * Double(config.numAttentionHeads / t) * Double(seqLength)
        // ln1 + stats, qkv, [attention, lse], residual2, ln2 + stats, fc, residual3; in bf16 the
        // LayerNorm, QKV, attention and fc1 outputs are kept in bf16 (half a float each). The
        // LayerNorms and residuals hold this rank's m tokens.
        let half = precision == .bf16 ? 0.5 : 1
        let core = keepsAttentionCore ? half * n * local + lse : 0
        return 4 * (half * (m * c + m * c + 3 * n * local + n * ffnLocal) + 2 * m + core + m * c + 2 * m + m * c)
    }

    /// Tokens of `n` a rank holds outside the tensor-parallel region.
    static func shardRows(_ n: Double, tensorParallel t: Int, sequenceParallel: Bool) -> Double {
        sequenceParallel && t > 1 ? n / Double(t) : n
    }

    /// Bytes of the per-shape scratch every layer shares (`threads` kernel threads: the attention
    /// keeps one `[seqLength, seqLength]` pair per thread), with the workspace of the largest
    /// recomputed group or the recomputed attention core of `recomputation`, and in bf16 or fp16 the
    /// GEMM operands (the output gradient as wide as the stage's logits when it holds the `head`),
    /// and with `sequenceParallel` the buffers the sequence is gathered into and scattered from.
    public static func scratchBytes(config: GPTConfig, batch: Int, seqLength: Int, tensorParallel t: Int, threads: Int,
                                    recomputation: ActivationRecomputation = .none, layersPerChunk: Int = 0,
                                    precision: ComputePrecision = .fp32, head: Bool = true,
                                    sequenceParallel: Bool = false) -> Double {
        let n = Double(batch) * Double(seqLength), c = Double(config.hiddenSize)
        let m = shardRows(n, tensorParallel: t, sequenceParallel: sequenceParallel)
        let local = c / Double(t), ffnLocal = Double(config.ffnHiddenSize / t)
        let attention = 2 * Double(threads) * Double(seqLength) * Double(seqLength)
        let lse = Double(batch) * Double(config.numAttentionHeads / t) * Double(seqLength)
        // gelu, attention, dln, dattention, dqkv, dfc, ones, cross-entropy statistics.
        var floats = n * ffnLocal + attention + n * c + n * local + 3 * n * local + n * ffnLocal + n + 3 * n
        if recomputation.recomputesAttentionCore { floats += n * local + lse }
        // fp32 LayerNorm, fc1, QKV and (unless recomputed) attention outputs of a bf16 layer.
        if precision == .bf16 { floats += m * c + n * ffnLocal + 3 * n * local + (recomputation.recomputesAttentionCore ? 0 : n * local) }
        // Sequence parallelism: the gathered rows and the reduce-scattered LayerNorm gradient.
        if m < n { floats += n * c + m * c }
        // Hidden dropout: a branch's masked output gradient.
        if config.hiddenDropout > 0 { floats += m * c }
        let workspace = Double(recomputation.recomputedGroups(layerCount: layersPerChunk).map(\.count).max() ?? 0)
        let operands = operandCounts(config: config, batch: batch, seqLength: seqLength, tensorParallel: t, head: head)
        return 4 * floats + workspace * layerBytes(config: config, batch: batch, seqLength: seqLength, tensorParallel: t,
                                                   precision: precision, sequenceParallel: sequenceParallel)
            + Double(precision.operandBytes) * Double(operands.input + operands.outputGradient)
    }

    /// Elements of the low-precision GEMM operand scratch (`GPTScratch.operandInput`,
    /// `operandOutputGradient`): the widest activation and the widest output gradient any linear
    /// layer of the stage multiplies.
    static func operandCounts(config: GPTConfig, batch: Int, seqLength: Int, tensorParallel t: Int,
                              head: Bool) -> (input: Int, outputGradient: Int) {
        let n = batch * seqLength, c = config.hiddenSize, ffnLocal = config.ffnHiddenSize / t
        let logitsGradient = head ? outputLayerBlockRows(rows: n) * config.paddedVocabSize / t : 0
        return (n * max(c, ffnLocal), max(n * max(3 * c / t, c, ffnLocal), logitsGradient))
    }

    /// Rows of the logits gradient the output layer's bf16 or fp16 backward rounds and multiplies
    /// at a time (its operand scratch holds one such block, not the whole `[rows, vocab]`).
    static func outputLayerBlockRows(rows: Int) -> Int { min(rows, 512) }
}
