import Models

/// Closed-form parameter and FLOP counts of a GPT (REFERENCE section 6; Narayanan et al. 2021).
public enum CostModel {
    /// Activation recomputation, as Megatron's `--recompute-granularity`.
    public enum Recompute: String, Sendable, CaseIterable {
        case none, selective, full
    }

    /// `P = 12 l h^2 (1 + 13/(12h) + (V + s)/(12 l h))`: every transformer weight and bias, the
    /// word and position embeddings (tied output layer counted once). The final LayerNorm's 2h
    /// parameters are left out, as in the paper.
    public static func parameters(_ config: GPTConfig) -> Double {
        let l = Double(config.numLayers), h = Double(config.hiddenSize)
        let v = Double(config.paddedVocabSize), s = Double(config.maxPositionEmbeddings)
        return 12 * l * h * h * (1 + 13 / (12 * h) + (v + s) / (12 * l * h))
    }

    /// FLOPs of one iteration over `batch` sequences of the config's sequence length.
    /// Without recomputation this is the "model FLOPs" of MFU:
    /// `72 B s l h^2 (1 + s/(6h) + V/(12 l h))`; with full recomputation (one extra forward)
    /// `96 B s l h^2 (1 + s/(6h) + V/(16 l h))`, the hardware FLOPs Megatron reports.
    /// Selective recomputation re-runs only the attention core's forward (scores and the
    /// probability-weighted values): `4 B s^2 h l` more than none.
    public static func flopsPerIteration(_ config: GPTConfig, batch: Int, recompute: Recompute = .none) -> Double {
        let b = Double(batch), s = Double(config.maxPositionEmbeddings), l = Double(config.numLayers)
        let h = Double(config.hiddenSize), v = Double(config.paddedVocabSize)
        switch recompute {
        case .none:
            return config.modelFLOPs(batch: batch, seqLength: config.maxPositionEmbeddings)
        case .selective:
            return config.modelFLOPs(batch: batch, seqLength: config.maxPositionEmbeddings) + 4 * b * s * s * h * l
        case .full:
            return 96 * b * s * l * h * h * (1 + s / (6 * h) + v / (16 * l * h))
        }
    }

    /// Throughput per device implied by an iteration time: `F / (devices * seconds)`.
    public static func flopsPerDevice(_ config: GPTConfig, batch: Int, recompute: Recompute,
                                      devices: Int, iterationSeconds: Double) -> Double {
        flopsPerIteration(config, batch: batch, recompute: recompute) / (Double(devices) * iterationSeconds)
    }

    /// Pipeline bubble as a fraction of ideal compute time: `(p - 1) / (v m)` for `p` stages,
    /// `v` model chunks per stage (interleaving) and `m` micro-batches per iteration.
    public static func bubbleFraction(pipelineStages p: Int, virtualStages v: Int = 1, microBatches m: Int) -> Double {
        Double(p - 1) / Double(v * m)
    }
}
