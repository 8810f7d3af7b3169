import Models

/// Published model shapes the planner knows by name (`--model PRESET`).
public enum ModelPreset: String, CaseIterable, Sendable {
    case gpt2_124m = "gpt2-124m"
    case megatron_8_3b = "megatron-8.3b"
    case gpt3_175b = "gpt3-175b"
    case mtnlg_530b = "mt-nlg-530b"

    /// The model's shape; `maxPositionEmbeddings` is its training sequence length.
    public var config: GPTConfig {
        switch self {
        case .gpt2_124m:
            GPTConfig(numLayers: 12, hiddenSize: 768, numAttentionHeads: 12, maxPositionEmbeddings: 1024, vocabSize: 50257)
        case .megatron_8_3b:  // Shoeybi et al. 2019, table 1 (vocab padded to 51200)
            GPTConfig(numLayers: 72, hiddenSize: 3072, numAttentionHeads: 32, maxPositionEmbeddings: 1024, vocabSize: 51200)
        case .gpt3_175b:
            GPTConfig(numLayers: 96, hiddenSize: 12288, numAttentionHeads: 96, maxPositionEmbeddings: 2048, vocabSize: 50257)
        case .mtnlg_530b:     // Smith et al. 2022
            GPTConfig(numLayers: 105, hiddenSize: 20480, numAttentionHeads: 128, maxPositionEmbeddings: 2048, vocabSize: 51200)
        }
    }
}
