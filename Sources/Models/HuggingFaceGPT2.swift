import Parameters

/// Maps Hugging Face GPT-2 tensors (`transformer.h.0.attn.c_attn.weight`, ...) onto a
/// `GPTModel`'s parameter layout.
///
/// Hugging Face stores linear weights as Conv1D `[in, out]` and the fused QKV columns as
/// `[all queries | all keys | all values]`; this project stores `[out, in]` with each head's
/// query, key and value rows together (Megatron's layout). The mapping is a permutation, so it
/// applies equally to weights, gradients and optimizer moments.
public enum HuggingFaceGPT2 {
    /// Fills `store` (laid out for `config`) from tensors named as in Hugging Face's GPT-2, read
    /// through `tensor(name)` in `prefix + name` form (for example `prefix: "grad/"`).
    public static func load(into store: ParameterStore, config: GPTConfig, prefix: String = "",
                            tensor: (String) throws -> [Float]) throws {
        let c = config.hiddenSize
        let f = config.ffnHiddenSize
        func copy(_ hf: String, _ name: String) throws {
            let values = try tensor(prefix + hf)
            let (offset, spec) = store.layout.entry(name)
            guard values.count == spec.count else {
                throw ImportError.shapeMismatch(tensor: prefix + hf, found: values.count, expected: spec.shape)
            }
            (store.buffer.pointer + offset).update(from: values, count: values.count)
        }
        func copyTransposed(_ hf: String, _ name: String, rows: Int, cols: Int) throws {
            // Hugging Face [rows = in, cols = out] -> ours [out, in].
            let values = try tensor(prefix + hf)
            guard values.count == rows * cols else {
                throw ImportError.shapeMismatch(tensor: prefix + hf, found: values.count, expected: [rows, cols])
            }
            let destination = store[name]
            for i in 0..<rows {
                for o in 0..<cols { destination[o * rows + i] = values[i * cols + o] }
            }
        }
        // Hugging Face keeps the unpadded vocabulary; the padding rows stay zero.
        func copyVocabularyRows(_ hf: String, _ name: String) throws {
            let values = try tensor(prefix + hf)
            let (offset, spec) = store.layout.entry(name)
            guard values.count == config.vocabSize * c || values.count == spec.count else {
                throw ImportError.shapeMismatch(tensor: prefix + hf, found: values.count, expected: [config.vocabSize, c])
            }
            (store.buffer.pointer + offset).update(repeating: 0, count: spec.count)
            (store.buffer.pointer + offset).update(from: values, count: values.count)
        }
        try copyVocabularyRows("transformer.wte.weight", wordEmbeddingName)
        if config.untieEmbeddingsAndOutputWeights { try copyVocabularyRows("lm_head.weight", outputLayerName) }
        try copy("transformer.wpe.weight", "embedding.position_embeddings.weight")
        for layer in 0..<config.numLayers {
            let hf = "transformer.h.\(layer)."
            let ours = "decoder.layers.\(layer)."
            try copy(hf + "ln_1.weight", ours + "input_layernorm.weight")
            try copy(hf + "ln_1.bias", ours + "input_layernorm.bias")
            // c_attn: [c, 3c] with output column s * c + h * d + j (s = q, k, v) -> our row h * 3d + s * d + j.
            let qkvWeight = try tensor(prefix + hf + "attn.c_attn.weight")
            let qkvBias = try tensor(prefix + hf + "attn.c_attn.bias")
            guard qkvWeight.count == 3 * c * c, qkvBias.count == 3 * c else {
                throw ImportError.shapeMismatch(tensor: prefix + hf + "attn.c_attn", found: qkvWeight.count + qkvBias.count,
                                                expected: [c, 3 * c])
            }
            let weight = store[ours + "self_attention.linear_qkv.weight"]
            let bias = store[ours + "self_attention.linear_qkv.bias"]
            for column in 0..<(3 * c) {
                let row = qkvRow(hfColumn: column, hidden: c, headDim: config.headDim)
                bias[row] = qkvBias[column]
                for i in 0..<c { weight[row * c + i] = qkvWeight[i * 3 * c + column] }
            }
            try copyTransposed(hf + "attn.c_proj.weight", ours + "self_attention.linear_proj.weight", rows: c, cols: c)
            try copy(hf + "attn.c_proj.bias", ours + "self_attention.linear_proj.bias")
            try copy(hf + "ln_2.weight", ours + "pre_mlp_layernorm.weight")
            try copy(hf + "ln_2.bias", ours + "pre_mlp_layernorm.bias")
            try copyTransposed(hf + "mlp.c_fc.weight", ours + "mlp.linear_fc1.weight", rows: c, cols: f)
            try copy(hf + "mlp.c_fc.bias", ours + "mlp.linear_fc1.bias")
            try copyTransposed(hf + "mlp.c_proj.weight", ours + "mlp.linear_fc2.weight", rows: f, cols: c)
            try copy(hf + "mlp.c_proj.bias", ours + "mlp.linear_fc2.bias")
        }
        try copy("transformer.ln_f.weight", "decoder.final_layernorm.weight")
        try copy("transformer.ln_f.bias", "decoder.final_layernorm.bias")
    }

    /// The tensors of `store` under Hugging Face GPT-2 names and shapes (Conv1D `[in, out]`,
    /// `c_attn` columns `[queries | keys | values]`, the word embeddings without the padding
    /// rows), in the order `GPT2LMHeadModel` lists them; a tied output layer is omitted, an
    /// untied one is `lm_head.weight`.
    public static func export(_ store: ParameterStore, config: GPTConfig) -> [(name: String, shape: [Int], values: [Float])] {
        let c = config.hiddenSize, f = config.ffnHiddenSize
        var tensors = [(name: String, shape: [Int], values: [Float])]()
        func plain(_ hf: String, _ name: String) {
            let (_, spec) = store.layout.entry(name)
            tensors.append((hf, spec.shape, store.values(name)))
        }
        func transposed(_ hf: String, _ name: String, rows: Int, cols: Int) {
            // ours [out = cols, in = rows] -> Hugging Face [rows, cols]
            let source = store[name]
            var values = [Float](repeating: 0, count: rows * cols)
            for i in 0..<rows {
                for o in 0..<cols { values[i * cols + o] = source[o * rows + i] }
            }
            tensors.append((hf, [rows, cols], values))
        }
        func vocabularyRows(_ hf: String, _ name: String) {
            tensors.append((hf, [config.vocabSize, c], Array(UnsafeBufferPointer(start: store[name], count: config.vocabSize * c))))
        }
        vocabularyRows("transformer.wte.weight", wordEmbeddingName)
        plain("transformer.wpe.weight", "embedding.position_embeddings.weight")
        for layer in 0..<config.numLayers {
            let hf = "transformer.h.\(layer).", ours = "decoder.layers.\(layer)."
            plain(hf + "ln_1.weight", ours + "input_layernorm.weight")
            plain(hf + "ln_1.bias", ours + "input_layernorm.bias")
            let weight = store[ours + "self_attention.linear_qkv.weight"]
            let bias = store[ours + "self_attention.linear_qkv.bias"]
            var qkvWeight = [Float](repeating: 0, count: 3 * c * c), qkvBias = [Float](repeating: 0, count: 3 * c)
            for column in 0..<(3 * c) {
                let row = qkvRow(hfColumn: column, hidden: c, headDim: config.headDim)
                qkvBias[column] = bias[row]
                for i in 0..<c { qkvWeight[i * 3 * c + column] = weight[row * c + i] }
            }
            tensors.append((hf + "attn.c_attn.weight", [c, 3 * c], qkvWeight))
            tensors.append((hf + "attn.c_attn.bias", [3 * c], qkvBias))
            transposed(hf + "attn.c_proj.weight", ours + "self_attention.linear_proj.weight", rows: c, cols: c)
            plain(hf + "attn.c_proj.bias", ours + "self_attention.linear_proj.bias")
            plain(hf + "ln_2.weight", ours + "pre_mlp_layernorm.weight")
            plain(hf + "ln_2.bias", ours + "pre_mlp_layernorm.bias")
            transposed(hf + "mlp.c_fc.weight", ours + "mlp.linear_fc1.weight", rows: c, cols: f)
            plain(hf + "mlp.c_fc.bias", ours + "mlp.linear_fc1.bias")
            transposed(hf + "mlp.c_proj.weight", ours + "mlp.linear_fc2.weight", rows: f, cols: c)
            plain(hf + "mlp.c_proj.bias", ours + "mlp.linear_fc2.bias")
        }
        plain("transformer.ln_f.weight", "decoder.final_layernorm.weight")
        plain("transformer.ln_f.bias", "decoder.final_layernorm.bias")
        if config.untieEmbeddingsAndOutputWeights { vocabularyRows("lm_head.weight", outputLayerName) }
        return tensors
    }

    /// A Hugging Face tensor whose size does not fit the configured model.
    public enum ImportError: Error, CustomStringConvertible, Equatable {
        case shapeMismatch(tensor: String, found: Int, expected: [Int])

        public var description: String {
            switch self {
            case let .shapeMismatch(tensor, found, expected):
                "tensor '\(tensor)' has \(found) values but the configured model expects shape \(expected) (wrong --hidden-size, --num-layers or vocabulary?)"
            }
        }
    }

    /// Our fused-QKV row for Hugging Face's c_attn output column.
    static func qkvRow(hfColumn column: Int, hidden c: Int, headDim d: Int) -> Int {
        let section = column / c          // 0 query, 1 key, 2 value
        let head = (column % c) / d
        let j = column % d
        return head * 3 * d + section * d + j
    }
}
