import Distributed
import FileSupport
import Models
import Testing
@testable import Training

/// Training with recomputation is the same computation: losses, gradient norms and weights
/// bit-identical to keeping every activation, on one rank and under TP x PP with interleaving.
@Suite(.serialized) struct RecomputationTrainingTests {
    static let corpus = try! ResumeTests.corpus()

    static func config(_ extra: [(key: String, value: JSONValue)]) throws -> TrainingConfig {
        try ResumeTests.config(prefix: corpus.prefix, extra: [("num-layers", .number(4)), ("train-iters", .number(3)),
                                                             ("eval-iters", .number(0))] + extra)
    }

    static let variants: [[(key: String, value: JSONValue)]] = [
        [("recompute-granularity", .string("selective"))],
        [("recompute-granularity", .string("full"))],
        [("recompute-granularity", .string("full")), ("recompute-method", .string("uniform")), ("recompute-num-layers", .number(2))],
        [("recompute-granularity", .string("full")), ("recompute-method", .string("block")), ("recompute-num-layers", .number(1))],
    ]

    /// Losses, norms and the final weights of every rank (rank order).
    static func train(_ extra: [(key: String, value: JSONValue)], tensorParallel t: Int = 1, pipelineParallel p: Int = 1)
        throws -> [[Double]] {
        let config = try Self.config(extra)
        if t * p == 1 { return [try run(config, parallel: .single)] }
        return try ThreadCommunicator.run(size: t * p) { world in
            try run(config, parallel: try ParallelState(world: world, tensorParallel: t, pipelineParallel: p))
        }
    }

    static func run(_ config: TrainingConfig, parallel: ParallelState) throws -> [Double] {
        let trainer = try Trainer(config: config, vocabularySize: 2048, endOfDocument: 0, parallel: parallel)
        let stats = try (0..<3).map { _ in try trainer.step() }
        return stats.map(\.loss) + stats.map(\.gradNorm) + trainer.model.params.buffer.array.map(Double.init)
    }

    @Test func oneRankIsBitIdentical() throws {
        let reference = try Self.train([])
        for variant in Self.variants {
            #expect(try Self.train(variant) == reference, "\(variant.map(\.key)) \(variant.map(\.value))")
        }
    }

    @Test func tensorAndInterleavedPipelineParallelAreBitIdentical() throws {
        let layout: [(key: String, value: JSONValue)] = [("pipeline-model-parallel-size", .number(2)),
                                                         ("num-layers-per-virtual-pipeline-stage", .number(1))]
        let reference = try Self.train(layout, tensorParallel: 2, pipelineParallel: 2)
        for variant in [Self.variants[0], Self.variants[1]] {
            #expect(try Self.train(layout + variant, tensorParallel: 2, pipelineParallel: 2) == reference)
        }
    }

    /// With sequence parallelism the recomputed forward gathers the sequence again: still the
    /// same bits, in fp32 and in bf16 (whose LayerNorm outputs are kept as bf16 shards).
    @Test(arguments: [false, true])
    func sequenceParallelIsBitIdentical(bf16: Bool) throws {
        let layout: [(key: String, value: JSONValue)] = [("sequence-parallel", .bool(true)), ("bf16", .bool(bf16))]
        let reference = try Self.train(layout, tensorParallel: 2)
        for variant in Self.variants {
            #expect(try Self.train(layout + variant, tensorParallel: 2) == reference, "\(variant.map(\.value))")
        }
    }

    @Test func flagsThatDoNotFitAreErrors() throws {
        #expect(throws: TrainingError.invalidFlag("--recompute-method", "needs --recompute-granularity full")) {
            try Self.config([("recompute-method", .string("block"))])
        }
        #expect(throws: TrainingError.invalidFlag("--recompute-num-layers", "3 does not fit the 2 layers of a model chunk (pipeline stage)")) {
            try Self.config([("recompute-granularity", .string("full")), ("recompute-num-layers", .number(3)),
                             ("pipeline-model-parallel-size", .number(2))])
        }
        #expect(throws: TrainingError.config(path: "test", reason: "recompute-granularity must be full or selective, got all")) {
            try Self.config([("recompute-granularity", .string("all"))])
        }
    }
}
