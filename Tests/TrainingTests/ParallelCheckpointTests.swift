import Distributed
import Optimizer
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Parameters
import FileSupport
import Testing
@testable import Training

/// Checkpoints of multi-rank runs: one file per tensor-parallel rank and one optimizer shard per
/// data-parallel rank; the same layout resumes bit-identically, a resharded checkpoint continues
/// with the original layout's losses.
@Suite(.serialized) struct ParallelCheckpointTests {
    static let corpus = ParallelTrainingTests.corpus

    typealias Layout = ParallelTrainingTests.Layout

    static func config(_ layout: Layout, iterations: Int = 6, load: String? = nil) throws -> TrainingConfig {
        var extra: [(key: String, value: JSONValue)] = [("train-iters", .number(Double(iterations))),
                                                         ("pipeline-model-parallel-size", .number(Double(layout.pp)))]
        if layout.distributed { extra.append(("use-distributed-optimizer", .bool(true))) }
        if layout.precision != .fp32 { extra.append((layout.precision.rawValue, .bool(true))) }
        if layout.precision == .fp16 { extra.append(("initial-loss-scale", .number(1024))) }
        if layout.chunks > 1 {
            extra.append(("num-layers-per-virtual-pipeline-stage", .number(Double(layout.layers / (layout.pp * layout.chunks)))))
        }
        if let load { extra.append(("load", .string(load))) }
        return try ParallelTrainingTests.config(layers: layout.layers, extra: extra)
    }

    /// What a rank saw: its losses from `start` up to `stop`, and its weights and both moments
    /// (whole local buffers, or the optimizer's shard).
    struct RankRun: Sendable {
        var losses: [Double]
        var tensors: [[Float]]
    }

    /// Trains a layout from scratch or from `load` up to `stop` iterations, saving at `saveAt`.
    static func run(_ layout: Layout, stop: Int, saveAt: Int? = nil, saveTo: String? = nil,
                    load: String? = nil) throws -> [RankRun] {
        let config = try Self.config(layout, iterations: stop, load: load)
        return try RankThreads.run(size: layout.tp * layout.pp * layout.dp) { world in
            let parallel = try ParallelState(world: world, tensorParallel: layout.tp, pipelineParallel: layout.pp)
            let trainer = try Trainer(config: config, vocabularySize: 2048, endOfDocument: 0, parallel: parallel)
            var losses = [Double]()
            while !trainer.finished {
                losses.append(try trainer.step().loss)
                if trainer.iteration == saveAt, let saveTo { try trainer.save(to: saveTo) }
            }
            let moments: [FloatBuffer]
            if let sharded = trainer.optimizer as? DistributedOptimizer { moments = [sharded.m, sharded.v] }
            else { moments = [plain(trainer).m.buffer, plain(trainer).v.buffer] }
            let tensors = ([trainer.masterWeights().buffer] + moments).map { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) }
            return RankRun(losses: losses, tensors: tensors)
        }
    }

    @Test(arguments: [
        Layout(tp: 2, dp: 2, distributed: true), Layout(tp: 2, dp: 2), Layout(dp: 2, distributed: true),
        Layout(tp: 2, pp: 2, dp: 2, distributed: true, layers: 4), Layout(pp: 2, chunks: 2, layers: 4),
        // The distributed optimizer holding the fp32 master weights (bf16, fp16).
        Layout(tp: 2, dp: 2, distributed: true, precision: .bf16), Layout(dp: 2, distributed: true, precision: .fp16),
    ])
    func sameLayoutResumesBitIdentically(_ layout: Layout) throws {
        let directory = ResumeTests.temporaryDirectory() + "/checkpoints"
        let straight = try Self.run(layout, stop: 6, saveAt: 3, saveTo: directory)
        let resumed = try Self.run(layout, stop: 6, load: directory)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory + "/iter_0000003").sorted()
        let expected = (0..<layout.pp).flatMap { stage in
            (0..<layout.tp).map { Checkpoint.rankDirectoryName(tensorRank: $0, pipelineRank: layout.pp > 1 ? stage : nil) }
        }
        #expect(files == expected.sorted())
        if layout.distributed {
            let shards = try FileManager.default.contentsOfDirectory(atPath: directory + "/iter_0000003/" + expected[0]).sorted()
            #expect(shards == ["distrib_optim_dp_00.safetensors", "distrib_optim_dp_01.safetensors", "model_optim_rng.safetensors"])
        }
        for (a, b) in zip(straight, resumed) {
            #expect(Array(a.losses[3...]) == b.losses)
            for (x, y) in zip(a.tensors, b.tensors) {
                #expect(x.count == y.count && zip(x, y).allSatisfy { $0.bitPattern == $1.bitPattern })
            }
        }
    }

    @Test func reshardedCheckpointContinuesTheOriginalLosses() throws {
        let root = ResumeTests.temporaryDirectory()
        // TP 2 x PP 2 x DP 2 with the distributed optimizer: 3 iterations, save, 3 more.
        let source = Layout(tp: 2, pp: 2, dp: 2, distributed: true, layers: 4)
        let original = try Self.run(source, stop: 6, saveAt: 3, saveTo: root + "/source")
        let expected = Array(original[0].losses[3...])
        let merged = try MergedCheckpoint(directory: root + "/source", moments: true)
        #expect(merged.tensorParallel == 2 && merged.pipelineParallel == 2 && merged.iteration == 3)
        let targets = [Layout(dp: 2, distributed: true, layers: 4), Layout(tp: 4, layers: 4), Layout(pp: 4, layers: 4),
                       Layout(tp: 2, pp: 2, chunks: 2, layers: 4), Layout(pp: 2, dp: 2, distributed: true, layers: 4)]
        for target in targets {
            let directory = root + "/\(target.tp)-\(target.pp)-\(target.chunks)"
            try merged.reshard(to: directory, tensorParallel: target.tp, pipelineParallel: target.pp, chunks: target.chunks)
            let resumed = try Self.run(target, stop: 6, load: directory)
            let worst = zip(resumed[0].losses, expected).map { abs($0 - $1) / abs($1) }.max()!
            print("\(source) -> \(target): losses within \(worst)")
            #expect(resumed[0].losses.count == 3)
            #expect(worst <= 5e-8)  // observed up to 5.0e-9
        }
        // Loading for inference reads the shards straight into a model without gradients: the
        // same weights, from the 2 x 2 original and from the one-rank reshard.
        for name in ["source", "1-1-1"] {
            if name == "1-1-1" { try merged.reshard(to: root + "/1-1-1", tensorParallel: 1) }
            let (model, iteration) = try Checkpoint.loadModel(from: root + "/" + name)
            #expect(iteration == 3 && !model.grads.isAllocated)
            #expect((0..<model.layout.totalCount).allSatisfy { model.params.buffer.pointer[$0] == merged.params.buffer.pointer[$0] }, "\(name)")
        }
        // Merging a resharded checkpoint gives back the same weights and moments.
        for name in ["4-1-1", "1-4-1", "2-2-2"] {
            let again = try MergedCheckpoint(directory: root + "/" + name, moments: true)
            for (a, b) in [(merged.params, again.params), (merged.moments!.m, again.moments!.m), (merged.moments!.v, again.moments!.v)] {
                #expect((0..<a.layout.totalCount).allSatisfy { a.buffer.pointer[$0] == b.buffer.pointer[$0] }, "\(name)")
            }
        }
    }

    @Test func anotherModelParallelLayoutAtLoadIsAClearError() throws {
        // Saved with TP 2, then with PP 2; loaded with one rank; resharded to a size that does not divide.
        for (saved, flag, tensorParallel, pipelineParallel) in [(Layout(tp: 2), "--target-tensor-model-parallel-size 1", 3, 1),
                                                                (Layout(pp: 2), "--target-pipeline-model-parallel-size 1", 1, 3)] {
            let directory = ResumeTests.temporaryDirectory() + "/checkpoints"
            _ = try Self.run(saved, stop: 1, saveAt: 1, saveTo: directory)
            do {
                _ = try Self.run(Layout(), stop: 2, load: directory)
                Issue.record("loading a \(saved) checkpoint with one rank must fail")
            } catch {
                #expect("\(error)".contains(flag))
            }
            #expect(throws: TrainingError.self) {
                try MergedCheckpoint(directory: directory, moments: true)
                    .reshard(to: directory + "-bad", tensorParallel: tensorParallel, pipelineParallel: pipelineParallel)
            }
        }
    }
}
