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

        func model(precision: ComputePrecision = .fp32) throws -> GPTModel {
            let model = try GPTModel(config: config, seed: 1, precision: precision)
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

    @Test func importIntoTheWrongShapeNamesTheTensor() throws {
        let fixture = try Fixture()
        var wrong = fixture.config
        wrong.hiddenSize = 36
        let model = try GPTModel(config: wrong)
        #expect(throws: HuggingFaceGPT2.ImportError.shapeMismatch(tensor: "init/transformer.wte.weight",
                                                                 found: 256 * 48, expected: [211, 36])) {
            try HuggingFaceGPT2.load(into: model.params, config: wrong, prefix: "init/") { try fixture.file.floats($0) }
        }
    }

    @Test func lossAndLogitsMatch() throws {
        let fixture = try Fixture()
        let model = try fixture.model()
        let loss = try fixture.forward(model)
        let expected = try fixture.file.floats("loss")[0]
        let lossError = abs(loss - Double(expected)) / Double(expected)
        #expect(lossError < 1e-5)
        let count = fixture.batch * fixture.seqLength * fixture.config.paddedVocabSize
        let logits = Array(UnsafeBufferPointer(start: model.logits, count: count))
        let logitsError = relativeError(logits, try fixture.file.floats("logits"))
        #expect(logitsError < 1e-5)
        print("PyTorch reference: loss relative error \(lossError), logits relative error \(logitsError)")
    }

    @Test func everyGradientMatches() throws {
        let fixture = try Fixture()
        let model = try fixture.model()
        _ = try fixture.forward(model)
        model.backward()
        let expected = try fixture.store("grad/", layout: model.layout)
        var worst = 0.0
        for spec in model.layout.specs {
            let error = relativeError(model.grads.values(spec.name), expected.values(spec.name))
            #expect(error < 1e-4, "gradient of \(spec.name): relative error \(error)")
            worst = max(worst, error)
        }
        print("PyTorch reference: largest gradient relative error \(worst) over \(model.layout.specs.count) tensors")
    }

    /// Weights after two full AdamW steps. Some elements are checked against a bound rather
    /// than a tolerance, by construction: Adam's first step moves an element by
    /// `lr * g / (|g| + eps)`, whose sensitivity to a gradient error is `lr * eps / (|g| + eps)^2`.
    /// Where the exact gradient is at the level of float32 rounding noise (below 1e-6 of its
    /// tensor's largest), any float32 implementation takes an arbitrary step of at most about
    /// `lr` there. That holds for every key bias (its gradient is exactly zero in exact
    /// arithmetic: adding q·b_k to every score of a query row leaves its softmax unchanged) and
    /// for the rare weight whose reference gradient happens to be that small.
    @Test func twoAdamWStepsMatch() throws {
        let fixture = try Fixture()
        let model = try fixture.model()
        let optimizer = AdamWOptimizer(layout: model.layout, hyperparameters: fixture.hyperparameters)
        let noise = try noiseLevelElements(model: model, fixture: fixture)
        let lr = fixture.hyperparameters.learningRate
        let initial = model.params.buffer.array
        var worstWeight: Float = 0
        for step in 1...2 {
            model.zeroGrad()
            _ = try fixture.forward(model)
            model.backward()
            optimizer.update(params: model.params, grads: model.grads)
            let expected = try fixture.store("step\(step)/", layout: model.layout)
            for spec in model.layout.specs {
                var ours = model.params.values(spec.name)
                let theirs = expected.values(spec.name)
                let start = model.layout.entry(spec.name).offset
                for i in ours.indices where noise[start + i] {
                    #expect(abs(ours[i] - initial[start + i]) <= Float(step) * 1.01 * lr)
                    ours[i] = theirs[i]
                }
                let error = maxAbsoluteError(ours, theirs)
                #expect(error < 1e-5, "\(spec.name) after step \(step): max abs error \(error)")
                worstWeight = max(worstWeight, error)
            }
            // The update itself (not just the weights) must agree closely, noise-level elements aside.
            let counted = (0..<initial.count).filter { !noise[$0] }
            let update = counted.map { model.params.buffer.pointer[$0] - initial[$0] }
            let expectedUpdate = counted.map { expected.buffer.pointer[$0] - initial[$0] }
            let updateError = relativeError(update, expectedUpdate)
            #expect(updateError < 1e-4, "update of step \(step)")
            print("PyTorch reference: AdamW step \(step) weights max abs error \(worstWeight), update relative error \(updateError), \(noise.filter { $0 }.count) noise-level elements bounded")
        }
        let loss = try fixture.forward(model)
        let expectedLoss = try fixture.file.floats("loss_after_step2")[0]
        #expect(abs(loss - Double(expectedLoss)) / Double(expectedLoss) < 1e-5)
    }

    /// The elements whose first-step update float32 cannot pin down: every key bias and every
    /// element whose reference gradient is below 1e-6 of its tensor's largest.
    func noiseLevelElements(model: GPTModel, fixture: Fixture) throws -> [Bool] {
        let layout = model.layout
        let gradients = try fixture.store("grad/", layout: layout)
        let keyBias = keyBiasMask(config: fixture.config)
        var noise = [Bool](repeating: false, count: layout.totalCount)
        for (index, spec) in layout.specs.enumerated() {
            let values = gradients.values(spec.name)
            let floor = 1e-6 * (values.map(abs).max() ?? 0)
            for (i, value) in values.enumerated() where abs(value) < floor { noise[layout.offsets[index] + i] = true }
            if spec.name.hasSuffix("linear_qkv.bias") {
                for (i, isKey) in keyBias.enumerated() where isKey { noise[layout.offsets[index] + i] = true }
            }
        }
        return noise
    }

    /// Which elements of a fused QKV bias (our per-head [q k v] layout) are key biases.
    func keyBiasMask(config: GPTConfig) -> [Bool] {
        let d = config.headDim
        return (0..<(3 * config.hiddenSize)).map { ($0 % (3 * d)) / d == 1 }
    }
}
