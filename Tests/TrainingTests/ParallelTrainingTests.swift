import Distributed
import FileSupport
import Models
import Testing
@testable import Training

/// The project's spine for tensor, pipeline and data parallelism: the same seed and data give the
/// same losses and final weights as the single-rank run (ranks as threads).
@Suite(.serialized) struct ParallelTrainingTests {
    static let corpus = try! ResumeTests.corpus()

    static func config(layers: Int, extra: [(key: String, value: JSONValue)] = []) throws -> TrainingConfig {
        try ResumeTests.config(prefix: corpus.prefix, extra: [
            ("global-batch-size", .number(8)), ("micro-batch-size", .number(2)), ("train-iters", .number(5)),
            ("hidden-size", .number(64)), ("num-attention-heads", .number(4)), ("eval-iters", .number(0)),
            ("num-layers", .number(Double(layers))),
        ] + extra)
    }

    /// A TP x PP x DP layout; `chunks` > 1 runs the interleaved schedule.
    struct Layout: CustomStringConvertible, Sendable {
        var tp = 1, pp = 1, dp = 1, chunks = 1
        var distributed = false
        var layers = 2
        var precision = ComputePrecision.fp32
        var sequenceParallel = false
        var dropout = false
        var untied = false
        var description: String {
            "TP \(tp)\(sequenceParallel ? " (SP)" : "") x PP \(pp)\(chunks > 1 ? " (\(chunks) chunks)" : "") x DP \(dp)"
                + (distributed ? " + distributed optimizer" : "") + (precision == .fp32 ? "" : " in \(precision.rawValue)")
                + (dropout ? " with dropout" : "") + (untied ? " untied" : "")
        }
        /// The flags of the model's shape beyond the test config's.
        var modelFlags: [(key: String, value: JSONValue)] { untied ? [("untie-embeddings-and-output-weights", .bool(true))] : [] }
    }

    /// What a run gives: losses and gradient norms as logged, and the full weights (assembled
    /// from the tensor- and pipeline-parallel shards of data rank 0).
    struct Run {
        var losses: [Double]
        var gradNorms: [Double]
        var weights: [[Float]]
    }

    /// Trains `layout` for 5 steps. Every rank must report the same losses and norms, and every
    /// copy of a tensor (over DP; over TP for replicated tensors; the first and last stage's word
    /// embedding) must be bit-identical to the others.
    static func train(_ layout: Layout) throws -> Run {
        // Small gradient buckets, so that a reduction in several buckets is what is compared.
        var extra: [(key: String, value: JSONValue)] = layout.distributed
            ? [("use-distributed-optimizer", .bool(true))] : [("ddp-bucket-size", .number(10_000))]
        if layout.chunks > 1 {
            extra.append(("num-layers-per-virtual-pipeline-stage", .number(Double(layout.layers / (layout.pp * layout.chunks)))))
        }
        extra.append(("pipeline-model-parallel-size", .number(Double(layout.pp))))
        if layout.precision != .fp32 { extra.append((layout.precision.rawValue, .bool(true))) }
        if layout.sequenceParallel { extra.append(("sequence-parallel", .bool(true))) }
        if layout.dropout { extra += [("hidden-dropout", .number(0.1)), ("attention-dropout", .number(0.1))] }
        extra += layout.modelFlags
        // fp16 from a scale the test model does not overflow at, so that every step updates.
        if layout.precision == .fp16 { extra.append(("initial-loss-scale", .number(1024))) }
        let config = try Self.config(layers: layout.layers, extra: extra)
        let (t, p, d) = (layout.tp, layout.pp, layout.dp)
        if t * p * d == 1 {
            let trainer = try Trainer(config: config, vocabularySize: 2048, endOfDocument: 0)
            let stats = try (0..<5).map { _ in try trainer.step() }
            return Run(losses: stats.map(\.loss), gradNorms: stats.map(\.gradNorm),
                       weights: trainer.model.layout.specs.map { trainer.model.params.values($0.name) })
        }
        let ranks = try ThreadCommunicator.run(size: t * p * d) {
            world -> (losses: [Double], gradNorms: [Double], shards: [String: [Float]], tp: Int, dp: Int) in
            let state = try ParallelState(world: world, tensorParallel: t, pipelineParallel: p)
            let trainer = try Trainer(config: config, vocabularySize: 2048, endOfDocument: 0, parallel: state)
            let stats = try (0..<5).map { _ in try trainer.step() }
            var shards = [String: [Float]]()
            let masters = trainer.masterWeights()
            for spec in trainer.model.layout.specs { shards[spec.name] = masters.values(spec.name) }
            return (stats.map(\.loss), stats.map(\.gradNorm), shards, state.tensorRank, state.dataRank)
        }
        // Every copy of every tensor on every rank equals the first copy of its kind.
        for spec in try Trainer(config: try Self.config(layers: layout.layers, extra: layout.modelFlags), vocabularySize: 2048, endOfDocument: 0).model.layout.specs {
            let replicated = TensorShard(name: spec.name) == .replicated
            var first = [Int: [Float]]()  // by tensor-parallel rank (one entry for replicated tensors)
            for rank in ranks {
                guard let shard = rank.shards[spec.name] else { continue }
                let key = replicated ? 0 : rank.tp
                if let copy = first[key] {
                    #expect(copy == shard, "\(spec.name): the copy on tp \(rank.tp) dp \(rank.dp) differs")
                } else {
                    first[key] = shard
                }
            }
        }
        let full = try Trainer(config: try Self.config(layers: layout.layers, extra: layout.modelFlags), vocabularySize: 2048, endOfDocument: 0).model
        var weights = [[Float]]()
        for spec in full.layout.specs {
            var tensor = [Float](repeating: 0, count: spec.count)
            var copies = [[Float]]()
            for rank in ranks where rank.dp == 0 {
                guard let shard = rank.shards[spec.name] else { continue }
                var placed = [Float](repeating: 0, count: spec.count)
                shard.withUnsafeBufferPointer { shard in
                    placed.withUnsafeMutableBufferPointer { out in
                        TensorShard(name: spec.name).place(shard.baseAddress!, into: out.baseAddress!,
                                                           fullShape: spec.shape, rank: rank.tp, size: t)
                    }
                }
                copies.append(placed)
                for i in placed.indices where placed[i] != 0 { tensor[i] = placed[i] }
            }
            // The word embedding lives on the first and the last stage: both copies must agree.
            #expect(!copies.isEmpty, "no rank holds \(spec.name)")
            if spec.name == "embedding.word_embeddings.weight" && p > 1 {
                let first = copies.prefix(t).reduce(into: [Float](repeating: 0, count: spec.count)) { sum, c in
                    for i in c.indices { sum[i] += c[i] }
                }
                let last = copies.suffix(t).reduce(into: [Float](repeating: 0, count: spec.count)) { sum, c in
                    for i in c.indices { sum[i] += c[i] }
                }
                let identical = first == last
                #expect(identical, "the first and last stage's word embeddings differ")
            }
            weights.append(tensor)
        }
        // Every rank reports the same losses and norms.
        for rank in ranks { #expect(rank.losses == ranks[0].losses && rank.gradNorms == ranks[0].gradNorms) }
        return Run(losses: ranks[0].losses, gradNorms: ranks[0].gradNorms, weights: weights)
    }

    static let reference = try! train(Layout())
    static let deepReference = try! train(Layout(layers: 8))

    @Test(arguments: [(1, 2, false), (1, 2, true), (2, 1, false), (2, 2, false), (2, 2, true), (4, 1, false), (4, 2, false), (4, 2, true)])
    func layoutMatchesOneRank(tensorParallel t: Int, dataParallel d: Int, distributed: Bool) throws {
        try Self.compare(Layout(tp: t, dp: d, distributed: distributed), Self.reference)
    }

    /// Pipelines of 8 layers (1F1B, and interleaved with 2 chunks of 1 layer on 4 stages).
    @Test(arguments: [
        Layout(pp: 2, layers: 8), Layout(tp: 2, pp: 2, layers: 8), Layout(pp: 2, dp: 2, layers: 8),
        Layout(pp: 4, chunks: 2, layers: 8), Layout(tp: 2, pp: 2, dp: 2, layers: 8),
        Layout(tp: 2, pp: 2, dp: 2, distributed: true, layers: 8), Layout(pp: 2, dp: 2, chunks: 2, distributed: true, layers: 8),
    ])
    func pipelineMatchesOneRank(_ layout: Layout) throws {
        try Self.compare(layout, Self.deepReference)
    }

    /// Sequence parallelism (Korthikanti et al. 2022): the LayerNorms and residuals on 1/t of the
    /// tokens, the pipeline sending the shard, the LayerNorm gradients summed over TP.
    @Test(arguments: [
        Layout(tp: 2, sequenceParallel: true), Layout(tp: 4, sequenceParallel: true),
        Layout(tp: 2, dp: 2, distributed: true, sequenceParallel: true),
        Layout(tp: 2, pp: 2, dp: 2, distributed: true, layers: 8, sequenceParallel: true),
        Layout(tp: 2, pp: 2, chunks: 2, layers: 8, sequenceParallel: true),
    ])
    func sequenceParallelMatchesOneRank(_ layout: Layout) throws {
        try Self.compare(layout, layout.layers == 8 ? Self.deepReference : Self.reference)
    }

    /// Dropout under data, tensor (with sequence parallelism) and pipeline parallelism draws the
    /// masks one rank draws for the same samples.
    @Test(arguments: [
        Layout(tp: 2, dp: 2, distributed: true, sequenceParallel: true, dropout: true),
        Layout(tp: 2, pp: 2, dp: 2, layers: 8, dropout: true),
    ])
    func dropoutMatchesOneRank(_ layout: Layout) throws {
        try Self.compare(layout, try Self.train(Layout(layers: layout.layers, dropout: true)))
    }

    /// An output layer of its own (`--untie-embeddings-and-output-weights`): held by the last
    /// stage only, split by vocabulary over TP, no gradient sum between the first and last stage.
    @Test(arguments: [Layout(tp: 2, pp: 2, dp: 2, distributed: true, layers: 8, untied: true),
                      Layout(pp: 4, chunks: 2, layers: 8, untied: true)])
    func untiedOutputLayerMatchesOneRank(_ layout: Layout) throws {
        let reference = try Self.train(Layout(layers: 8, untied: true))
        #expect(reference.weights.count == Self.deepReference.weights.count + 1)
        try Self.compare(layout, reference)
    }

    /// As Megatron: without tensor parallelism the flag is dropped with a warning; a sequence
    /// that does not split evenly over the ranks is refused before anything runs.
    @Test func sequenceParallelFlagIsChecked() throws {
        let alone = try Self.config(layers: 2, extra: [("sequence-parallel", .bool(true))])
        #expect(!alone.usesSequenceParallel && alone.warnings.count == 1)
        #expect(throws: TrainingError.invalidFlag("--sequence-parallel", "splits each sequence over the 3 tensor-parallel ranks: --seq-length 16 is not a multiple of 3")) {
            try Self.config(layers: 2, extra: [("sequence-parallel", .bool(true)), ("tensor-model-parallel-size", .number(3)),
                                               ("hidden-size", .number(48)), ("num-attention-heads", .number(3))])
        }
        let split = try Self.config(layers: 2, extra: [("sequence-parallel", .bool(true)), ("tensor-model-parallel-size", .number(2))])
        #expect(split.usesSequenceParallel && split.warnings.isEmpty)
    }

    /// Tolerances: about 4x the largest difference observed over these layouts (losses 1.4e-8,
    /// gradient norms 4.7e-8, weights 5.8e-7 norm-wise, worst tensor 1.7e-4).
    static func compare(_ layout: Layout, _ reference: Run) throws {
        let result = try Self.train(layout)
        var worstLoss = 0.0, worstNorm = 0.0
        for (a, b) in zip(result.losses, reference.losses) {
            worstLoss = max(worstLoss, abs(a - b) / abs(b))
        }
        // A gradient scaled by a constant would cancel out of the losses and weights under Adam
        // and clipping, but not out of the logged norm.
        for (a, b) in zip(result.gradNorms, reference.gradNorms) {
            worstNorm = max(worstNorm, abs(a - b) / abs(b))
        }
        // Norm-wise over all weights; per tensor too. The key bias has an exactly zero gradient
        // (softmax ignores a constant added to a query's scores), so Adam turns rounding noise
        // of ~1e-9 into updates and that one tensor differs between layouts by ~1e-4.
        var difference = 0.0, norm = 0.0, worstTensor = 0.0
        for (a, b) in zip(result.weights, reference.weights) {
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
        print("\(layout): losses within \(worstLoss), grad norms within \(worstNorm), "
              + "weights within \(weights) (worst tensor \(worstTensor)), relative")
        #expect(worstLoss <= 5e-8)
        #expect(worstNorm <= 2e-7)
        #expect(weights <= 2e-6)
        #expect(worstTensor <= 5e-4)
        #expect(reference.losses[4] < reference.losses[0])
    }

    /// Every ramp-up batch size must divide into micro-batches over the data-parallel ranks (and,
    /// interleaved, into a multiple of the stages): refused at start-up on every rank, instead of
    /// training on fewer samples than the run records.
    @Test func rampupSizesThatDoNotDivideOverDataParallelAreRefused() throws {
        let rampup: (key: String, value: JSONValue) = ("rampup-batch-size", .array([.number(4), .number(2), .number(16)]))
        let config = try Self.config(layers: 2, extra: [rampup])
        _ = try Trainer(config: config, vocabularySize: 2048, endOfDocument: 0)  // sizes 4, 6, 8 over micro 2: fine on one rank
        #expect(throws: TrainingError.layout("--global-batch-size 6 is not a multiple of --micro-batch-size 2 x data-parallel size 2")) {
            _ = try ThreadCommunicator.run(size: 2) { world in
                try Trainer(config: config, vocabularySize: 2048, endOfDocument: 0,
                            parallel: try ParallelState(world: world, tensorParallel: 1)).iteration
            }
        }
        let interleaved = try Self.config(layers: 4, extra: [("global-batch-size", .number(6)), ("pipeline-model-parallel-size", .number(2)),
                                                              ("num-layers-per-virtual-pipeline-stage", .number(1))])
        #expect(throws: TrainingError.self) {
            _ = try ThreadCommunicator.run(size: 2) { world in
                try Trainer(config: interleaved, vocabularySize: 2048, endOfDocument: 0,
                            parallel: try ParallelState(world: world, tensorParallel: 1, pipelineParallel: 2)).iteration
            }
        }
    }
}
