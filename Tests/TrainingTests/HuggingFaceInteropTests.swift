import FileSupport
import Foundation
import Kernels
import Models
import Parameters
import Testing
import TestSupport
@testable import Training

/// `megatron convert` against transformers' GPT2LMHeadModel (fixture from
/// `scripts/reference/hf_interop.py generate`: odd sizes, perturbed LayerNorms).
@Suite struct HuggingFaceInteropTests {
    static let fixtures = fixturesDirectory()

    /// `-gelu-untied`: a model with the exact erf GELU (`activation_function: gelu`) and its own
    /// `lm_head.weight` (`tie_word_embeddings: false`).
    @Test(arguments: ["", "-gelu-untied"])
    func importedModelGivesTransformersLogits(variant: String) throws {
        let model = try HuggingFaceCheckpoint.read(directory: Self.fixtures + "/hf" + variant)
        #expect(model.config.vocabSize == 301 && model.config.paddedVocabSize == 384)
        #expect(model.config.exactGELU == !variant.isEmpty && model.config.untieEmbeddingsAndOutputWeights == !variant.isEmpty)
        let reference = try SafeTensorsFile(path: Self.fixtures + "/reference\(variant).safetensors")
        let tokens = try reference.integers("tokens").map { Int32($0) }
        let expected = try reference.floats("logits")
        try model.forward(tokens: tokens, targets: [Int32](repeating: 0, count: tokens.count), batch: 1, seqLength: tokens.count)
        var worst: Float = 0, scale: Float = 0
        for t in 0..<tokens.count {
            for v in 0..<301 {
                worst = max(worst, abs(model.logits[t * 384 + v] - expected[t * 301 + v]))
                scale = max(scale, abs(expected[t * 301 + v]))
            }
        }
        print("HF import\(variant): max |logit - transformers| = \(worst) (logits up to \(scale))")
        #expect(worst <= 1e-5 * max(1, scale))
    }

    /// The language-model loss of an imported model equals transformers' (next-token
    /// cross-entropy over the true 301-token vocabulary, here from transformers' own logits): the
    /// 83 padding ids (zero rows) stay out of the softmax, in training too.
    @Test func importedModelGivesTransformersLoss() throws {
        let model = try HuggingFaceCheckpoint.read(directory: Self.fixtures + "/hf")
        #expect(model.config.maskPaddedVocabulary)
        let reference = try SafeTensorsFile(path: Self.fixtures + "/reference.safetensors")
        let tokens = try reference.integers("tokens").map { Int32($0) }
        let expected = try reference.floats("logits")
        let n = tokens.count, vocab = 301
        var transformersLoss = 0.0
        for t in 0..<(n - 1) {
            let row = expected[(t * vocab)..<((t + 1) * vocab)].map(Double.init)
            let largest = row.max()!
            let logSumExp = largest + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - largest) })
            transformersLoss += logSumExp - row[Int(tokens[t + 1])]
        }
        transformersLoss /= Double(n - 1)
        let targets = Array(tokens.dropFirst()) + [CrossEntropy.ignoreIndex]
        let loss = try model.forward(tokens: tokens, targets: targets, batch: 1, seqLength: n).mean
        print("HF import: loss \(loss), transformers \(transformersLoss)")
        #expect(abs(loss - transformersLoss) / transformersLoss < 1e-5)
        // The padding gets no gradient, so training keeps it out of the softmax too.
        model.backward()
        let embedding = model.grads.values(wordEmbeddingName)
        #expect(embedding[(vocab * model.config.hiddenSize)...].allSatisfy { $0 == 0 })
        // Ids of the padding are not valid input for it.
        #expect(throws: GPTInputError.self) {
            try model.forward(tokens: [301], targets: [0], batch: 1, seqLength: 1)
        }
    }

    @Test func exportThenImportIsExact() throws {
        let model = try HuggingFaceCheckpoint.read(directory: Self.fixtures + "/hf")
        let directory = "/tmp/megatron-hf-\(UInt32.random(in: 0...UInt32.max))"
        try HuggingFaceCheckpoint.write(model, to: directory, eosTokenID: 300)
        let back = try HuggingFaceCheckpoint.read(directory: directory)
        let n = model.layout.totalCount
        #expect((0..<n).allSatisfy { model.params.buffer.pointer[$0] == back.params.buffer.pointer[$0] })
        #expect(back.config == model.config)
        // An untied output layer is lm_head.weight with tie_word_embeddings false (transformers
        // loads the export of the untied Megatron-LM fixture and gives megatron-core's loss to 2e-7).
        let (untied, _) = try MegatronLMCheckpoint.read(directory: MegatronLMCheckpointTests.fixtures + "/tp2pp2-untied-eps1e-6")
        try HuggingFaceCheckpoint.write(untied, to: directory + "-untied")
        let config = try JSONValue.parse(utf8: try MappedFile.read(path: directory + "-untied/config.json"))
        #expect(config["tie_word_embeddings"] == .bool(false))
        let untiedBack = try HuggingFaceCheckpoint.read(directory: directory + "-untied")
        #expect(untiedBack.config.untieEmbeddingsAndOutputWeights)
        // (Read back from Hugging Face, the vocabulary is padded again, to a multiple of 128: the
        // first rows are the exported ones.)
        for spec in untied.layout.specs {
            #expect(Array(untiedBack.params.values(spec.name).prefix(spec.count)) == untied.params.values(spec.name), "\(spec.name)")
        }
        try? FileManager.default.removeItem(atPath: directory)
        try? FileManager.default.removeItem(atPath: directory + "-untied")
    }

    @Test func unsupportedConfigsAreClearErrors() throws {
        let directory = "/tmp/megatron-hf-bad-\(UInt32.random(in: 0...UInt32.max))"
        try Directory.create(directory)
        try AtomicFile.write(Array(#"{"model_type": "llama", "n_layer": 2}"#.utf8), to: directory + "/config.json")
        #expect(throws: TrainingError.self) { try HuggingFaceCheckpoint.read(directory: directory) }
        try AtomicFile.write(Array(#"{"model_type": "gpt2", "n_layer": 2, "n_embd": 8, "n_head": 2, "n_positions": 4, "vocab_size": 10}"#.utf8),
                             to: directory + "/config.json")
        do {
            _ = try HuggingFaceCheckpoint.read(directory: directory)
            Issue.record("a missing model.safetensors must fail")
        } catch {
            #expect("\(error)".contains("model.safetensors"))
        }
    }
}
