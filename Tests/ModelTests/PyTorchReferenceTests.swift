import Kernels
import Models
import Optimizer
import Parameters
import Testing
import TestSupport

/// The Swift GPT against Hugging Face's GPT2LMHeadModel run in float64 by
/// `scripts/reference/gpt_fixtures.py`: logits, loss, every gradient, two AdamW steps.
@Suite struct PyTorchReferenceTests {
    static let fixturePath = String(#filePath.dropLast("PyTorchReferenceTests.swift".count)) + "Fixtures/gpt_reference.safetensors"

    struct Fixture {
        let file: SafeTensorsFile
        let config: GPTConfig
        let batch: Int, seqLength: Int
        let tokens: [Int32], targets: [Int32], lossMask: [Float]
        let hyperparameters: AdamW.Hyperparameters

        init() throws {
            let file = try SafeTensorsFile(path: PyTorchReferenceTests.fixturePath)
            let metadata = file.metadata
            func meta(_ key: String) -> String { metadata[key] ?? "" }
            self.file = file
            config = GPTConfig(numLayers: Int(meta("num_layers"))!, hiddenSize: Int(meta("hidden_size"))!,
                               numAttentionHeads: Int(meta("num_heads"))!, maxPositionEmbeddings: Int(meta("max_positions"))!,
                               vocabSize: Int(meta("vocab_size"))!)
            batch = Int(meta("batch"))!
            seqLength = Int(meta("seq_length"))!
            tokens = try file.integers("input_ids").map { Int32($0) }
            targets = try file.integers("targets").map { Int32($0) }
            lossMask = try file.floats("loss_mask")
            hyperparameters = AdamW.Hyperparameters(learningRate: Float(meta("lr"))!, beta1: Float(meta("beta1"))!,
                                                    beta2: Float(meta("beta2"))!, epsilon: Float(meta("eps"))!,
                                                    weightDecay: Float(meta("weight_decay"))!)
        }

        /// A store holding the fixture's tensors under `prefix`, mapped into our layout.
        func store(_ prefix: String, layout: ParameterLayout) throws -> ParameterStore {
            let store = ParameterStore(layout: layout)
            try HuggingFaceGPT2.load(into: store, config: config, prefix: prefix) { try file.floats($0) }
            return store
        }

        func model() throws -> GPTModel {
            let model = try GPTModel(config: config, seed: 1)
            try HuggingFaceGPT2.load(into: model.params, config: config, prefix: "init/") { try file.floats($0) }
            return model
        }

        func forward(_ model: GPTModel) throws -> Double {
            try model.forward(tokens: tokens, targets: targets, lossMask: lossMask, batch: batch, seqLength: seqLength).mean
        }
    }

    @Test func paddedVocabularyMatchesTheReference() throws {
        let fixture = try Fixture()
        #expect(fixture.config.paddedVocabSize == Int(fixture.file.metadata["padded_vocab_size"]!)!)
    }

    @Test func lossAndLogitsMatch() throws {
        let fixture = try Fixture()
        let model = try fixture.model()
        let loss = try fixture.forward(model)
        let expected = try fixture.file.floats("loss")[0]
        #expect(abs(loss - Double(expected)) / Double(expected) < 1e-5)
        let count = fixture.batch * fixture.seqLength * fixture.config.paddedVocabSize
        let logits = Array(UnsafeBufferPointer(start: model.logits, count: count))
        #expect(relativeError(logits, try fixture.file.floats("logits")) < 1e-5)
    }

    @Test func everyGradientMatches() throws {
        let fixture = try Fixture()
        let model = try fixture.model()
        _ = try fixture.forward(model)
        model.backward()
        let expected = try fixture.store("grad/", layout: model.layout)
        for spec in model.layout.specs {
            let error = relativeError(model.grads.values(spec.name), expected.values(spec.name))
            #expect(error < 1e-4, "gradient of \(spec.name): relative error \(error)")
        }
    }

    @Test func twoAdamWStepsMatch() throws {
        let fixture = try Fixture()
        let model = try fixture.model()
        let optimizer = AdamWOptimizer(layout: model.layout, hyperparameters: fixture.hyperparameters)
        let initial = model.params.buffer.array
        for step in 1...2 {
            model.zeroGrad()
            _ = try fixture.forward(model)
            model.backward()
            optimizer.update(params: model.params, grads: model.grads)
            let expected = try fixture.store("step\(step)/", layout: model.layout)
            for spec in model.layout.specs {
                let error = maxAbsoluteError(model.params.values(spec.name), expected.values(spec.name))
                #expect(error < 1e-5, "\(spec.name) after step \(step): max abs error \(error)")
            }
            // The update itself (not just the weights) must agree closely.
            let update = zip(model.params.buffer.array, initial).map { $0 - $1 }
            let expectedUpdate = zip(expected.buffer.array, initial).map { $0 - $1 }
            #expect(relativeError(update, expectedUpdate) < 1e-3, "update of step \(step)")
        }
        let loss = try fixture.forward(model)
        let expectedLoss = try fixture.file.floats("loss_after_step2")[0]
        #expect(abs(loss - Double(expectedLoss)) / Double(expectedLoss) < 1e-5)
    }
}
