import Parameters

/// Maps Hugging Face `BertForPreTraining` tensors (`bert.encoder.layer.0.attention.self.query.weight`,
/// `cls.predictions.transform.dense.weight`, ...) onto a post-LN BERT `GPTModel`'s layout.
///
/// Both store linear weights `[out, in]`; the differences are the fused QKV (Hugging Face keeps
/// query, key and value apart, this project each head's `[q k v]` rows together), the padded
/// vocabulary (zero rows here), and where the LayerNorms are named: in Megatron's post-LN order
/// (`--apply-residual-connection-post-layernorm`) layer `i`'s input LayerNorm is BERT's embedding
/// LayerNorm for `i = 0` and layer `i - 1`'s output LayerNorm otherwise, the last layer's output
/// LayerNorm is the final LayerNorm, and the attention output LayerNorm is the pre-MLP one. The
/// mapping is a permutation, so it maps gradients and optimizer moments too.
public enum HuggingFaceBERT {
    /// Why a BERT cannot be written as `BertForPreTraining`, or nil when it can.
    public static func exportRefusal(_ bert: BERTSettings) -> String? {
        if !bert.residualConnectionPostLayerNorm {
            return "this BERT is pre-LN (Megatron's rearranged order): Hugging Face's BertForPreTraining is post-LN, with its LayerNorms after the residual additions; train with --bert-layernorm-order post to export"
        }
        if bert.head != .pretraining {
            return "this BERT carries a fine-tuning head (\(bert.head)), not BertForPreTraining's masked-LM and next-sentence heads"
        }
        if !bert.binaryHead { return "BertForPreTraining has the sentence-order (next-sentence) head; this BERT was trained with --bert-no-binary-head" }
        return nil
    }

    /// Hugging Face's name and ours for every tensor but the attention's query, key and value,
    /// in `BertForPreTraining`'s order; `vocabulary` marks the tensors padded by vocabulary rows.
    static func pairs(_ config: GPTConfig) -> [(hf: String, ours: String, vocabulary: Bool)] {
        var pairs: [(hf: String, ours: String, vocabulary: Bool)] = [
            ("bert.embeddings.word_embeddings.weight", wordEmbeddingName, true),
            ("bert.embeddings.position_embeddings.weight", positionEmbeddingName, false),
            ("bert.embeddings.token_type_embeddings.weight", tokenTypeEmbeddingName, false),
        ]
        func both(_ hf: String, _ ours: String) {
            pairs += [(hf + ".weight", ours + ".weight", false), (hf + ".bias", ours + ".bias", false)]
        }
        both("bert.embeddings.LayerNorm", "decoder.layers.0.input_layernorm")
        for layer in 0..<config.numLayers {
            let hf = "bert.encoder.layer.\(layer).", ours = "decoder.layers.\(layer)."
            both(hf + "attention.output.dense", ours + "self_attention.linear_proj")
            both(hf + "attention.output.LayerNorm", ours + "pre_mlp_layernorm")
            both(hf + "intermediate.dense", ours + "mlp.linear_fc1")
            both(hf + "output.dense", ours + "mlp.linear_fc2")
            both(hf + "output.LayerNorm", layer + 1 < config.numLayers ? "decoder.layers.\(layer + 1).input_layernorm" : "decoder.final_layernorm")
        }
        both("bert.pooler.dense", "pooler.dense")
        both("cls.predictions.transform.dense", "lm_head.dense")
        both("cls.predictions.transform.LayerNorm", "lm_head.layer_norm")
        pairs.append(("cls.predictions.bias", BERTMaskedLMHead.outputBiasName, true))
        if config.untieEmbeddingsAndOutputWeights { pairs.append(("cls.predictions.decoder.weight", outputLayerName, true)) }
        both("cls.seq_relationship", "binary_head")
        return pairs
    }

    /// Fills `store` (laid out for the post-LN BERT `config`) from tensors named as in Hugging
    /// Face's `BertForPreTraining`, read through `tensor(name)`.
    public static func load(into store: ParameterStore, config: GPTConfig, tensor: (String) throws -> [Float]) throws {
        let c = config.hiddenSize, d = config.headDim
        for (hf, ours, vocabulary) in pairs(config) {
            let values = try tensor(hf)
            let (offset, spec) = store.layout.entry(ours)
            let expected = vocabulary ? config.vocabSize * spec.count / config.paddedVocabSize : spec.count
            guard values.count == expected || values.count == spec.count else {
                throw HuggingFaceGPT2.ImportError.shapeMismatch(tensor: hf, found: values.count, expected: spec.shape)
            }
            (store.buffer.pointer + offset).update(repeating: 0, count: spec.count)  // padding rows stay zero
            (store.buffer.pointer + offset).update(from: values, count: values.count)
        }
        for layer in 0..<config.numLayers {
            let hf = "bert.encoder.layer.\(layer).attention.self.", ours = "decoder.layers.\(layer).self_attention.linear_qkv."
            let weight = store[ours + "weight"], bias = store[ours + "bias"]
            for (section, name) in ["query", "key", "value"].enumerated() {
                let w = try tensor(hf + name + ".weight"), b = try tensor(hf + name + ".bias")
                guard w.count == c * c, b.count == c else {
                    throw HuggingFaceGPT2.ImportError.shapeMismatch(tensor: hf + name, found: w.count + b.count, expected: [c, c])
                }
                for row in 0..<c {  // row h * d + j of the query (key, value) -> our row h * 3d + section * d + j
                    let ours = (row / d) * 3 * d + section * d + row % d
                    bias[ours] = b[row]
                    (weight + ours * c).update(from: Array(w[(row * c)..<((row + 1) * c)]), count: c)
                }
            }
        }
    }

    /// The tensors of `store` under `BertForPreTraining`'s names and shapes (vocabulary rows
    /// without the padding); the tied decoder weight is omitted as `save_pretrained` omits it.
    public static func export(_ store: ParameterStore, config: GPTConfig) -> [(name: String, shape: [Int], values: [Float])] {
        let c = config.hiddenSize, d = config.headDim
        var tensors = [(name: String, shape: [Int], values: [Float])]()
        for (hf, ours, vocabulary) in pairs(config) {
            let spec = store.layout.entry(ours).spec
            let count = vocabulary ? config.vocabSize * spec.count / config.paddedVocabSize : spec.count
            let shape = vocabulary ? [config.vocabSize] + spec.shape.dropFirst() : spec.shape
            tensors.append((hf, shape, Array(UnsafeBufferPointer(start: store[ours], count: count))))
        }
        for layer in 0..<config.numLayers {
            let hf = "bert.encoder.layer.\(layer).attention.self.", ours = "decoder.layers.\(layer).self_attention.linear_qkv."
            let weight = store[ours + "weight"], bias = store[ours + "bias"]
            for (section, name) in ["query", "key", "value"].enumerated() {
                var w = [Float](repeating: 0, count: c * c), b = [Float](repeating: 0, count: c)
                for row in 0..<c {
                    let source = (row / d) * 3 * d + section * d + row % d
                    b[row] = bias[source]
                    for i in 0..<c { w[row * c + i] = weight[source * c + i] }
                }
                tensors += [(hf + name + ".weight", [c, c], w), (hf + name + ".bias", [c], b)]
            }
        }
        return tensors
    }
}
