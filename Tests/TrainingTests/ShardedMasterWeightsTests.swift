import Distributed
import FileSupport
@testable import Models
import Optimizer
import Parameters
import Testing
@testable import Training

/// bf16 and fp16 with the distributed optimizer: the optimizer holds the fp32 master weights,
/// sharded over the data-parallel ranks, and the model only its low-precision copy and the fp32
/// tensors it reads in fp32 (Megatron's 6 + 12/d bytes per parameter). Numerically nothing
/// changes: the run is bit-identical to the plain optimizer's.
@Suite(.serialized) struct ShardedMasterWeightsTests {
    typealias Layout = ParallelTrainingTests.Layout

    /// DP 2 in bf16 and fp16: with ZeRO-1 (master weights sharded) and without (whole on each
    /// rank), the same losses and weights, bit for bit (a two-rank sum is the same sum whether
    /// all-reduced or reduce-scattered); the gradient norms up to the order of their Float64
    /// sums of squares (per shard, then over the shards).
    @Test(arguments: [ComputePrecision.bf16, .fp16])
    func shardedMasterWeightsTrainAsWholeOnes(_ precision: ComputePrecision) throws {
        let sharded = try ParallelTrainingTests.train(Layout(dp: 2, distributed: true, precision: precision))
        let whole = try ParallelTrainingTests.train(Layout(dp: 2, precision: precision))
        #expect(sharded.losses == whole.losses)
        #expect(zip(sharded.gradNorms, whole.gradNorms).allSatisfy { abs($0 - $1) <= 1e-12 * $1 })
        for (a, b) in zip(sharded.weights, whole.weights) {
            #expect(a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern })
        }
    }

    /// Each rank holds half of the fp32 master weights, in the optimizer; the model none but its
    /// fp32 copy of the LayerNorms and biases (the embeddings are looked up in bf16).
    @Test func eachRankHoldsItsShardOfTheMasterWeights() throws {
        let config = try ParallelTrainingTests.config(layers: 2, extra: [("use-distributed-optimizer", .bool(true)), ("bf16", .bool(true))])
        let held = try RankThreads.run(size: 2) { world -> [Int] in
            let trainer = try Trainer(config: config, vocabularySize: 2048, endOfDocument: 0,
                                      parallel: try ParallelState(world: world, tensorParallel: 1, pipelineParallel: 1))
            _ = try trainer.step()
            let model = trainer.model
            let masters = (trainer.optimizer as? DistributedOptimizer)?.masters?.count ?? 0
            let copy = model.layout.specs.filter { GPTModel.readsInFP32($0.name) }.reduce(0) { $0 + $1.count }
            let embeddings = model.layout.specs.filter { $0.name.hasPrefix("embedding.") }.reduce(0) { $0 + $1.count }
            return [model.keepsMasterWeights ? 1 : 0, model.params.isAllocated ? 1 : 0, masters, model.layout.totalCount,
                    model.fp32Copy?.count ?? -1, copy, embeddings]
        }
        for rank in held {
            #expect(rank[0] == 0 && rank[1] == 0)
            #expect(rank[2] == (rank[3] + 1) / 2)
            #expect(rank[4] == rank[5] && rank[5] + rank[6] < rank[3] && rank[6] > 0)
        }
        for name in ["embedding.word_embeddings.weight", "embedding.position_embeddings.weight",
                     "embedding.tokentype_embeddings.weight", "decoder.layers.0.input_layernorm.weight"] {
            #expect(GPTModel.readsInFP32(name) == name.hasPrefix("decoder."), "\(name)")
        }
    }

    /// The checkpoint of a sharded bf16 run holds the gathered fp32 master weights: one fp32 rank
    /// loads exactly them.
    @Test func aShardedCheckpointHoldsTheWholeMasterWeights() throws {
        let directory = ResumeTests.temporaryDirectory() + "/sharded"
        let config = try ParallelTrainingTests.config(layers: 2, extra: [("use-distributed-optimizer", .bool(true)), ("bf16", .bool(true)),
                                                                         ("train-iters", .number(3))])
        let gathered = try RankThreads.run(size: 2) { world -> [Float] in
            let trainer = try Trainer(config: config, vocabularySize: 2048, endOfDocument: 0,
                                      parallel: try ParallelState(world: world, tensorParallel: 1, pipelineParallel: 1))
            for _ in 0..<3 { _ = try trainer.step() }
            try trainer.save(to: directory)
            return trainer.masterWeights().buffer.array
        }
        #expect(gathered[0] == gathered[1])
        var fp32 = try ParallelTrainingTests.config(layers: 2, extra: [("train-iters", .number(4))])
        fp32.load = directory
        let loaded = try Trainer(config: fp32, vocabularySize: 2048, endOfDocument: 0)
        #expect(loaded.iteration == 3)
        let weights = Array(loaded.model.params.buffer.array.prefix(loaded.model.layout.totalCount))
        #expect(weights.count == gathered[0].count && zip(weights, gathered[0]).allSatisfy { $0.bitPattern == $1.bitPattern })
    }
}
