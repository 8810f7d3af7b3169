import Parameters

extension GPTModel {
    /// The parameter tensors in buffer order, with Megatron-core names; with tensor parallelism,
    /// the shapes of one rank's shards.
    public static func parameterSpecs(_ config: GPTConfig, tensorParallel t: Int = 1,
                                      part: GPTPipelinePart? = nil) -> [ParameterSpec] {
        let c = config.hiddenSize
        let ffn = config.ffnHiddenSize
        let part = part ?? .whole(numLayers: config.numLayers)
        var specs = [ParameterSpec]()
        let tied = !config.untieEmbeddingsAndOutputWeights
        if part.holdsEmbedding || (part.holdsHead && tied) {
            specs.append(ParameterSpec(name: wordEmbeddingName, shape: [config.paddedVocabSize, c], weightDecay: true))
        }
        if part.holdsEmbedding {
            specs.append(ParameterSpec(name: positionEmbeddingName, shape: [config.maxPositionEmbeddings, c], weightDecay: true))
            if let bert = config.bert, bert.tokenTypes > 0 {
                specs.append(ParameterSpec(name: tokenTypeEmbeddingName, shape: [bert.tokenTypes, c], weightDecay: true))
            }
        }
        for layer in part.layers {
            let p = "decoder.layers.\(layer)."
            specs += [
                ParameterSpec(name: p + "input_layernorm.weight", shape: [c], weightDecay: false),
                ParameterSpec(name: p + "input_layernorm.bias", shape: [c], weightDecay: false),
                ParameterSpec(name: p + "self_attention.linear_qkv.weight", shape: [3 * c, c], weightDecay: true),
                ParameterSpec(name: p + "self_attention.linear_qkv.bias", shape: [3 * c], weightDecay: false),
                ParameterSpec(name: p + "self_attention.linear_proj.weight", shape: [c, c], weightDecay: true),
                ParameterSpec(name: p + "self_attention.linear_proj.bias", shape: [c], weightDecay: false),
                ParameterSpec(name: p + "pre_mlp_layernorm.weight", shape: [c], weightDecay: false),
                ParameterSpec(name: p + "pre_mlp_layernorm.bias", shape: [c], weightDecay: false),
                ParameterSpec(name: p + "mlp.linear_fc1.weight", shape: [ffn, c], weightDecay: true),
                ParameterSpec(name: p + "mlp.linear_fc1.bias", shape: [ffn], weightDecay: false),
                ParameterSpec(name: p + "mlp.linear_fc2.weight", shape: [c, ffn], weightDecay: true),
                ParameterSpec(name: p + "mlp.linear_fc2.bias", shape: [c], weightDecay: false),
            ]
        }
        if part.holdsHead {
            specs += [
                ParameterSpec(name: finalLayerNormWeightName, shape: [c], weightDecay: false),
                ParameterSpec(name: finalLayerNormBiasName, shape: [c], weightDecay: false),
            ]
            if !tied { specs.append(ParameterSpec(name: outputLayerName, shape: [config.paddedVocabSize, c], weightDecay: true)) }
            if let bert = config.bert, bert.tokenTypes > 0 { specs += BERTHeads.parameterSpecs(config, bert) }
        }
        return specs.map { spec in
            var shard = spec
            shard.shape = TensorShard(name: spec.name).shape(of: spec.shape, size: t)
            return shard
        }
    }

    /// Megatron's initialization from `seed`: weights normal(0, std), the attention and MLP
    /// output projections normal(0, std / sqrt(2 * numLayers)), biases zero, LayerNorm weights one.
    static func initialize(_ params: ParameterStore, config: GPTConfig, seed: UInt64) {
        var rng = RandomGenerator(seed: seed)
        for (index, spec) in params.layout.specs.enumerated() {
            initialize(spec, into: params.pointer(at: index), config: config, rng: &rng)
        }
    }

    /// One tensor of `initialize`, drawing from `rng` (the tensors in layout order make the model).
    static func initialize(_ spec: ParameterSpec, into pointer: UnsafeMutablePointer<Float>, config: GPTConfig,
                           rng: inout RandomGenerator) {
        let std = config.initMethodStd
        if spec.name.hasSuffix("layernorm.weight") || spec.name.hasSuffix("layer_norm.weight") {
            pointer.update(repeating: 1, count: spec.count)
        } else if spec.name.hasSuffix(".bias") {
            pointer.update(repeating: 0, count: spec.count)
        } else if spec.name.hasSuffix("linear_proj.weight") || spec.name.hasSuffix("linear_fc2.weight") {
            rng.fillNormal(pointer, count: spec.count, std: std / Float(2 * config.numLayers).squareRoot())
        } else {
            rng.fillNormal(pointer, count: spec.count, std: std)
        }
    }
}

/// The word embedding (input embedding, and the output layer when tied), Megatron-core's name.
public let wordEmbeddingName = "embedding.word_embeddings.weight"
/// The untied output layer's weight (`--untie-embeddings-and-output-weights`), Megatron-core's name.
public let outputLayerName = "output_layer.weight"
let positionEmbeddingName = "embedding.position_embeddings.weight"
/// BERT's token-type (segment) embedding, Megatron-core's name.
let tokenTypeEmbeddingName = "embedding.tokentype_embeddings.weight"
let finalLayerNormWeightName = "decoder.final_layernorm.weight"
let finalLayerNormBiasName = "decoder.final_layernorm.bias"

/// The layers of one GPT pipeline stage on one tensor-parallel rank, resolved once against the
/// parameter layout so the step does no name look-ups.
struct GPTStageLayers {
    /// The word (and, on the first stage, position) embedding and the output layer; nil on a
    /// middle stage.
    let embedding: VocabParallelEmbedding?
    /// Each model chunk's transformer layers, in order.
    let chunks: [[TransformerLayer]]
    /// The final LayerNorm (last stage only).
    let finalLayerNorm: LayerNormWeights?
    /// BERT's token-type embedding (first stage of a BERT model only).
    let tokenTypeEmbedding: Int?
    /// BERT's masked-LM and sentence-order heads (last stage of a BERT model only).
    let bertHeads: BERTHeads?

    /// Every layer held, in chunk order.
    var layers: [TransformerLayer] { chunks.flatMap { $0 } }

    init(layout: ParameterLayout, part: GPTPipelinePart, config: GPTConfig, region: TensorParallelRegion) {
        let offsets = ParameterOffsets(layout: layout)
        let word = offsets.optional(wordEmbeddingName), output = offsets.optional(outputLayerName)
        embedding = (word ?? output).map {
            VocabParallelEmbedding(wordEmbeddings: $0, outputWeights: part.holdsHead ? output ?? $0 : nil,
                                   positionEmbeddings: offsets.optional(positionEmbeddingName), config: config, region: region)
        }
        chunks = part.chunkLayers.map { range in
            range.map { TransformerLayer(index: $0, layout: offsets, config: config, region: region) }
        }
        finalLayerNorm = part.holdsHead
            ? LayerNormWeights(weight: offsets[finalLayerNormWeightName], bias: offsets[finalLayerNormBiasName]) : nil
        tokenTypeEmbedding = config.bert == nil ? nil : offsets.optional(tokenTypeEmbeddingName)
        bertHeads = config.bert.flatMap { part.holdsHead ? BERTHeads(offsets: offsets, config: config, settings: $0) : nil }
    }
}
