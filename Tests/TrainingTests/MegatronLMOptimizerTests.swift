import FileSupport
import Foundation
import Kernels
import Models
import Optimizer
import Parameters
import Testing
import TestSupport
@testable import Training

/// The Adam state of Megatron-LM checkpoints against megatron-core's own optimizers (fixtures by
/// `scripts/reference/megatron_lm_optimizer_fixture.py`: megatron-core 0.16.1's
/// `get_megatron_optimizer` run on the CPU for 3 steps of a 2-layer GPT, saved as Megatron-LM
/// saves it, with the plain fp32 optimizer and with the distributed one).
@Suite struct MegatronLMOptimizerTests {
    static let fixtures = MegatronLMCheckpointTests.fixtures

    static func expected(_ name: String) throws -> JSONValue {
        try JSONValue.parse(utf8: try MappedFile.read(path: fixtures + "/expected-\(name).json"))
    }

    static func floats(_ value: JSONValue?) -> [Float] { MegatronLMCheckpointTests.numbers(value).map(Float.init) }

    static func norm(_ values: [Float]) -> Double { values.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }

    /// One step of `model` from the imported Adam `state` as Megatron-LM's run takes its next one
    /// (the fixture batch, its learning rate, Megatron's betas, epsilon and weight decay, clipping
    /// at 1; an --fp16 run's backward starts from the loss times its imported loss scale, and the
    /// update unscales), with both sides' loss and gradient norm and the fixture's `next_step` record.
    static func nextStep(_ model: GPTModel, state: MegatronLMOptimizerState, expected: JSONValue) throws
        -> (loss: Double, expectedLoss: Double, gradNorm: Double, expectedNorm: Double, optimizer: AdamWOptimizer, next: JSONValue) {
        let next = try #require(expected["next_step"])
        let tokens = MegatronLMCheckpointTests.integers("tokens", in: expected)
        let labels = MegatronLMCheckpointTests.integers("labels", in: expected)
        let loss = try model.forward(tokens: tokens, targets: labels, batch: 2, seqLength: 12).mean
        model.zeroGrad()
        let lossScale = state.lossScaler?.scale ?? 1
        model.backward(gradientScale: Float(lossScale))
        let gradNorm = norm(Array(UnsafeBufferPointer(start: model.grads.buffer.pointer, count: model.layout.totalCount))) / lossScale
        let lr = Float(MegatronLMCheckpointTests.numbers(next["lr"]).first ?? .nan)
        let optimizer = AdamWOptimizer(layout: model.layout, hyperparameters: AdamW.Hyperparameters(
            learningRate: lr, beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1))
        optimizer.m.buffer.pointer.update(from: state.m.buffer.pointer, count: model.layout.totalCount)
        optimizer.v.buffer.pointer.update(from: state.v.buffer.pointer, count: model.layout.totalCount)
        optimizer.restore(step: state.step)
        optimizer.update(params: model.params, grads: model.grads,
                         gradScale: Float(GradientClipping.coefficient(norm: gradNorm, clip: 1.0) / lossScale))
        return (loss, MegatronLMCheckpointTests.numbers(next["loss"]).first ?? .nan, gradNorm,
                MegatronLMCheckpointTests.numbers(next["grad_norm"]).first ?? .nan, optimizer, next)
    }

    /// Every parameter's moments equal megatron-core's (first values bit for bit, norms to
    /// float64 rounding), and the step, iteration and samples are the run's. The `bf16` fixtures
    /// (`megatron_lm_bf16_optimizer_fixture.py`: Megatron-LM's --bf16, Float16Module weights and
    /// fp32 masters in the optimizer) give the masters as the model's weights, not the bf16 ones.
    /// The `dist-` fixtures are the same runs saved as torch_dist checkpoints
    /// (`megatron_lm_dist_optimizer_fixture.py`): model-space tensors for the plain optimizer,
    /// the flat buffer of Megatron-LM's default dp_reshardable sharding for the distributed one,
    /// and model-space tensors again for its fully_reshardable sharding; `-buckets` is the flat
    /// buffer split into 4 buckets (--overlap-grad-reduce --ddp-bucket-size 10000; in the legacy
    /// fixture 18850, so that a bucket ends off the 64-element grid, at a LayerNorm bias, and
    /// distrib_optim.pt's coalesced buckets are not one bucket's layout).
    @Test(arguments: [("tp1-optim", "optim", false), ("tp1-distopt", "distopt", true),
                      ("tp1-bf16-optim", "bf16-optim", false), ("tp1-bf16-distopt", "bf16-distopt", true),
                      ("tp1-bf16-distopt-buckets", "bf16-distopt-buckets", true),
                      ("dist-tp1-optim", "dist-optim", false), ("dist-tp1-distopt", "dist-distopt", true),
                      ("dist-tp1-bf16-optim", "dist-bf16-optim", false),
                      ("dist-tp1-bf16-distopt", "dist-bf16-distopt", true),
                      ("dist-tp1-bf16-distopt-fully-reshardable", "dist-bf16-distopt-fully-reshardable", true),
                      ("dist-tp1-bf16-distopt-buckets", "dist-bf16-distopt-buckets", true),
                      ("tp1-fp16-optim", "fp16-optim", false), ("tp1-fp16-distopt", "fp16-distopt", true),
                      ("dist-tp1-fp16-optim", "dist-fp16-optim", false), ("dist-tp1-fp16-distopt", "dist-fp16-distopt", true)])
    func momentsAreMegatronCores(checkpoint: String, fixture: String, distributed: Bool) throws {
        let expected = try Self.expected(fixture)
        let (model, iteration, state) = try MegatronLMCheckpoint.readWithOptimizer(directory: Self.fixtures + "/" + checkpoint)
        // An --fp16 run skips the iteration whose gradients overflowed: Adam and the schedule did not advance.
        guard case let .array(steps)? = expected["steps"] else { Issue.record("no steps"); return }
        let updates = steps.filter { $0["skipped"] != .bool(true) }.count
        #expect(iteration == 3 && state.step == updates && state.consumedSamples == 6 && state.scheduledSamples == 2 * updates
                && state.distributed == distributed)
        #expect(state.precision == (checkpoint.contains("bf16") ? .bf16 : checkpoint.contains("fp16") ? .fp16 : .fp32))
        if let scaler = expected["grad_scaler"] {
            let saved = LossScaler.State(scale: MegatronLMCheckpointTests.numbers(scaler["scale"]).first ?? .nan,
                                         growthTracker: Int(MegatronLMCheckpointTests.numbers(scaler["growth_tracker"]).first ?? -1),
                                         hysteresisTracker: Int(MegatronLMCheckpointTests.numbers(scaler["hysteresis_tracker"]).first ?? -1))
            #expect(state.lossScaler == saved && updates == 2)
        } else {
            #expect(state.lossScaler == nil)
        }
        guard case let .object(parameters)? = expected["parameters"] else { Issue.record("no parameters"); return }
        #expect(parameters.count == model.layout.specs.count)
        for (name, record) in parameters {
            for (store, key) in [(state.m, "exp_avg"), (state.v, "exp_avg_sq"), (model.params, "param")] {
                let values = store.values(name)
                #expect(Array(values.prefix(4)) == Self.floats(record["\(key)_first4"]), "\(name) \(key)")
                let norm = MegatronLMCheckpointTests.numbers(record["\(key)_norm"]).first ?? .nan
                #expect(abs(Self.norm(values) - norm) <= 1e-12 * norm, "\(name) \(key)")
            }
        }
    }

    /// One more step from the imported state, with Megatron-LM's hyperparameters, on the fixture
    /// batch gives megatron-core's fourth step: the moments and the step count are what Adam's
    /// update and bias correction continue from.
    @Test func theNextStepIsMegatronCores() throws {
        let expected = try Self.expected("optim")
        let (model, _, state) = try MegatronLMCheckpoint.readWithOptimizer(directory: Self.fixtures + "/tp1-optim")
        let step = try Self.nextStep(model, state: state, expected: expected)
        let (loss, expectedLoss, gradNorm, expectedNorm, optimizer) = (step.loss, step.expectedLoss, step.gradNorm, step.expectedNorm, step.optimizer)
        #expect(abs(loss - expectedLoss) / expectedLoss < 1e-6, "loss \(loss) vs \(expectedLoss)")
        #expect(abs(gradNorm - expectedNorm) / expectedNorm < 1e-5, "grad norm \(gradNorm) vs \(expectedNorm)")
        guard case let .object(parameters)? = step.next["parameters"] else { Issue.record("no parameters"); return }
        var worst = 0.0, worstMoment = 0.0
        for (name, record) in parameters {
            let norm = MegatronLMCheckpointTests.numbers(record["param_norm"]).first ?? .nan
            // The QKV bias holds the key bias, whose gradient is exactly zero (the softmax ignores
            // a constant added to a query's scores): Adam turns both sides' rounding noise into
            // updates of up to lr, so that tensor differs by ~4e-5 (observed) and is bounded apart.
            let weightError = abs(Self.norm(model.params.values(name)) - norm) / norm
            if name.hasSuffix("linear_qkv.bias") {
                #expect(weightError < 2e-4, "\(name)")
            } else {
                worst = max(worst, weightError)
            }
            let m = MegatronLMCheckpointTests.numbers(record["exp_avg_norm"]).first ?? .nan
            worstMoment = max(worstMoment, abs(Self.norm(optimizer.m.values(name)) - m) / m)
            for (ours, theirs) in zip(model.params.values(name).prefix(4), Self.floats(record["param_first4"])) {
                #expect(abs(ours - theirs) <= 1e-6 * max(1, abs(theirs)), "\(name)")
            }
        }
        print("Megatron-LM optimizer, next step: loss \(loss) vs \(expectedLoss), grad norm \(gradNorm) vs \(expectedNorm), "
              + "worst weight norm \(worst) (QKV biases aside), first moment \(worstMoment)")
        #expect(worst < 1e-5 && worstMoment < 1e-5)
    }

    /// distrib_optim.pt's coalesced layout, worked by hand from megatron-core's
    /// `_ParamAndGradBuffer`: a bucket closing off the 64-element grid moves every later
    /// parameter; a parameter of its own bucket closes the open one at its aligned start.
    @Test func coalescedBucketsMoveTheParameters() {
        let one = MegatronLMBufferLayout(counts: [48, 48, 48, 48], ownBucket: [false, false, false, false], bucketSize: nil)
        #expect(one.starts == [192, 128, 64, 0] && one.count == 240)
        // The second bucket opens after parameter 2 (0..<112 reaches 100): padded to 128, coalesced at 112.
        let cut = MegatronLMBufferLayout(counts: [48, 48, 48, 48], ownBucket: [false, false, false, false], bucketSize: 100)
        #expect(cut.starts == [176, 112, 64, 0] && cut.count == 224)
        // The last stage's tied copy (last in order, so first laid out) alone in bucket 0 (0..<100).
        let copy = MegatronLMBufferLayout(counts: [48, 48, 100], ownBucket: [false, false, true], bucketSize: nil)
        #expect(copy.starts == [164, 100, 0] && copy.count == 212)
        // The first stage's word embedding (first in order) closes the open bucket at 128, not 112.
        let embedding = MegatronLMBufferLayout(counts: [100, 48, 48], ownBucket: [true, false, false], bucketSize: nil)
        #expect(embedding.starts == [128, 64, 0] && embedding.count == 228)
    }

    /// The distributed optimizer's default dp_reshardable state (one flat buffer of shards per
    /// model-parallel rank) reads as the same run's state saved fully_reshardable (model space,
    /// read like the weights): moments and fp32 masters bit for bit, and the masters are not the
    /// rounded bf16 weights. At TP 2; and at TP 2 x PP 2 x DP 2, where the buffers are per stage
    /// and TP rank, the word embedding and the last stage's tied copy each have a bucket of their
    /// own, and the data-parallel ranks' shards cut parameters into several chunks; and at TP 2 x
    /// PP 2 with an interleaved pipeline of 2 model chunks per stage, a buffer per chunk. The
    /// TP 2 x PP 2 x DP 2 run's legacy save reads alike too.
    @Test(arguments: ["dist-tp2-bf16-distopt", "dist-tp2pp2dp2-bf16-distopt", "dist-tp2pp2vp2dp1-bf16-distopt"])
    func flatBuffersReadAsModelSpace(checkpoint: String) throws {
        let (flat, _, flatState) = try MegatronLMCheckpoint.readWithOptimizer(directory: Self.fixtures + "/" + checkpoint)
        let (space, _, spaceState) = try MegatronLMCheckpoint.readWithOptimizer(
            directory: Self.fixtures + "/" + checkpoint + "-fully-reshardable")
        #expect(flatState.step == 3 && spaceState.step == 3 && flatState.distributed && flatState.precision == .bf16)
        for spec in flat.layout.specs {
            for (ours, theirs, what) in [(flat.params, space.params, "master"), (flatState.m, spaceState.m, "exp_avg"),
                                         (flatState.v, spaceState.v, "exp_avg_sq")] {
                let same = ours.values(spec.name) == theirs.values(spec.name)
                #expect(same, "\(spec.name) \(what)")
            }
        }
        let (rounded, _) = try MegatronLMCheckpoint.read(directory: Self.fixtures + "/" + checkpoint)
        #expect(rounded.params.values(flat.layout.specs[0].name) != flat.params.values(flat.layout.specs[0].name))
        // The TP 2 x PP 2 x DP 2 run saved as --ckpt-format torch too: distrib_optim.pt per TP x PP
        // rank, its buffers gathered over DP, the tied embedding's buckets coalesced.
        guard checkpoint == "dist-tp2pp2dp2-bf16-distopt" else { return }
        let (legacy, _, legacyState) = try MegatronLMCheckpoint.readWithOptimizer(directory: Self.fixtures + "/" + checkpoint + "-legacy")
        #expect(legacyState.step == 3 && legacyState.distributed && legacyState.precision == .bf16)
        for spec in flat.layout.specs {
            for (ours, theirs, what) in [(flat.params, legacy.params, "master"), (flatState.m, legacyState.m, "exp_avg"),
                                         (flatState.v, legacyState.v, "exp_avg_sq")] {
                let same = ours.values(spec.name) == theirs.values(spec.name)
                #expect(same, "legacy \(spec.name) \(what)")
            }
        }
    }

    /// A --bf16 run continued here in bf16 from its imported masters and moments: megatron-core's
    /// fourth bf16 step, up to the two sides' bf16 roundings (its residual stream and LayerNorm
    /// outputs are bf16, ours fp32; both GEMMs accumulate in fp32). Observed (Emerald Rapids,
    /// avx512_bf16): loss 7.9e-4 relative, gradient norm 1.8e-4, worst weight norm 9.9e-5 (QKV
    /// bias aside); starting from the rounded bf16 weights instead of the masters gives a worst
    /// weight norm of 1.1e-3 (and loss 1.6e-3), which the weight bound refuses.
    /// The --fp16 runs likewise, from their imported loss scale (2^17, after the skipped third
    /// iteration): observed loss 1.3e-6, worst weight norm 1.2e-5, gradient norm 1.4e-3 (each
    /// side's fp16 rounding moves it ~7e-4 from the fp32 gradient at the same weights, ours up,
    /// megatron-core's down; its gradients are reduced in fp16).
    @Test(arguments: ["tp1-bf16-optim", "tp1-bf16-distopt", "tp1-fp16-optim", "tp1-fp16-distopt"])
    func theNext16BitStepIsMegatronCores(checkpoint: String) throws {
        let expected = try Self.expected(String(checkpoint.dropFirst("tp1-".count)))
        let (imported, _, state) = try MegatronLMCheckpoint.readWithOptimizer(directory: Self.fixtures + "/" + checkpoint)
        let model = try GPTModel(config: imported.config, precision: state.precision)
        model.params.buffer.pointer.update(from: imported.params.buffer.pointer, count: model.layout.totalCount)
        model.weightsDidChange()
        let step = try Self.nextStep(model, state: state, expected: expected)
        let (loss, expectedLoss, gradNorm, expectedNorm) = (step.loss, step.expectedLoss, step.gradNorm, step.expectedNorm)
        guard case let .object(parameters)? = step.next["parameters"] else { Issue.record("no parameters"); return }
        var worst = 0.0
        for (name, record) in parameters where !name.hasSuffix("linear_qkv.bias") {  // see theNextStepIsMegatronCores
            let norm = MegatronLMCheckpointTests.numbers(record["param_norm"]).first ?? .nan
            worst = max(worst, abs(Self.norm(model.params.values(name)) - norm) / norm)
        }
        let lossError = abs(loss - expectedLoss) / expectedLoss, gradError = abs(gradNorm - expectedNorm) / expectedNorm
        print("Megatron-LM \(state.precision) optimizer (\(checkpoint)), next step: loss \(loss) vs \(expectedLoss) (\(lossError)), "
              + "grad norm \(gradNorm) vs \(expectedNorm) (\(gradError)), worst weight norm \(worst)")
        let bounds = state.precision == .fp16 ? (loss: 1e-4, grad: 3e-3, weight: 5e-5) : (loss: 2e-3, grad: 1e-3, weight: 3e-4)
        #expect(lossError < bounds.loss && gradError < bounds.grad && worst < bounds.weight)
    }

    /// `convert --load-optimizer`: a checkpoint at Megatron-LM's iteration whose moments, step,
    /// samples, precision and (fp16) loss scaler `train --load` resumes; without the flag,
    /// iteration 0 and fresh moments.
    @Test func convertCarriesTheRunOn() throws {
        let directory = ResumeTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let summary = try MegatronLMCheckpoint.convert(from: Self.fixtures + "/tp1-distopt", to: directory + "/with", loadOptimizer: true)
        #expect(summary.contains("distributed optimizer state at step 3"))
        let (_, _, state) = try MegatronLMCheckpoint.readWithOptimizer(directory: Self.fixtures + "/tp1-distopt")
        let (model, _) = try Checkpoint.loadModel(from: directory + "/with")
        let moments = AdamWOptimizer(layout: model.layout, hyperparameters: AdamW.Hyperparameters(learningRate: 0))
        let saved = try Checkpoint.load(from: directory + "/with", model: model, moments: .whole(moments), readsMoments: true)
        #expect(saved.iteration == 3 && saved.consumedSamples == 6 && saved.optimizerStep == 3)
        for spec in model.layout.specs { #expect(moments.v.values(spec.name) == state.v.values(spec.name), "\(spec.name)") }
        #expect(saved.precision == .fp32 && saved.lossScaler == nil && saved.scheduledSamples == 6)
        // An --fp16 run: its precision, its loss scaler, and the schedule behind the samples by the skipped iteration.
        let fp16 = try MegatronLMCheckpoint.convert(from: Self.fixtures + "/tp1-fp16-distopt", to: directory + "/fp16", loadOptimizer: true)
        #expect(fp16.contains("at step 2, its fp32 master weights, loss scale 131072.0)"), "\(fp16)")
        let fp16Saved = try Checkpoint.load(from: directory + "/fp16", model: model, moments: .whole(moments), readsMoments: true)
        #expect(fp16Saved.precision == .fp16 && fp16Saved.optimizerStep == 2 && fp16Saved.scheduledSamples == 4 && fp16Saved.consumedSamples == 6)
        #expect(fp16Saved.lossScaler == LossScaler.State(scale: 131072, growthTracker: 0, hysteresisTracker: 0))
        _ = try MegatronLMCheckpoint.convert(from: Self.fixtures + "/tp1-optim", to: directory + "/without", loadOptimizer: false)
        #expect(try Checkpoint.latestIteration(in: directory + "/without") == 0)
        // A checkpoint saved without its optimizer says so.
        #expect { _ = try MegatronLMCheckpoint.readWithOptimizer(directory: Self.fixtures + "/tp1") }
            throws: { "\($0)".contains("no optimizer state") }
    }
}
