import Models
import Parameters

/// The BERT reference of `scripts/reference/bert_model_fixtures.py`: its batch, its model shape,
/// and its two cases' weights (`post`, `pre`) loaded into a model.
public struct BERTReferenceFixture {
    /// `Tests/ModelTests/Fixtures/bert_reference.safetensors`.
    public static let path = String(#filePath.dropLast("TestSupport/BERTReferenceFixture.swift".count)) + "ModelTests/Fixtures/bert_reference.safetensors"
    /// The Hugging Face `save_pretrained` directory of the post-LN case.
    public static let huggingFaceDirectory = String(#filePath.dropLast("TestSupport/BERTReferenceFixture.swift".count)) + "ModelTests/Fixtures/hf_bert"

    public let file: SafeTensorsFile
    /// The fixture's padded batch.
    public let batch: BERTMicroBatch
    public let metadata: [String: String]

    public init() throws {
        let file = try SafeTensorsFile(path: Self.path)
        self.file = file
        metadata = file.metadata
        let ints = { (name: String) throws -> [Int32] in try file.integers(name).map { Int32($0) } }
        batch = BERTMicroBatch(batch: Int(file.metadata["batch"]!)!, seqLength: Int(file.metadata["seq_length"]!)!,
                               tokens: try ints("tokens"), tokenTypes: try ints("token_types"), lengths: try ints("lengths"),
                               labels: try ints("labels"), lossMask: try file.floats("loss_mask"),
                               sequenceLabels: try ints("sentence_order"))
    }

    /// The fixture's model shape, post- or pre-LN, with `head`.
    public func config(postLayerNorm: Bool, head: BERTHead = .pretraining) -> GPTConfig {
        func meta(_ key: String) -> Int { Int(metadata[key]!)! }
        return GPTConfig(numLayers: meta("num_layers"), hiddenSize: meta("hidden_size"), numAttentionHeads: meta("num_heads"),
                         maxPositionEmbeddings: meta("max_positions"), vocabSize: meta("vocab_size"),
                         makeVocabSizeDivisibleBy: 1, layerNormEpsilon: Float(metadata["layernorm_epsilon"]!)!,
                         exactGELU: true,
                         bert: BERTSettings(residualConnectionPostLayerNorm: postLayerNorm,
                                            tokenTypes: meta("token_types"), head: head))
    }

    /// A model holding case `name`'s weights: "post" and "pre" pretraining, "classify" and
    /// "choice" fine-tuning (post-LN, with `head`).
    /// Case `name`'s model (its weights) with `head`, `hiddenDropout` configured, computing in
    /// `precision`.
    public func model(_ name: String, head: BERTHead = .pretraining, hiddenDropout: Float = 0,
                      precision: ComputePrecision = .fp32) throws -> GPTModel {
        var config = config(postLayerNorm: name != "pre", head: head)
        config.hiddenDropout = hiddenDropout
        let model = try GPTModel(config: config, precision: precision)
        for (index, spec) in model.layout.specs.enumerated() {
            let values = try file.floats("\(name).w.\(spec.name)")
            precondition(values.count == spec.count, "the fixture's \(spec.name) does not fit the model")
            model.params.pointer(at: index).update(from: values, count: spec.count)
        }
        model.weightsDidChange()
        return model
    }
}
