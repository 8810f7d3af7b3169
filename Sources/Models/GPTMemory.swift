import Kernels

/// The bytes a GPT stage allocates for one micro-batch shape, counted from the same sizes as
/// `GPTActivations` and `GPTScratch` allocate (a test holds the two together), so a run can be
/// refused before it allocates instead of dying in the allocator or the OOM killer. Figures are
/// `Double` so absurd shapes do not overflow.
public enum GPTMemory {
    /// Bytes of one micro-batch's `GPTActivations` for `layerCount` layers on one rank of a
    /// tensor-parallel group of `t`, with the final LayerNorm and logits when `head`.
    public static func activationBytes(config: GPTConfig, batch: Int, seqLength: Int, tensorParallel t: Int,
                                       layerCount: Int, head: Bool) -> Double {
        let n = Double(batch) * Double(seqLength), c = Double(config.hiddenSize)
        let local = c / Double(t), ffnLocal = Double(config.ffnHiddenSize / t)
        let lse = Double(batch) * Double(config.numAttentionHeads / t) * Double(seqLength)
        // ln1 + stats, qkv, attention, lse, residual2, ln2 + stats, fc, residual3.
        let perLayer = n * c + 2 * n + 3 * n * local + n * local + lse + n * c + n * c + 2 * n + n * ffnLocal + n * c
        // tokens, targets, loss mask, input, output gradient.
        var floats = 3 * n + n * c + n * c + Double(layerCount) * perLayer
        if head { floats += n * c + 2 * n + n * Double(config.paddedVocabSize / t) + 2 * n }
        return 4 * floats
    }

    /// Bytes of the per-shape scratch every layer shares (`threads` kernel threads: the attention
    /// keeps one `[seqLength, seqLength]` pair per thread).
    public static func scratchBytes(config: GPTConfig, batch: Int, seqLength: Int, tensorParallel t: Int,
                                    threads: Int) -> Double {
        let n = Double(batch) * Double(seqLength), c = Double(config.hiddenSize)
        let local = c / Double(t), ffnLocal = Double(config.ffnHiddenSize / t)
        let attention = 2 * Double(threads) * Double(seqLength) * Double(seqLength)
        // gelu, attention, dln, dattention, dqkv, dfc, ones, cross-entropy statistics.
        return 4 * (n * ffnLocal + attention + n * c + n * local + 3 * n * local + n * ffnLocal + n + 3 * n)
    }
}
