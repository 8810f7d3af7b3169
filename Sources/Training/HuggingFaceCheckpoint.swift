import FileSupport
import Models
import Optimizer
import Parameters

/// A Hugging Face GPT-2 model directory (`config.json` + `model.safetensors`, as
/// `GPT2LMHeadModel.save_pretrained` writes them) read into or written from a `GPTModel`; or a
/// `BertForPreTraining` one, for a post-LN BERT (`HuggingFaceBERTCheckpoint.swift`).
public enum HuggingFaceCheckpoint {
    /// Reads the model in `directory`. Only what this project's GPT supports is accepted:
    /// GPT-2 (`model_type` gpt2), tanh GELU (`gelu_new`, `gelu_pytorch_tanh`) or exact (`gelu`), any
    /// MLP width (`n_inner`), tied output layer.
    public static func read(directory: String) throws(TrainingError) -> GPTModel {
        let configPath = directory + "/config.json"
        let json: JSONValue
        do {
            let bytes = try MappedFile.read(path: configPath)
            json = try JSONValue.parse(utf8: bytes)
        } catch let error as FileError {
            throw .checkpoint(path: configPath, reason: error.reason)
        } catch {
            throw .checkpoint(path: configPath, reason: "malformed JSON: \(error)")
        }
        func integer(_ key: String) throws(TrainingError) -> Int {
            guard case let .number(x)? = json[key], x == x.rounded(), x > 0, x <= Double(Int32.max) else {
                throw .checkpoint(path: configPath, reason: "\(key) is missing or not a positive integer below 2^31")
            }
            return Int(x)
        }
        if case .string("bert")? = json["model_type"] { return try readBERT(json, directory: directory) }
        if case let .string(type)? = json["model_type"], type != "gpt2" {
            throw .checkpoint(path: configPath, reason: "model_type \(type) is not supported (gpt2 or bert)")
        }
        // gelu_new and gelu_pytorch_tanh are the tanh GELU, gelu the exact erf one.
        var exactGELU = false
        if case let .string(activation)? = json["activation_function"] {
            guard ["gelu_new", "gelu_pytorch_tanh", "gelu"].contains(activation) else {
                throw .checkpoint(path: configPath, reason: "activation_function \(activation) is not supported (gelu_new, gelu_pytorch_tanh or gelu)")
            }
            exactGELU = activation == "gelu"
        }
        var ffn: Int?
        if let inner = json["n_inner"], inner != .null {
            guard case let .number(x) = inner, x == x.rounded(), x > 0, x < 1e8 else {
                throw .checkpoint(path: configPath, reason: "n_inner must be a positive integer or null")
            }
            ffn = Int(x)
        }
        var epsilon: Float = 1e-5
        if case let .number(x)? = json["layer_norm_epsilon"] { epsilon = Float(x) }
        let config = GPTConfig(numLayers: try integer("n_layer"), hiddenSize: try integer("n_embd"),
                               numAttentionHeads: try integer("n_head"), maxPositionEmbeddings: try integer("n_positions"),
                               vocabSize: try integer("vocab_size"), layerNormEpsilon: epsilon,
                               maskPaddedVocabulary: true, exactGELU: exactGELU, ffnHiddenSize: ffn,
                               untieEmbeddingsAndOutputWeights: json["tie_word_embeddings"] == .bool(false))
        do { try config.validate() } catch {
            throw .checkpoint(path: configPath, reason: "not a usable model: \(error.description)")
        }
        let weightsPath = directory + "/model.safetensors"
        do {
            let model = try GPTModel(config: config)
            let file = try SafeTensorsFile(path: weightsPath)
            try HuggingFaceGPT2.load(into: model.params, config: config) { name in
                // GPT2LMHeadModel saves "transformer.*"; a bare GPT2Model saves the same names without it.
                let bare = String(name.dropFirst("transformer.".count))
                return try file.floats(file.entries[name] == nil && name.hasPrefix("transformer.") ? bare : name)
            }
            return model
        } catch let error as TrainingError {
            throw error
        } catch {
            throw .checkpoint(path: weightsPath, reason: "\(error)")
        }
    }

    /// Writes `model` as a Hugging Face GPT-2 directory (created if needed), each file atomically.
    public static func write(_ model: GPTModel, to directory: String, eosTokenID: Int32? = nil) throws(TrainingError) {
        let c = model.config
        if let bert = c.bert, let refusal = HuggingFaceBERT.exportRefusal(bert) {
            throw .checkpoint(path: directory, reason: "cannot write a Hugging Face BertForPreTraining: \(refusal)")
        }
        do { try Directory.create(directory) } catch { throw .checkpoint(path: directory, reason: error.reason) }
        let tensors = c.bert == nil ? HuggingFaceGPT2.export(model.params, config: c) : HuggingFaceBERT.export(model.params, config: c)
        do {
            try writeSafeTensors(tensors, to: directory + "/model.safetensors")
        } catch {
            throw .checkpoint(path: directory, reason: error.description)
        }
        var fields: [(key: String, value: JSONValue)] = c.bert != nil ? bertConfigFields(model) : [
            ("architectures", .array([.string("GPT2LMHeadModel")])), ("model_type", .string("gpt2")),
            ("n_layer", .number(Double(c.numLayers))), ("n_embd", .number(Double(c.hiddenSize))),
            ("n_head", .number(Double(c.numAttentionHeads))), ("n_positions", .number(Double(c.maxPositionEmbeddings))),
            ("n_ctx", .number(Double(c.maxPositionEmbeddings))), ("vocab_size", .number(Double(c.vocabSize))),
            ("n_inner", model.config.ffnHiddenSizeSetting.map { .number(Double($0)) } ?? .null), ("activation_function", .string(model.config.exactGELU ? "gelu" : "gelu_new")),
            ("layer_norm_epsilon", .number(Double(c.layerNormEpsilon))), ("initializer_range", .number(Double(c.initMethodStd))),
            ("resid_pdrop", .number(0)), ("embd_pdrop", .number(0)), ("attn_pdrop", .number(0)),
            ("tie_word_embeddings", .bool(!c.untieEmbeddingsAndOutputWeights)), ("torch_dtype", .string("float32")),
        ]
        if let eosTokenID {
            fields += [("bos_token_id", .number(Double(eosTokenID))), ("eos_token_id", .number(Double(eosTokenID)))]
        }
        do {
            try AtomicFile.write(Array((JSONValue.object(fields).serialized + "\n").utf8), to: directory + "/config.json")
        } catch {
            throw .checkpoint(path: directory, reason: error.description)
        }
    }

    private static func writeSafeTensors(_ tensors: [(name: String, shape: [Int], values: [Float])],
                                         to path: String) throws(TensorFileError) {
        var pointers = [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)]()
        let storage = tensors.map { tensor -> UnsafeMutableBufferPointer<Float> in
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: tensor.values.count)
            _ = buffer.initialize(from: tensor.values)
            return buffer
        }
        defer { storage.forEach { $0.deallocate() } }
        for (tensor, buffer) in zip(tensors, storage) { pointers.append((tensor.name, tensor.shape, UnsafeBufferPointer(buffer))) }
        try SafeTensorsFile.write(pointers, metadata: ["format": "pt"], to: path)
    }
}
