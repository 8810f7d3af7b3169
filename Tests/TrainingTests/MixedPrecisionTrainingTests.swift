import FileSupport
import Models
import Optimizer
import Parameters
import Testing
@testable import Training

/// bf16 and fp16 training (Megatron-LM's fp16 recipe with dynamic loss scaling, MT-NLG's bf16):
/// a bf16 run tracks the fp32 run, every parallel layout tracks one bf16 rank, resume is
/// bit-identical in both precisions, and fp16 skips overflowing iterations as Megatron does.
@Suite(.serialized) struct MixedPrecisionTrainingTests {
    static let corpus = try! ResumeTests.corpus()

    static func config(_ extra: [(key: String, value: JSONValue)]) throws -> TrainingConfig {
        try ResumeTests.config(prefix: corpus.prefix, extra: extra)
    }

    static func bits(_ store: ParameterStore) -> [UInt32] {
        Array(UnsafeBufferPointer(start: store.buffer.pointer, count: store.layout.totalCount)).map(\.bitPattern)
    }

    /// 60 iterations of the test model in bf16 against fp32: every loss within 0.1% and the mean
    /// of the last 10 within 0.02% (the issue asks for 3%; observed 6.4e-5 and 6.4e-6).
    @Test func bf16TrainingTracksFP32() throws {
        let settings: [(key: String, value: JSONValue)] = [("train-iters", .number(60)), ("eval-iters", .number(0))]
        let fp32 = try ResumeTests.trainer(try Self.config(settings))
        let bf16 = try ResumeTests.trainer(try Self.config(settings + [("bf16", .bool(true))]))
        var worst = 0.0
        var fp32Losses = [Double](), bf16Losses = [Double]()
        for _ in 0..<60 {
            fp32Losses.append(try fp32.step().loss)
            bf16Losses.append(try bf16.step().loss)
            worst = max(worst, abs(bf16Losses.last! - fp32Losses.last!) / fp32Losses.last!)
        }
        let tail = { (losses: [Double]) in losses.suffix(10).reduce(0, +) / 10 }
        let tailError = abs(tail(bf16Losses) - tail(fp32Losses)) / tail(fp32Losses)
        print("bf16 vs fp32 over 60 iterations: worst loss \(worst), last-10 mean \(tailError) "
              + "(fp32 \(fp32Losses[0]) -> \(tail(fp32Losses)), bf16 -> \(tail(bf16Losses)))")
        #expect(worst < 1e-3)
        #expect(tailError < 2e-4)
        #expect(tail(bf16Losses) < 0.9 * bf16Losses[0])
        // Not secretly fp32: bf16 rounding shows in the losses.
        #expect(worst > 1e-6)
    }

    /// Stop at 3, save, resume, run to 6: the same losses and weights, bit for bit, as 6 in a row.
    @Test(arguments: [ComputePrecision.bf16, .fp16])
    func resumeIsBitIdentical(_ precision: ComputePrecision) throws {
        let directory = ResumeTests.temporaryDirectory()
        let config = try Self.config([(precision.rawValue, .bool(true)), ("initial-loss-scale", .number(65536)),
                                      ("loss-scale-window", .number(2))].filter { precision == .fp16 || $0.key == precision.rawValue })
        let straight = try ResumeTests.trainer(config)
        let straightLosses = try ResumeTests.run(straight, until: 6)
        let first = try ResumeTests.trainer(config)
        var losses = try ResumeTests.run(first, until: 3)
        try first.save(to: directory + "/checkpoints")
        var resumedConfig = config
        resumedConfig.load = directory + "/checkpoints"
        let resumed = try ResumeTests.trainer(resumedConfig)
        #expect(resumed.iteration == 3 && resumed.loadNote == nil)
        #expect(resumed.lossScaler == first.lossScaler)
        losses += try ResumeTests.run(resumed, until: 6)
        #expect(losses == straightLosses)
        #expect(Self.bits(resumed.model.params) == Self.bits(straight.model.params))
        #expect(resumed.lossScaler == straight.lossScaler)
    }

    /// A checkpoint trained in one precision continues in another from its fp32 master weights,
    /// with a note saying so.
    @Test func aCheckpointLoadsInAnotherPrecisionWithANote() throws {
        let directory = ResumeTests.temporaryDirectory()
        let bf16 = try ResumeTests.trainer(try Self.config([("bf16", .bool(true))]))
        _ = try ResumeTests.run(bf16, until: 2)
        try bf16.save(to: directory)
        var config = try Self.config([])
        config.load = directory
        let fp32 = try ResumeTests.trainer(config)
        #expect(fp32.loadNote?.contains("trained in bf16, this run continues in fp32") == true)
        #expect(Self.bits(fp32.model.params) == Self.bits(bf16.model.params))
    }

    /// fp16 from Megatron's initial scale 2^32: the first iterations overflow and are skipped
    /// (weights, Adam step and the LR schedule untouched) while the scale backs off as
    /// megatron-core's scaler does; then training proceeds and learns.
    @Test func fp16SkipsOverflowingIterationsWhileTheScaleBacksOff() throws {
        let trainer = try ResumeTests.trainer(try Self.config([("fp16", .bool(true)), ("train-iters", .number(40)),
                                                              ("eval-iters", .number(0))]))
        let initial = Self.bits(trainer.model.params)
        var reference = LossScaler(initialScale: 4_294_967_296, minimumScale: 1, window: 1000, hysteresis: 2)
        var stats = [IterationStats]()
        for _ in 0..<40 {
            let s = try trainer.step()
            #expect(s.lossScale == reference.scale)
            reference.update(overflow: s.skipped)
            stats.append(s)
            if s.skipped { #expect(Self.bits(trainer.model.params) == initial || stats.dropLast().contains { !$0.skipped }) }
        }
        let skipped = stats.prefix { $0.skipped }.count
        print("fp16 from 2^32: \(skipped) iterations skipped, scale then \(stats[skipped].lossScale); loss \(stats[skipped].loss) -> \(stats.last!.loss)")
        #expect(skipped >= 5 && skipped < 30)
        #expect(stats[skipped].learningRate == stats[0].learningRate)  // the schedule waited
        #expect(trainer.scheduledSamples == trainer.consumedSamples - stats.filter(\.skipped).count * 4)
        #expect(stats.allSatisfy { $0.loss.isFinite })
        #expect(stats.last!.loss < stats[skipped].loss)
        #expect(trainer.lossScaler == reference)
    }

    /// A run that keeps overflowing at the lowest scale it may use stops with a clear error after
    /// `--max-skips-at-min-loss-scale` iterations, and the checkpoint saved before is intact.
    @Test func overflowingAtTheMinimumScaleStopsTheRun() throws {
        let directory = ResumeTests.temporaryDirectory()
        let trainer = try ResumeTests.trainer(try Self.config([("fp16", .bool(true)), ("loss-scale", .number(1e30)),
                                                              ("max-skips-at-min-loss-scale", .number(3))]))
        #expect(try trainer.step().skipped)
        try trainer.save(to: directory)
        #expect(try trainer.step().skipped)
        #expect(throws: TrainingError.lossScaleExhausted(iteration: 3, scale: Double(Float(1e30)), count: 3)) { try trainer.step() }
        #expect(try Checkpoint.latestIteration(in: directory) == 1)
        // The count is part of the checkpoint: resumed at 1 (one overflow counted), the run
        // stops at the same iteration.
        var config = trainer.config
        config.load = directory
        let resumed = try ResumeTests.trainer(config)
        #expect(resumed.iteration == 1)
        #expect(try resumed.step().skipped)
        #expect(throws: TrainingError.lossScaleExhausted(iteration: 3, scale: Double(Float(1e30)), count: 3)) { try resumed.step() }
    }

    /// A static scale's state is not taken over by a dynamic scaler: resumed without
    /// `--loss-scale`, the dynamic scale starts at `--initial-loss-scale`.
    @Test func aStaticScaleIsNotResumedAsADynamicOne() throws {
        let directory = ResumeTests.temporaryDirectory()
        let trainer = try ResumeTests.trainer(try Self.config([("fp16", .bool(true)), ("loss-scale", .number(128))]))
        _ = try trainer.step()
        try trainer.save(to: directory)
        var config = try Self.config([("fp16", .bool(true)), ("initial-loss-scale", .number(4096))])
        config.load = directory
        let resumed = try ResumeTests.trainer(config)
        #expect(resumed.lossScaler?.scale == 4096 && resumed.lossScaler?.isDynamic == true)
    }

    @Test func precisionFlagsAreCheckedTogether() throws {
        #expect(throws: TrainingError.invalidFlag("--bf16", "give at most one of --bf16 and --fp16")) {
            try Self.config([("bf16", .bool(true)), ("fp16", .bool(true))])
        }
        #expect(throws: TrainingError.invalidFlag("--loss-scale", "needs --fp16")) {
            try Self.config([("bf16", .bool(true)), ("loss-scale", .number(1024))])
        }
        #expect(throws: TrainingError.invalidFlag("--min-loss-scale", "must not exceed --initial-loss-scale 1024.0, got 2048.0")) {
            try Self.config([("fp16", .bool(true)), ("initial-loss-scale", .number(1024)), ("min-loss-scale", .number(2048))])
        }
    }
}

/// bf16 and fp16 under every kind of layout against one rank in the same precision.
extension ParallelTrainingTests {
    /// Not bitwise: a row-parallel layer rounds each rank's partial sum to bf16 before the
    /// all-reduce (one rank rounds the whole sum), and bf16 rounding of the GEMM operands turns
    /// fp32 summation-order differences into different roundings. Observed after 5 steps:
    /// losses within 2.0e-5 and weights norm-wise within 2.3e-3 (bf16), 2.0e-6 and 5.3e-4
    /// (fp16, loss scale 1024). Pipeline parallelism alone has no partial sums but one: the tied
    /// word embedding's gradient, summed over the two stages that hold it (Megatron's embedding
    /// group) in another order than one rank accumulates it. Its weights then differ in the last
    /// fp32 bits, and once one of them rounds to another bf16 value, the bf16 lookup and output
    /// layer see it: observed, the same losses bit for bit and weights within 7.2e-6.
    @Test(arguments: [
        Layout(tp: 2, dp: 2, distributed: true, precision: .bf16),
        Layout(tp: 2, pp: 2, dp: 2, distributed: true, layers: 8, precision: .bf16),
        Layout(pp: 4, chunks: 2, layers: 8, precision: .bf16),
        Layout(tp: 2, dp: 2, distributed: true, precision: .fp16),
        Layout(tp: 2, pp: 2, dp: 2, distributed: true, layers: 8, precision: .bf16, sequenceParallel: true),
        Layout(tp: 4, precision: .fp16, sequenceParallel: true),
    ])
    func lowPrecisionLayoutMatchesOneRank(_ layout: Layout) throws {
        let reference = try Self.train(Layout(layers: layout.layers, precision: layout.precision))
        let result = try Self.train(layout)
        let worstLoss = zip(result.losses, reference.losses).map { abs($0 - $1) / abs($1) }.max()!
        var difference = 0.0, norm = 0.0
        for (a, b) in zip(result.weights, reference.weights) {
            for i in a.indices {
                difference += Double(a[i] - b[i]) * Double(a[i] - b[i])
                norm += Double(b[i]) * Double(b[i])
            }
        }
        let weights = (difference / norm).squareRoot()
        print("\(layout) vs one \(layout.precision.rawValue) rank: losses within \(worstLoss), weights within \(weights)")
        #expect(worstLoss < 1e-4)
        #expect(weights < 5e-3)
        if layout.tp == 1 && layout.dp == 1 { #expect(worstLoss < 1e-7 && weights < 1e-4) }
        #expect(reference.losses[4] < reference.losses[0])
    }
}
