import Kernels
import Models
import Parameters
import Testing
import TestSupport

/// The bf16 and fp16 GPT against references: PyTorch's autocast-bf16 run of the same model
/// (scripts/reference/gpt_bf16_fixtures.py) and the float64 run (gpt_fixtures.py).
///
/// The two bf16 recipes round at different places (autocast rounds every GEMM output, so its
/// softmax and GELU see bf16 inputs, and keeps the embeddings fp32; ours looks the embeddings up
/// in bf16 and rounds their sum, keeps the softmax fp32 and rounds GEMM operands and outputs), so each is compared
/// with the float64 truth at bf16's resolution (2^-8 relative) and with the other one.
@Suite struct MixedPrecisionReferenceTests {
    /// Our loss and gradients in `precision` and the float64 reference's.
    static func run(_ precision: ComputePrecision, gradientScale: Float = 1)
        throws -> (loss: Double, model: GPTModel, fixture: PyTorchReferenceTests.Fixture) {
        let fixture = try PyTorchReferenceTests.Fixture()
        let model = try fixture.model(precision: precision)
        let loss = try fixture.forward(model)
        model.backward(gradientScale: gradientScale)
        return (loss, model, fixture)
    }

    /// Norm-wise relative error of every gradient against the fixture's tensors under `prefix`.
    static func gradientErrors(_ model: GPTModel, _ fixture: PyTorchReferenceTests.Fixture, prefix: String,
                               unscale: Float = 1) throws -> [(name: String, error: Double)] {
        let expected = try fixture.store(prefix, layout: model.layout)
        return model.layout.specs.map { spec in
            (spec.name, relativeError(model.grads.values(spec.name).map { $0 / unscale }, expected.values(spec.name)))
        }
    }

    @Test func bf16TracksTheFloat64ReferenceAndPyTorchAutocast() throws {
        let (loss, model, fixture) = try Self.run(.bf16)
        let exact = Double(try fixture.file.floats("loss")[0])
        let autocast = try MixedPrecisionFixture.load()
        let autocastLoss = Double(try autocast.floats("bf16/loss")[0])
        let lossError = abs(loss - exact) / exact, lossVsAutocast = abs(loss - autocastLoss) / autocastLoss
        let truth = try Self.gradientErrors(model, fixture, prefix: "grad/")
        let versusAutocast = try MixedPrecisionFixture.gradientErrors(model, fixture: fixture, file: autocast)
        let worstTruth = truth.map(\.error).max()!, worstAutocast = versusAutocast.map(\.error).max()!
        print("bf16: loss vs float64 \(lossError), vs autocast \(lossVsAutocast); worst gradient vs float64 "
              + "\(worstTruth) (\(truth.max { $0.error < $1.error }!.name)), vs autocast \(worstAutocast)")
        // Observed: loss 8.7e-6 vs float64 and 4.3e-5 vs autocast; worst gradient 7.0e-3 vs
        // float64 and 6.9e-3 vs autocast (autocast itself is 7.6e-3 from float64). The issue's
        // bounds are 1e-2 (loss) and 5e-2 (gradients); these are tighter.
        #expect(lossError < 2e-4 && lossVsAutocast < 2e-4)
        for (name, error) in truth { #expect(error < 2e-2, "gradient of \(name) vs float64: \(error)") }
        for (name, error) in versusAutocast { #expect(error < 2e-2, "gradient of \(name) vs autocast: \(error)") }
        // bf16 really rounds: a gradient as close as fp32's would mean the bf16 path did not run.
        #expect(worstTruth > 1e-3)
    }

    /// fp16 with a loss scale: the scaled gradients, unscaled, track the float64 reference at
    /// fp16's resolution (2^-11), and the scale makes no difference beyond rounding.
    @Test func fp16WithALossScaleTracksTheFloat64Reference() throws {
        let (loss, model, fixture) = try Self.run(.fp16, gradientScale: 1024)
        let exact = Double(try fixture.file.floats("loss")[0])
        let errors = try Self.gradientErrors(model, fixture, prefix: "grad/", unscale: 1024)
        let worst = errors.map(\.error).max()!
        print("fp16: loss vs float64 \(abs(loss - exact) / exact), worst gradient \(worst)")
        // Observed: loss 9.2e-7, worst gradient 7.4e-4.
        #expect(abs(loss - exact) / exact < 1e-4)
        for (name, error) in errors { #expect(error < 3e-3, "gradient of \(name): \(error)") }
        #expect(worst > 1e-5)
    }

    /// A loss scale too large for fp16 overflows the gradients to infinities (what the loss
    /// scaler detects), while the same scale in fp32 stays finite.
    @Test func fp16GradientsOverflowAtAHugeLossScale() throws {
        let (_, model, _) = try Self.run(.fp16, gradientScale: 4_294_967_296)
        #expect(model.grads.firstNonFinite() != nil)
        let (_, fp32, _) = try Self.run(.fp32, gradientScale: 4_294_967_296)
        #expect(fp32.grads.firstNonFinite() == nil)
    }

    /// More rows than one block of the output layer's bf16 backward (512): the blocks together
    /// give the fp32 gradients to bf16's resolution (a block missed or counted twice would be off
    /// by far more).
    @Test func bf16OutputLayerBlocksCoverEveryRow() throws {
        let config = GPTConfig(numLayers: 1, hiddenSize: 32, numAttentionHeads: 2, maxPositionEmbeddings: 320, vocabSize: 300)
        var random = RandomGenerator(seed: 5)
        let tokens = (0..<640).map { _ in Int32(random.next() % 300) }
        let targets = (0..<640).map { _ in Int32(random.next() % 300) }
        var gradients = [[Float]]()
        for precision in [ComputePrecision.fp32, .bf16] {
            let model = try GPTModel(config: config, seed: 3, precision: precision)
            try model.forward(tokens: tokens, targets: targets, batch: 2, seqLength: 320)
            model.backward()
            gradients.append(model.grads.buffer.array)
        }
        let error = relativeError(gradients[1], gradients[0])
        print("bf16 over 640 rows (2 output-layer blocks): gradients vs fp32 \(error)")
        #expect(error < 1e-2 && error > 1e-5)  // observed 3.4e-3
    }

    /// The bf16 copy of the weights follows every change of the fp32 master weights once the
    /// model is told (`weightsDidChange`), and only then.
    @Test func bf16WeightsFollowTheMasterWeights() throws {
        let fixture = try PyTorchReferenceTests.Fixture()
        let model = try fixture.model(precision: .bf16)
        let before = try fixture.forward(model)
        let index = model.layout.specs.firstIndex { $0.name.hasSuffix("linear_fc2.weight") }!
        let count = model.layout.specs[index].count
        let tensor = model.params.pointer(at: index)
        let saved = Array(UnsafeBufferPointer(start: tensor, count: count))
        tensor.update(repeating: 0, count: count)
        #expect(try fixture.forward(model) == before)  // not told: the bf16 copy is the old one
        model.weightsDidChange()
        #expect(try fixture.forward(model) != before)
        tensor.update(from: saved, count: count)
        model.weightsDidChange()
        #expect(try fixture.forward(model) == before)
    }
}

/// The autocast-bf16 fixture.
enum MixedPrecisionFixture {
    static let path = String(#filePath.dropLast("MixedPrecisionReferenceTests.swift".count)) + "Fixtures/gpt_reference_bf16.safetensors"

    static func load() throws -> SafeTensorsFile { try SafeTensorsFile(path: path) }

    /// Norm-wise relative error of every gradient of `model` against autocast's.
    static func gradientErrors(_ model: GPTModel, fixture: PyTorchReferenceTests.Fixture,
                               file: SafeTensorsFile) throws -> [(name: String, error: Double)] {
        let expected = ParameterStore(layout: model.layout)
        try HuggingFaceGPT2.load(into: expected, config: fixture.config, prefix: "bf16/grad/") { try file.floats($0) }
        return model.layout.specs.map { ($0.name, relativeError(model.grads.values($0.name), expected.values($0.name))) }
    }
}
