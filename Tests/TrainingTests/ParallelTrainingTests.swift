import Distributed
import FileSupport
import Models
import Testing
@testable import Training

/// The project's spine for tensor and data parallelism: the same seed and data give the same
/// losses and final weights as the single-rank run (ranks as threads).
@Suite(.serialized) struct ParallelTrainingTests {
    static let corpus = try! ResumeTests.corpus()

    static func config(extra: [(key: String, value: JSONValue)] = []) throws -> TrainingConfig {
        try ResumeTests.config(prefix: corpus.prefix, extra: [
            ("global-batch-size", .number(8)), ("micro-batch-size", .number(2)), ("train-iters", .number(5)),
            ("hidden-size", .number(64)), ("num-attention-heads", .number(4)), ("eval-iters", .number(0)),
        ] + extra)
    }

    /// Losses and the full weights (assembled from the tensor-parallel shards of data rank 0).
    static func train(tensorParallel t: Int, dataParallel d: Int, distributed: Bool) throws -> (losses: [Double], weights: [[Float]]) {
        // Small gradient buckets, so that a reduction in several buckets is what is compared.
        let config = try Self.config(extra: distributed ? [("use-distributed-optimizer", .bool(true))] : [("ddp-bucket-size", .number(10_000))])
        if t * d == 1 {
            let trainer = try Trainer(config: config, vocabularySize: 2048, endOfDocument: 0)
            let losses = try (0..<5).map { _ in try trainer.step().loss }
            return (losses, trainer.model.layout.specs.map { trainer.model.params.values($0.name) })
        }
        let ranks = try ThreadCommunicator.run(size: t * d) { world -> (losses: [Double], shards: [[Float]], tp: Int, dp: Int) in
            let state = try ParallelState(world: world, tensorParallel: t)
            let trainer = try Trainer(config: config, vocabularySize: 2048, endOfDocument: 0, parallel: state)
            let losses = try (0..<5).map { _ in try trainer.step().loss }
            let shards = trainer.model.layout.specs.map { trainer.model.params.values($0.name) }
            return (losses, shards, state.tensorRank, state.dataRank)
        }
        let full = try Trainer(config: try Self.config(), vocabularySize: 2048, endOfDocument: 0).model
        var weights = [[Float]]()
        for (index, spec) in full.layout.specs.enumerated() {
            var tensor = [Float](repeating: 0, count: spec.count)
            for rank in ranks where rank.dp == 0 {
                rank.shards[index].withUnsafeBufferPointer { shard in
                    tensor.withUnsafeMutableBufferPointer { out in
                        TensorShard(name: spec.name).place(shard.baseAddress!, into: out.baseAddress!,
                                                           fullShape: spec.shape, rank: rank.tp, size: t)
                    }
                }
            }
            weights.append(tensor)
        }
        // Every rank reports the same losses.
        for rank in ranks { #expect(rank.losses == ranks[0].losses) }
        return (ranks[0].losses, weights)
    }

    static let reference = try! train(tensorParallel: 1, dataParallel: 1, distributed: false)

    @Test(arguments: [(1, 2, false), (1, 2, true), (2, 1, false), (2, 2, false), (2, 2, true), (4, 1, false), (4, 2, false), (4, 2, true)])
    func layoutMatchesOneRank(tensorParallel t: Int, dataParallel d: Int, distributed: Bool) throws {
        let result = try Self.train(tensorParallel: t, dataParallel: d, distributed: distributed)
        var worstLoss = 0.0
        for (a, b) in zip(result.losses, Self.reference.losses) {
            worstLoss = max(worstLoss, abs(a - b) / abs(b))
        }
        // Norm-wise over all weights; per tensor too. The key bias has an exactly zero gradient
        // (softmax ignores a constant added to a query's scores), so Adam turns rounding noise
        // of ~1e-9 into updates and that one tensor differs between layouts by ~1e-4.
        var difference = 0.0, norm = 0.0, worstTensor = 0.0
        for (a, b) in zip(result.weights, Self.reference.weights) {
            var d = 0.0, n = 0.0
            for i in a.indices {
                d += Double(a[i] - b[i]) * Double(a[i] - b[i])
                n += Double(b[i]) * Double(b[i])
            }
            difference += d
            norm += n
            worstTensor = max(worstTensor, (d / max(n, 1e-30)).squareRoot())
        }
        let weights = (difference / norm).squareRoot()
        print("TP \(t) x DP \(d)\(distributed ? " + distributed optimizer" : ""): losses within \(worstLoss), "
              + "weights within \(weights) (worst tensor \(worstTensor)), relative")
        #expect(worstLoss <= 1e-5)
        #expect(weights <= 1e-5)
        #expect(worstTensor <= 1e-3)
        #expect(Self.reference.losses[4] < Self.reference.losses[0])
    }
}
