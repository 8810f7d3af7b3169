import FileSupport
import Models
import Parameters

/// Hugging Face `BertForPreTraining` directories (`config.json` + `model.safetensors`), read as
/// and written from a post-LN BERT (`HuggingFaceBERT` maps the tensors).
extension HuggingFaceCheckpoint {
    /// The model of a `model_type: bert` config: absolute positions, the exact (`gelu`) or tanh
    /// (`gelu_new`) GELU, tied (or untied) output layer.
    static func readBERT(_ json: JSONValue, directory: String) throws(TrainingError) -> GPTModel {
        let configPath = directory + "/config.json"
        func integer(_ key: String, default value: Int? = nil) throws(TrainingError) -> Int {
            guard let field = json[key] else {
                if let value { return value }
                throw .checkpoint(path: configPath, reason: "\(key) is missing")
            }
            guard case let .number(x) = field, x == x.rounded(), x > 0, x < 1e9 else {
                throw .checkpoint(path: configPath, reason: "\(key) must be a positive integer")
            }
            return Int(x)
        }
        if let type = json["position_embedding_type"], type != .string("absolute") {
            throw .checkpoint(path: configPath, reason: "position_embedding_type \(type.serialized) is not supported (absolute only)")
        }
        var exactGELU = true
        if case let .string(activation)? = json["hidden_act"] {
            guard ["gelu", "gelu_new", "gelu_pytorch_tanh"].contains(activation) else {
                throw .checkpoint(path: configPath, reason: "hidden_act \(activation) is not supported (gelu, gelu_new or gelu_pytorch_tanh)")
            }
            exactGELU = activation == "gelu"
        }
        var epsilon: Float = 1e-12
        if case let .number(x)? = json["layer_norm_eps"] { epsilon = Float(x) }
        let config = GPTConfig(numLayers: try integer("num_hidden_layers"), hiddenSize: try integer("hidden_size"),
                               numAttentionHeads: try integer("num_attention_heads"),
                               maxPositionEmbeddings: try integer("max_position_embeddings"), vocabSize: try integer("vocab_size"),
                               layerNormEpsilon: epsilon, maskPaddedVocabulary: true, exactGELU: exactGELU,
                               ffnHiddenSize: try integer("intermediate_size"),
                               untieEmbeddingsAndOutputWeights: json["tie_word_embeddings"] == .bool(false),
                               bert: BERTSettings(residualConnectionPostLayerNorm: true,
                                                  tokenTypes: try integer("type_vocab_size", default: 2), binaryHead: true))
        let weightsPath = directory + "/model.safetensors"
        do {
            let model = try GPTModel(config: config)
            let file = try SafeTensorsFile(path: weightsPath)
            try HuggingFaceBERT.load(into: model.params, config: config) { name in try file.floats(name) }
            return model
        } catch let error as TrainingError {
            throw error
        } catch {
            throw .checkpoint(path: weightsPath, reason: "\(error)")
        }
    }

    /// `config.json` fields of `BertForPreTraining` for `model` (whose tensors `HuggingFaceBERT.export` gives).
    static func bertConfigFields(_ model: GPTModel) -> [(key: String, value: JSONValue)] {
        let c = model.config
        return [
            ("architectures", .array([.string("BertForPreTraining")])), ("model_type", .string("bert")),
            ("num_hidden_layers", .number(Double(c.numLayers))), ("hidden_size", .number(Double(c.hiddenSize))),
            ("num_attention_heads", .number(Double(c.numAttentionHeads))),
            ("intermediate_size", .number(Double(c.ffnHiddenSize))),
            ("max_position_embeddings", .number(Double(c.maxPositionEmbeddings))), ("vocab_size", .number(Double(c.vocabSize))),
            ("type_vocab_size", .number(Double(c.bert?.tokenTypes ?? 2))), ("hidden_act", .string(c.exactGELU ? "gelu" : "gelu_new")),
            ("layer_norm_eps", .number(Double(c.layerNormEpsilon))), ("initializer_range", .number(Double(c.initMethodStd))),
            ("hidden_dropout_prob", .number(0)), ("attention_probs_dropout_prob", .number(0)),
            ("position_embedding_type", .string("absolute")), ("pad_token_id", .number(0)),
            ("tie_word_embeddings", .bool(!c.untieEmbeddingsAndOutputWeights)), ("torch_dtype", .string("float32")),
        ]
    }
}
