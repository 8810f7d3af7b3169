import Distributed

/// Shape and initialization of a GPT model (Megatron's argument names in comments).
public struct GPTConfig: Codable, Sendable, Equatable {
    /// `--num-layers`
    public var numLayers: Int
    /// `--hidden-size`
    public var hiddenSize: Int
    /// `--num-attention-heads`
    public var numAttentionHeads: Int
    /// `--max-position-embeddings`: the longest sequence the model accepts.
    public var maxPositionEmbeddings: Int
    /// The tokenizer's vocabulary size, before padding.
    public var vocabSize: Int
    /// `--make-vocab-size-divisible-by` (times the tensor-parallel size in Megatron).
    public var makeVocabSizeDivisibleBy: Int
    /// `--init-method-std`: normal(0, std) init; residual output projections use std / sqrt(2 L).
    public var initMethodStd: Float
    /// LayerNorm epsilon.
    public var layerNormEpsilon: Float
    /// Whether the true vocabulary bounds the softmax (the padded ids are never predicted and
    /// get no gradient). Set for models imported from Hugging Face, whose padding rows are zeros
    /// and whose loss is over the true vocabulary; Megatron trains the padding like any other
    /// logit (false, the default).
    public var maskPaddedVocabulary: Bool
    /// `--hidden-dropout`: dropout on the embedding output and on each attention and MLP
    /// output before its residual addition, in training forwards (0: none).
    public var hiddenDropout: Float
    /// `--attention-dropout`: dropout on the attention probabilities, in training forwards.
    public var attentionDropout: Float
    /// `--ffn-hidden-size` when given (nil: 4h, following `hiddenSize`).
    public var ffnHiddenSizeSetting: Int?
    /// The MLP's inner width: `--ffn-hidden-size`, by default 4h.
    public var ffnHiddenSize: Int { ffnHiddenSizeSetting ?? 4 * hiddenSize }
    /// `--no-bias-gelu-fusion`: the MLP's GELU is the exact erf one (PyTorch's `F.gelu`, which
    /// Megatron uses without its fused bias-GELU; Hugging Face's `gelu`) instead of the tanh
    /// approximation (Megatron's default fused bias-GELU, GPT-2's `gelu_new`).
    public var exactGELU: Bool
    /// `--untie-embeddings-and-output-weights`: the output layer has its own weight
    /// (`output_layer.weight`, `[paddedVocabSize, hiddenSize]`, held by the last stage) instead
    /// of reusing the word embedding.
    public var untieEmbeddingsAndOutputWeights: Bool
    /// BERT's settings (nil: a GPT model). With them the model is Megatron's BERT: bidirectional
    /// attention over each sequence's tokens before its padding, token-type embeddings, and the
    /// masked-LM and sentence-order heads instead of GPT's next-token head.
    public var bert: BERTSettings?

    public init(numLayers: Int, hiddenSize: Int, numAttentionHeads: Int, maxPositionEmbeddings: Int,
                vocabSize: Int, makeVocabSizeDivisibleBy: Int = 128, initMethodStd: Float = 0.02,
                layerNormEpsilon: Float = 1e-5, maskPaddedVocabulary: Bool = false, hiddenDropout: Float = 0,
                attentionDropout: Float = 0, exactGELU: Bool = false, ffnHiddenSize: Int? = nil,
                untieEmbeddingsAndOutputWeights: Bool = false, bert: BERTSettings? = nil) {
        self.numLayers = numLayers
        self.hiddenSize = hiddenSize
        self.numAttentionHeads = numAttentionHeads
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.vocabSize = vocabSize
        self.makeVocabSizeDivisibleBy = makeVocabSizeDivisibleBy
        self.initMethodStd = initMethodStd
        self.layerNormEpsilon = layerNormEpsilon
        self.maskPaddedVocabulary = maskPaddedVocabulary
        self.hiddenDropout = hiddenDropout
        self.attentionDropout = attentionDropout
        self.exactGELU = exactGELU
        self.untieEmbeddingsAndOutputWeights = untieEmbeddingsAndOutputWeights
        self.bert = bert
        ffnHiddenSizeSetting = ffnHiddenSize == 4 * hiddenSize ? nil : ffnHiddenSize
    }

    private enum CodingKeys: String, CodingKey {
        case numLayers, hiddenSize, numAttentionHeads, maxPositionEmbeddings, vocabSize, makeVocabSizeDivisibleBy
        case initMethodStd, layerNormEpsilon, maskPaddedVocabulary, hiddenDropout, attentionDropout, exactGELU, ffnHiddenSize
        case untieEmbeddingsAndOutputWeights, bert
    }

    /// Encodes every field; `exactGELU` and `untieEmbeddingsAndOutputWeights` only when set and
    /// `ffnHiddenSize` only when not 4h, so that a model without them is stored as it was before
    /// they existed.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(numLayers, forKey: .numLayers)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(makeVocabSizeDivisibleBy, forKey: .makeVocabSizeDivisibleBy)
        try c.encode(initMethodStd, forKey: .initMethodStd)
        try c.encode(layerNormEpsilon, forKey: .layerNormEpsilon)
        try c.encode(maskPaddedVocabulary, forKey: .maskPaddedVocabulary)
        try c.encode(hiddenDropout, forKey: .hiddenDropout)
        try c.encode(attentionDropout, forKey: .attentionDropout)
        if exactGELU { try c.encode(exactGELU, forKey: .exactGELU) }
        if let ffnHiddenSizeSetting { try c.encode(ffnHiddenSizeSetting, forKey: .ffnHiddenSize) }
        if untieEmbeddingsAndOutputWeights { try c.encode(true, forKey: .untieEmbeddingsAndOutputWeights) }
        try c.encodeIfPresent(bert, forKey: .bert)
    }

    /// Decodes a stored config; checkpoints written before `maskPaddedVocabulary` or the dropouts
    /// existed keep Megatron's behaviour and no dropout; without `exactGELU`, the tanh GELU;
    /// without `untieEmbeddingsAndOutputWeights`, the tied output layer.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(numLayers: try c.decode(Int.self, forKey: .numLayers), hiddenSize: try c.decode(Int.self, forKey: .hiddenSize),
                  numAttentionHeads: try c.decode(Int.self, forKey: .numAttentionHeads),
                  maxPositionEmbeddings: try c.decode(Int.self, forKey: .maxPositionEmbeddings),
                  vocabSize: try c.decode(Int.self, forKey: .vocabSize),
                  makeVocabSizeDivisibleBy: try c.decode(Int.self, forKey: .makeVocabSizeDivisibleBy),
                  initMethodStd: try c.decode(Float.self, forKey: .initMethodStd),
                  layerNormEpsilon: try c.decode(Float.self, forKey: .layerNormEpsilon),
                  maskPaddedVocabulary: try c.decodeIfPresent(Bool.self, forKey: .maskPaddedVocabulary) ?? false,
                  hiddenDropout: try c.decodeIfPresent(Float.self, forKey: .hiddenDropout) ?? 0,
                  attentionDropout: try c.decodeIfPresent(Float.self, forKey: .attentionDropout) ?? 0,
                  exactGELU: try c.decodeIfPresent(Bool.self, forKey: .exactGELU) ?? false,
                  ffnHiddenSize: try c.decodeIfPresent(Int.self, forKey: .ffnHiddenSize),
                  untieEmbeddingsAndOutputWeights: try c.decodeIfPresent(Bool.self, forKey: .untieEmbeddingsAndOutputWeights) ?? false,
                  bert: try c.decodeIfPresent(BERTSettings.self, forKey: .bert))
    }

    /// Ids a token or target may take: the padded vocabulary, or the true one when it bounds the softmax.
    public var acceptedVocabularySize: Int { maskPaddedVocabulary ? vocabSize : paddedVocabSize }

    /// The vocabulary rounded up to a multiple of `makeVocabSizeDivisibleBy` (50257 -> 50304).
    public var paddedVocabSize: Int {
        let multiple = max(1, makeVocabSizeDivisibleBy)
        return (vocabSize + multiple - 1) / multiple * multiple
    }

    /// Width of one attention head.
    public var headDim: Int { hiddenSize / numAttentionHeads }

    /// Model FLOPs of one forward and backward pass over `batch` sequences of `seqLength` tokens
    /// without recomputation (Narayanan et al. 2021): three times the forward's matmuls,
    /// `3 (B s l (8h^2 + 4 h f + 4 s h) + 2 B s h V)` with MLP width f, which for f = 4h is
    /// `72 B s l h^2 (1 + s/(6h) + V/(12 l h))`. Training's MFU and the planner both count with it.
    public func modelFLOPs(batch: Int, seqLength: Int) -> Double {
        let b = Double(batch), s = Double(seqLength), l = Double(numLayers)
        let h = Double(hiddenSize), v = Double(paddedVocabSize), f = Double(ffnHiddenSize)
        return 3 * (b * s * l * (8 * h * h + 4 * h * f + 4 * s * h) + 2 * b * s * h * v)
    }

    /// Checks that the shape is usable; the error names the offending flag.
    public func validate() throws(ConfigurationError) {
        func positive(_ value: Int, _ flag: String) throws(ConfigurationError) {
            if value <= 0 { throw .invalid(flag: flag, reason: "must be positive, got \(value)") }
        }
        try positive(numLayers, "--num-layers")
        try positive(hiddenSize, "--hidden-size")
        try positive(numAttentionHeads, "--num-attention-heads")
        try positive(maxPositionEmbeddings, "--max-position-embeddings")
        try positive(vocabSize, "--vocab-size")
        try positive(makeVocabSizeDivisibleBy, "--make-vocab-size-divisible-by")
        try positive(ffnHiddenSize, "--ffn-hidden-size")
        // Bounds that keep every tensor's element count and every byte count within `Int`.
        for (value, flag, limit) in [(numLayers, "--num-layers", Self.maximumLayers),
                                     (hiddenSize, "--hidden-size", Self.maximumWidth),
                                     (ffnHiddenSize, "--ffn-hidden-size", Self.maximumWidth),
                                     (maxPositionEmbeddings, "--max-position-embeddings", Self.maximumWidth),
                                     (vocabSize, "--vocab-size", Int(Int32.max)),
                                     (makeVocabSizeDivisibleBy, "--make-vocab-size-divisible-by", Self.maximumWidth)]
        where value > limit {
            throw .invalid(flag: flag, reason: "\(value) is more than this implementation supports (at most \(limit))")
        }
        let h = Double(hiddenSize), f = Double(ffnHiddenSize)
        let parameters = Double(numLayers) * (4 * h * h + 2 * h * f + 9 * h + f)
            + Double(paddedVocabSize + maxPositionEmbeddings) * h
        if parameters > Self.maximumParameters {
            throw .invalid(flag: "--hidden-size", reason: "the model would have about \(parameters.rounded(.up)) parameters, "
                + "more than the 10^15 this implementation can address")
        }
        if hiddenSize % numAttentionHeads != 0 {
            throw .invalid(flag: "--num-attention-heads",
                           reason: "\(numAttentionHeads) heads do not divide --hidden-size \(hiddenSize)")
        }
        if let bert, bert.tokenTypes < 0 {
            throw .invalid(flag: "--num-tokentypes", reason: "must not be negative, got \(bert.tokenTypes)")
        }
        if !(initMethodStd > 0) { throw .invalid(flag: "--init-method-std", reason: "must be positive") }
        if !(layerNormEpsilon > 0 && layerNormEpsilon.isFinite) {
            throw .invalid(flag: "--norm-epsilon", reason: "must be positive and finite, got \(layerNormEpsilon)")
        }
        for (value, flag) in [(hiddenDropout, "--hidden-dropout"), (attentionDropout, "--attention-dropout")]
        where !(value >= 0 && value < 1) {
            throw .invalid(flag: flag, reason: "must be in [0, 1), got \(value)")
        }
    }

    /// The most layers `validate` accepts.
    public static let maximumLayers = 1 << 16
    /// The most a width (hidden, MLP, positions) may be: `width x width` elements stay far inside `Int`.
    public static let maximumWidth = 1 << 24
    /// The most parameters `validate` accepts (1e15: byte counts of weights, gradients and
    /// optimizer states stay inside `Int`).
    public static let maximumParameters = 1e15

    /// Number of parameters (a tied embedding counted once, an untied output layer on its own).
    public var parameterCount: Int {
        GPTModel.parameterSpecs(self).reduce(0) { $0 + $1.count }
    }
}

/// A configuration value that cannot work, naming the flag to fix.
public enum ConfigurationError: Error, CustomStringConvertible, Equatable {
    case invalid(flag: String, reason: String)
    /// The model does not divide over the parallel layout (the message names the flags).
    case layout(LayoutError)

    public var description: String {
        switch self {
        case let .invalid(flag, reason): "invalid \(flag): \(reason)"
        case let .layout(error): error.description
        }
    }
}
