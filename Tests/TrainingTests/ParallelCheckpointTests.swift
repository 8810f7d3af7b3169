import Distributed
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

    static func config(distributed: Bool, iterations: Int = 6, load: String? = nil) throws -> TrainingConfig {
        var extra: [(key: String, value: JSONValue)] = [("train-iters", .number(Double(iterations)))]
        if distributed { extra.append(("use-distributed-optimizer", .bool(true))) }
        if let load { extra.append(("load", .string(load))) }
        return try ParallelTrainingTests.config(layers: 2, extra: extra)
    }

    /// What a rank saw: its losses from `start` up to `stop`, and its weights and both moments
    /// (whole local buffers, or the optimizer's shard).
    struct RankRun: Sendable {
        var losses: [Double]
        var tensors: [[Float]]
    }

    /// Trains a layout from scratch or from `load` up to `stop` iterations, saving at `saveAt`.
    static func run(tensorParallel t: Int, dataParallel d: Int, distributed: Bool, stop: Int,
                    saveAt: Int? = nil, saveTo: String? = nil, load: String? = nil) throws -> [RankRun] {
        let config = try Self.config(distributed: distributed, iterations: stop, load: load)
        return try RankThreads.run(size: t * d) { world in
            let parallel = try ParallelState(world: world, tensorParallel: t)
            let trainer = try Trainer(config: config, vocabularySize: 2048, endOfDocument: 0, parallel: parallel)
            var losses = [Double]()
            while !trainer.finished {
                losses.append(try trainer.step().loss)
                if trainer.iteration == saveAt, let saveTo { try trainer.save(to: saveTo) }
            }
            let moments: [FloatBuffer]
            if let sharded = trainer.distributedOptimizer { moments = [sharded.m, sharded.v] }
            else { moments = [trainer.optimizer!.m.buffer, trainer.optimizer!.v.buffer] }
            let tensors = ([trainer.model.params.buffer] + moments).map { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) }
            return RankRun(losses: losses, tensors: tensors)
        }
    }

    @Test(arguments: [(2, 2, true), (2, 2, false), (1, 2, true)])
    func sameLayoutResumesBitIdentically(tensorParallel t: Int, dataParallel d: Int, distributed: Bool) throws {
        let directory = ResumeTests.temporaryDirectory() + "/checkpoints"
        let straight = try Self.run(tensorParallel: t, dataParallel: d, distributed: distributed, stop: 6,
                                    saveAt: 3, saveTo: directory)
        let resumed = try Self.run(tensorParallel: t, dataParallel: d, distributed: distributed, stop: 6, load: directory)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory + "/iter_0000003").sorted()
        #expect(files == (0..<t).map { Checkpoint.rankDirectoryName(tensorRank: $0) })
        if distributed {
            let shards = try FileManager.default.contentsOfDirectory(atPath: directory + "/iter_0000003/mp_rank_00").sorted()
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
        // TP 2 x DP 2 with the distributed optimizer: 3 iterations, save, 3 more.
        let original = try Self.run(tensorParallel: 2, dataParallel: 2, distributed: true, stop: 6, saveAt: 3, saveTo: root + "/tp2")
        let expected = Array(original[0].losses[3...])
        let merged = try MergedCheckpoint(directory: root + "/tp2", moments: true)
        #expect(merged.tensorParallel == 2 && merged.iteration == 3)
        for (target, dataParallel, distributed) in [(1, 2, true), (4, 1, false), (2, 1, false)] {
            let directory = root + "/tp\(target)-from-tp2"
            try merged.reshard(to: directory, tensorParallel: target)
            let resumed = try Self.run(tensorParallel: target, dataParallel: dataParallel, distributed: distributed, stop: 6, load: directory)
            let worst = zip(resumed[0].losses, expected).map { abs($0 - $1) / abs($1) }.max()!
            print("TP 2 x DP 2 (ZeRO) -> TP \(target) x DP \(dataParallel)\(distributed ? " (ZeRO)" : ""): losses within \(worst)")
            #expect(resumed[0].losses.count == 3)
            #expect(worst <= 1e-5)
        }
        // Merging the resharded TP 4 checkpoint gives back the same weights and moments.
        let again = try MergedCheckpoint(directory: root + "/tp4-from-tp2", moments: true)
        for (a, b) in [(merged.params, again.params), (merged.moments!.m, again.moments!.m), (merged.moments!.v, again.moments!.v)] {
            #expect((0..<a.layout.totalCount).allSatisfy { a.buffer.pointer[$0] == b.buffer.pointer[$0] })
        }
    }

    @Test func anotherTensorParallelSizeAtLoadIsAClearError() throws {
        let directory = ResumeTests.temporaryDirectory() + "/checkpoints"
        _ = try Self.run(tensorParallel: 2, dataParallel: 1, distributed: false, stop: 1, saveAt: 1, saveTo: directory)
        do {
            _ = try Self.run(tensorParallel: 1, dataParallel: 1, distributed: false, stop: 2, load: directory)
            Issue.record("loading a TP 2 checkpoint with TP 1 must fail")
        } catch {
            #expect("\(error)".contains("--target-tensor-model-parallel-size 1"))
        }
        #expect(throws: TrainingError.self) {
            try MergedCheckpoint(directory: directory, moments: true).reshard(to: directory + "-tp3", tensorParallel: 3)
        }
    }
}
