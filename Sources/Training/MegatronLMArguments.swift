import Models
import TorchFormat

/// The `args` namespace of a Megatron-LM checkpoint (Megatron-LM's argument names), read into
/// this project's `GPTConfig`; an architecture this project does not implement is refused with
/// the Megatron-LM flag that names it.
struct MegatronLMArguments {
    let values: PickleDict
    let path: String

    init(_ file: TorchFile) throws(TrainingError) {
        try self.init(state: file.root, path: file.path)
    }

    /// The `args` entry of the saved dict `state` (read from `path`).
    init(state: PickleValue, path: String) throws(TrainingError) {
        guard let values = state.entries?["args"]?.entries else {
            throw .checkpoint(path: path, reason: "no 'args' namespace: not a Megatron-LM checkpoint")
        }
        self.values = values
        self.path = path
    }

    /// Whether `name` is absent or None.
    func isUnset(_ name: String) -> Bool {
        guard let value = values[name] else { return true }
        if case .none = value { return true }
        return false
    }

    func integer(_ name: String, default fallback: Int? = nil) throws(TrainingError) -> Int {
        if isUnset(name), let fallback { return fallback }
        guard let value = values[name]?.int else { throw .checkpoint(path: path, reason: "args.\(name) is missing or not an integer") }
        return value
    }

    func flag(_ name: String) -> Bool { values[name]?.int == 1 }

    func string(_ name: String) -> String? { values[name]?.string }

    /// Model chunks per pipeline stage: 1, or with the interleaved schedule
    /// `virtual_pipeline_model_parallel_size` (or what `num_layers_per_virtual_pipeline_stage`
    /// gives); the layers must split evenly over the stages and chunks.
    func modelChunks(pipelineParallel p: Int, layers: Int) throws(TrainingError) -> Int {
        var v = 1
        if !isUnset("virtual_pipeline_model_parallel_size") {
            v = try integer("virtual_pipeline_model_parallel_size")
        } else if !isUnset("num_layers_per_virtual_pipeline_stage") {
            let perChunk = try integer("num_layers_per_virtual_pipeline_stage")
            guard perChunk > 0, layers % (p * perChunk) == 0 else {
                throw .checkpoint(path: path, reason: "args.num_layers_per_virtual_pipeline_stage \(perChunk) does not divide \(layers) layers over \(p) stages")
            }
            v = layers / (p * perChunk)
        }
        guard v >= 1, v <= layers, layers % (p * v) == 0 else {
            throw .checkpoint(path: path, reason: "\(layers) layers do not split evenly over \(p) pipeline stages x \(v) model chunks")
        }
        return v
    }

    /// The model's shape. The vocabulary is `padded_vocab_size` (Megatron's padding already
    /// applied), all of it in the softmax.
    func modelConfig() throws(TrainingError) -> GPTConfig {
        func refuse(_ flag: String, _ what: String) -> TrainingError {
            .checkpoint(path: path, reason: "\(flag): \(what) is not implemented in this project")
        }
        if let type = string("position_embedding_type"), type != "learned_absolute" { throw refuse("--position-embedding-type \(type)", "this position embedding") }
        if let norm = string("normalization"), norm != "LayerNorm" { throw refuse("--normalization \(norm)", "this normalization") }
        if flag("swiglu") { throw refuse("--swiglu", "SwiGLU") }
        if flag("apply_layernorm_1p") { throw refuse("--apply-layernorm-1p", "LayerNorm weights stored as gamma - 1") }
        if flag("qk_layernorm") { throw refuse("--qk-layernorm", "LayerNorms on queries and keys") }
        if flag("squared_relu") { throw refuse("--squared-relu", "squared ReLU") }
        if flag("apply_residual_connection_post_layernorm") {
            throw refuse("--apply-residual-connection-post-layernorm", "the residual taken after the LayerNorm")
        }
        if values["add_bias_linear"]?.int == 0 { throw refuse("--disable-bias-linear", "linear layers without bias") }
        if !isUnset("num_experts") { throw refuse("--num-experts", "mixture of experts") }
        let heads = try integer("num_attention_heads")
        let queryGroups = try integer("num_query_groups", default: heads)
        if flag("group_query_attention") && queryGroups != heads {
            throw refuse("--group-query-attention", "grouped-query attention")
        }
        if !isUnset("decoder_first_pipeline_num_layers") || !isUnset("decoder_last_pipeline_num_layers") {
            throw refuse("--decoder-first-pipeline-num-layers", "uneven pipeline stages")
        }
        // Megatron's fused bias-GELU and --openai-gelu are the tanh approximation; without them
        // the MLP uses the exact erf GELU (F.gelu).
        let exactGELU = values["bias_gelu_fusion"]?.int == 0 && !flag("openai_gelu")
        let hidden = try integer("hidden_size")
        guard hidden > 0, hidden < 1 << 24, heads > 0, heads <= hidden else {
            throw .checkpoint(path: path, reason: "args.hidden_size \(hidden) or num_attention_heads \(heads) is out of range")
        }
        let ffn = try integer("ffn_hidden_size", default: 4 * hidden)
        guard ffn > 0, ffn < 1 << 26 else { throw .checkpoint(path: path, reason: "args.ffn_hidden_size \(ffn) is out of range") }
        if let kv = values["kv_channels"]?.int, kv != hidden / heads || hidden % heads != 0 {
            throw refuse("--kv-channels", "heads narrower than hidden / heads")
        }
        let epsilon = values["norm_epsilon"]?.double ?? values["layernorm_epsilon"]?.double ?? 1e-5
        // The vocabulary is the padded one; Megatron's --make-vocab-size-divisible-by is kept (for
        // export) when the padded size is a multiple of it, as Megatron pads to a multiple of it x TP.
        let padded = try integer("padded_vocab_size")
        let divisibleBy = try integer("make_vocab_size_divisible_by", default: 1)
        return GPTConfig(numLayers: try integer("num_layers"), hiddenSize: hidden, numAttentionHeads: heads,
                         maxPositionEmbeddings: try integer("max_position_embeddings"),
                         vocabSize: padded, makeVocabSizeDivisibleBy: divisibleBy > 0 && padded % divisibleBy == 0 ? divisibleBy : 1,
                         layerNormEpsilon: Float(epsilon), maskPaddedVocabulary: false, exactGELU: exactGELU,
                         ffnHiddenSize: ffn, untieEmbeddingsAndOutputWeights: flag("untie_embeddings_and_output_weights"))
    }
}
