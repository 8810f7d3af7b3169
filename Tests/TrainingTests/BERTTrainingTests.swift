import Datasets
import Distributed
import Foundation
import FileSupport
import Testing
import TestSupport
import Tokenizer
@testable import Training

/// `megatron train --model-type bert` on a sentence-split corpus: both losses learn, a resumed
/// run is the uninterrupted one bit for bit, TP x PP x DP (with ZeRO-1) matches one rank, and
/// what BERT cannot run with is named.
@Suite(.serialized) struct BERTTrainingTests {
    static let vocabularyFile = ResumeTests.repository + "/Tests/DataTests/Fixtures/wordpiece/uncased/vocab.txt"
    static let vocabulary = try! WordPieceTokenizer(vocabularyFile: vocabularyFile, lowerCase: true)
    static let corpus = try! Self.makeCorpus()

    /// The first 80 documents of the bundled corpus, split into sentences, in WordPiece ids.
    static func makeCorpus() throws -> (directory: String, prefix: String) {
        let directory = ResumeTests.temporaryDirectory()
        var lines = [String]()
        try TextDocuments.forEach(in: ResumeTests.repository + "/data/devils-dictionary/devils_dictionary.jsonl") { text in
            if lines.count < 80 { lines.append(JSONValue.object([("text", .string(text))]).serialized) }
        }
        try AtomicFile.write(Array(lines.joined(separator: "\n").utf8), to: directory + "/corpus.jsonl")
        var preprocessor = Preprocessor(inputPath: directory + "/corpus.jsonl", outputPrefix: directory + "/corpus")
        preprocessor.splitSentences = true
        _ = try preprocessor.run(tokenizer: vocabulary)
        return (directory, preprocessor.datasetPrefix(key: "text"))
    }

    static func config(_ extra: [(key: String, value: JSONValue)] = []) throws -> TrainingConfig {
        let settings: [(key: String, value: JSONValue)] = [
            ("model-type", .string("bert")), ("tokenizer-type", .string("BertWordPieceLowerCase")),
            ("vocab-file", .string(vocabularyFile)), ("data-path", .string(corpus.prefix)), ("split", .string("90,10,0")),
            ("num-layers", .number(2)), ("hidden-size", .number(32)), ("num-attention-heads", .number(2)),
            ("seq-length", .number(32)), ("micro-batch-size", .number(2)), ("global-batch-size", .number(4)),
            ("lr", .number(3e-3)), ("min-lr", .number(3e-4)), ("lr-decay-style", .string("cosine")),
            ("lr-warmup-iters", .number(2)), ("train-iters", .number(6)), ("eval-interval", .number(3)),
            ("eval-iters", .number(1)), ("weight-decay", .number(0.01)), ("clip-grad", .number(1)),
        ]
        return try TrainingConfig(settings: [("test", settings + extra)])
    }

    static func trainer(_ config: TrainingConfig, parallel: ParallelState = .single) throws -> Trainer {
        try Trainer(config: config, vocabularySize: vocabulary.vocabularySize, endOfDocument: vocabulary.separatorID,
                    parallel: parallel, wordPiece: vocabulary)
    }

    /// Every iteration's masked-LM and sentence-order losses and norm, and each validation's.
    static func run(_ trainer: Trainer, until stopAt: Int) throws -> [Double] {
        var values = [Double]()
        while trainer.iteration < stopAt {
            let stats = try trainer.step()
            values += [stats.loss, stats.sentenceOrderLoss ?? .nan, stats.gradNorm]
            if trainer.iteration % trainer.config.evalInterval == 0, let loss = try trainer.evaluate() {
                values += [loss, trainer.validationSentenceOrderLoss ?? .nan]
            }
        }
        return values
    }

    /// Trains `config` to `saveAt`, saves into `directory`, resumes a new trainer from there
    /// (which must start at `saveAt`) and trains it to `stopAt`: the values of both runs, and the
    /// resumed trainer.
    static func resumed(_ config: TrainingConfig, savingAt saveAt: Int, until stopAt: Int,
                        in directory: String) throws -> (values: [Double], trainer: Trainer) {
        let first = try trainer(config)
        var values = try run(first, until: saveAt)
        try first.save(to: directory)
        var resumedConfig = config
        resumedConfig.load = directory
        let resumed = try trainer(resumedConfig)
        #expect(resumed.iteration == saveAt)
        values += try run(resumed, until: stopAt)
        return (values, resumed)
    }

    /// Both orders learn the masked tokens; the sentence-order loss is logged (near log 2 at first).
    @Test(arguments: ["pre", "post"])
    func bothLayerNormOrdersLearn(order: String) throws {
        let trainer = try Self.trainer(try Self.config([("bert-layernorm-order", .string(order)), ("train-iters", .number(30)),
                                                        ("eval-iters", .number(0))]))
        #expect(trainer.model.config.bert?.residualConnectionPostLayerNorm == (order == "post"))
        var stats = [IterationStats]()
        while !trainer.finished { stats.append(try trainer.step()) }
        let first = stats.prefix(5).map(\.loss).reduce(0, +) / 5, last = stats.suffix(5).map(\.loss).reduce(0, +) / 5
        print("BERT \(order)-LN: masked-LM loss \(first) -> \(last), sentence order \(stats[0].sentenceOrderLoss!) -> \(stats.last!.sentenceOrderLoss!)")
        #expect(last < first - 0.5)
        #expect(stats.allSatisfy { ($0.sentenceOrderLoss ?? 0) > 0.3 && ($0.sentenceOrderLoss ?? 9) < 1.5 })
    }

    @Test func resumedRunIsBitIdentical() throws {
        let config = try Self.config([("hidden-dropout", .number(0.1)), ("attention-dropout", .number(0.1))])
        let straight = try Self.trainer(config)
        let straightValues = try Self.run(straight, until: 6)
        let directory = ResumeTests.temporaryDirectory()
        let (values, resumed) = try Self.resumed(config, savingAt: 3, until: 6, in: directory)
        #expect(resumed.iteration == 6)
        #expect(values == straightValues)
        let n = straight.model.layout.totalCount
        #expect((0..<n).allSatisfy {
            straight.model.params.buffer.pointer[$0].bitPattern == resumed.model.params.buffer.pointer[$0].bitPattern
        })
        // A GPT run cannot load it.
        var gpt = try ResumeTests.config(prefix: try ResumeTests.corpus().prefix)
        gpt.load = directory
        #expect { _ = try ResumeTests.trainer(gpt) } throws: { "\($0)".contains("the checkpoint holds a pre-LN BERT") }
    }

    /// Tensor, pipeline and data parallelism (with ZeRO-1) on rank threads train as one rank:
    /// the same losses and norms up to the order of the sums over ranks.
    @Test(arguments: [(1, 1, 2, false), (1, 1, 2, true), (2, 1, 1, false), (1, 2, 1, false), (2, 2, 2, true)])
    func parallelLayoutsMatchOneRank(tensorParallel t: Int, pipelineParallel p: Int, dataParallel d: Int,
                                     distributed: Bool) throws {
        try Self.expectOneRank(tensorParallel: t, pipelineParallel: p, dataParallel: d, distributed: distributed)
    }

    /// Sequence parallelism (each tensor-parallel rank normalises, drops out and adds the token
    /// types of its block of tokens; the heads read the gathered rows) trains as one rank, in both
    /// LayerNorm orders, with dropout, and under TP 2 x PP 2 x DP 2 with ZeRO-1.
    @Test(arguments: [(1, 1, "pre", 0.0), (1, 1, "post", 0.0), (1, 1, "pre", 0.1), (2, 2, "post", 0.1)])
    func sequenceParallelMatchesOneRank(pipelineParallel p: Int, dataParallel d: Int, order: String, dropout: Double) throws {
        let settings: [(key: String, value: JSONValue)] = [
            ("bert-layernorm-order", .string(order)), ("hidden-dropout", .number(dropout)),
            ("attention-dropout", .number(dropout)),
        ]
        try Self.expectOneRank(tensorParallel: 2, pipelineParallel: p, dataParallel: d, distributed: d > 1,
                               settings: settings, sequenceParallel: true)
    }

    /// Runs `settings` on one rank and on the layout (rank threads) and expects the same values
    /// on every rank, within 1e-5 relative of one rank's.
    static func expectOneRank(tensorParallel t: Int, pipelineParallel p: Int, dataParallel d: Int, distributed: Bool,
                              settings: [(key: String, value: JSONValue)] = [], sequenceParallel: Bool = false) throws {
        let base = settings + [("eval-iters", .number(0))]
        let reference = try run(try trainer(try config(base)), until: 6)
        let config = try config(base + [("tensor-model-parallel-size", .number(Double(t))),
                                        ("pipeline-model-parallel-size", .number(Double(p))),
                                        ("data-parallel-size", .number(Double(d))),
                                        ("use-distributed-optimizer", .bool(distributed)),
                                        ("sequence-parallel", .bool(sequenceParallel))])
        let ranks = try ThreadCommunicator.run(size: t * p * d) { world in
            try run(try trainer(config, parallel: try ParallelState(world: world, tensorParallel: t, pipelineParallel: p)),
                    until: 6)
        }
        #expect(ranks.allSatisfy { $0 == ranks[0] })
        let worst = zip(ranks[0], reference).map { abs($0 - $1) / max(abs($1), 1e-6) }.max()!
        let layout = "TP \(t)\(sequenceParallel ? " SP" : "") x PP \(p) x DP \(d)\(distributed ? " ZeRO-1" : "")"
        print("BERT \(layout) \(settings.map { "\($0.key)=\($0.value.serialized)" }): worst relative difference \(worst) from one rank")
        #expect(worst < 1e-5)
    }

    /// bf16 and fp16 (with its loss scale) track the fp32 run (observed: bf16 within 7.9e-5, fp16
    /// 2.9e-2 after its skipped first iterations); TP 2 (sequence-parallel) x DP 2 with ZeRO-1 in
    /// bf16 matches one bf16 rank up to the order of the sums and roundings (observed: losses
    /// 3.8e-5, gradient norms 1.2e-3), and so does PP 2 x DP 2 with ZeRO-1 (losses 8.6e-6, norms
    /// 3.1e-4; its last stage reads the tied output layer from the bf16 copy alone); a bf16 run
    /// resumes bit-identically.
    @Test func mixedPrecisionTracksFP32() throws {
        let settings: [(key: String, value: JSONValue)] = [("eval-iters", .number(0)), ("train-iters", .number(8))]
        let fp32 = try Self.run(try Self.trainer(try Self.config(settings)), until: 8)
        for precision in ["bf16", "fp16"] {
            let reduced = try Self.run(try Self.trainer(try Self.config(settings + [(precision, .bool(true))])), until: 8)
            // Losses (the first two of every three values); fp16 skips its first iterations while the scale comes down.
            var differences = [Double]()
            for step in stride(from: 0, to: fp32.count, by: 3) {
                for index in [step, step + 1] where reduced[index].isFinite {
                    differences.append(abs(reduced[index] - fp32[index]) / fp32[index])
                }
            }
            let worst = differences.max() ?? 1
            print("BERT \(precision): worst loss difference \(worst) from fp32 over \(differences.count) losses")
            // fp16's skipped iterations (the scale coming down from 2^32) leave it a few updates behind.
            #expect(!differences.isEmpty && worst < (precision == "bf16" ? 2e-3 : 5e-2))
        }
        let bf16 = try Self.config(settings + [("bf16", .bool(true))])
        let reference = try Self.run(try Self.trainer(bf16), until: 8)
        let parallel = try Self.config(settings + [("bf16", .bool(true)), ("tensor-model-parallel-size", .number(2)),
                                                   ("data-parallel-size", .number(2)), ("use-distributed-optimizer", .bool(true)),
                                                   ("sequence-parallel", .bool(true))])
        let ranks = try ThreadCommunicator.run(size: 4) { world in
            try Self.run(try Self.trainer(parallel, parallel: try ParallelState(world: world, tensorParallel: 2, pipelineParallel: 1)),
                         until: 8)
        }
        // Each iteration's values are the two losses and the gradient norm: the worst relative
        // difference of each kind from one bf16 rank. Where the sums run in another order a bf16
        // weight can round the other way after an update; the tensor-parallel ranks also round
        // their partial input gradients of the vocabulary-split output layer to bf16 before
        // summing them (as Megatron's), which moves the norm most.
        func worst(_ values: [Double]) -> (losses: Double, norms: Double) {
            let relative = zip(values, reference).map { abs($0 - $1) / max(abs($1), 1e-6) }
            return (relative.enumerated().filter { $0.offset % 3 != 2 }.map(\.element).max()!,
                    relative.enumerated().filter { $0.offset % 3 == 2 }.map(\.element).max()!)
        }
        let tensorParallel = worst(ranks[0])
        print("BERT bf16 TP 2 SP x DP 2 ZeRO-1: worst relative difference from one bf16 rank \(tensorParallel)")
        #expect(tensorParallel.losses < 2e-4 && tensorParallel.norms < 3e-3)
        let pipelined = try Self.config(settings + [("bf16", .bool(true)), ("pipeline-model-parallel-size", .number(2)),
                                                    ("data-parallel-size", .number(2)), ("use-distributed-optimizer", .bool(true))])
        let stages = try ThreadCommunicator.run(size: 4) { world in
            try Self.run(try Self.trainer(pipelined, parallel: try ParallelState(world: world, tensorParallel: 1, pipelineParallel: 2)),
                         until: 8)
        }
        let pipeline = worst(stages[0])
        print("BERT bf16 PP 2 x DP 2 ZeRO-1: worst relative difference from one bf16 rank \(pipeline)")
        #expect(pipeline.losses < 2e-4 && pipeline.norms < 3e-3)
        // fp16 takes the same path (the last stage multiplies the fp16 copy of the tied output layer).
        let fp16Settings = settings + [("fp16", .bool(true)), ("loss-scale", .number(1024))]
        let fp16Reference = try Self.run(try Self.trainer(try Self.config(fp16Settings)), until: 8)
        let fp16Pipelined = try Self.config(fp16Settings + [("pipeline-model-parallel-size", .number(2)), ("data-parallel-size", .number(2)),
                                                            ("use-distributed-optimizer", .bool(true))])
        let fp16Stages = try ThreadCommunicator.run(size: 4) { world in
            try Self.run(try Self.trainer(fp16Pipelined, parallel: try ParallelState(world: world, tensorParallel: 1, pipelineParallel: 2)),
                         until: 8)
        }
        let fp16Worst = zip(fp16Stages[0], fp16Reference).map { abs($0 - $1) / max(abs($1), 1e-6) }.max()!
        print("BERT fp16 PP 2 x DP 2 ZeRO-1: worst relative difference \(fp16Worst) from one fp16 rank")
        #expect(fp16Stages[0].allSatisfy(\.isFinite) && fp16Worst < 1e-3)
        #expect(try Self.resumed(bf16, savingAt: 4, until: 8, in: ResumeTests.temporaryDirectory()).values == reference)
    }

    /// A TP 2 x PP 2 checkpoint resharded to one rank continues the original run's losses.
    @Test func reshardedCheckpointContinuesTheOriginalLosses() throws {
        let directory = ResumeTests.temporaryDirectory()
        let layout: [(key: String, value: JSONValue)] = [("eval-iters", .number(0)), ("tensor-model-parallel-size", .number(2)),
                                                         ("pipeline-model-parallel-size", .number(2))]
        let source = try Self.config(layout)
        let original = try ThreadCommunicator.run(size: 4) { world in
            let trainer = try Self.trainer(source, parallel: try ParallelState(world: world, tensorParallel: 2, pipelineParallel: 2))
            var values = try Self.run(trainer, until: 3)
            try trainer.save(to: directory + "/source")
            values += try Self.run(trainer, until: 6)
            return values
        }[0]
        try MergedCheckpoint(directory: directory + "/source", moments: true).reshard(to: directory + "/one", tensorParallel: 1)
        var target = try Self.config([("eval-iters", .number(0))])
        target.load = directory + "/one"
        let resumed = try Self.run(try Self.trainer(target), until: 6)
        let worst = zip(resumed, original.suffix(resumed.count)).map { abs($0 - $1) / max(abs($1), 1e-6) }.max()!
        print("BERT TP 2 x PP 2 -> one rank: worst relative difference \(worst)")
        #expect(resumed.count == 9 && worst < 1e-5)
    }

    /// Recomputation re-runs the padding-masked attention: the same bits as keeping everything.
    @Test(arguments: ["selective", "full"])
    func recomputationIsBitIdentical(granularity: String) throws {
        let reference = try Self.run(try Self.trainer(try Self.config([("eval-iters", .number(0))])), until: 4)
        let recomputed = try Self.run(try Self.trainer(try Self.config([("eval-iters", .number(0)),
                                                                       ("recompute-granularity", .string(granularity))])), until: 4)
        #expect(recomputed == reference)
    }

    /// `--data-path 0.3 A 0.7 B`: each sample comes from the dataset Megatron's greedy order picks,
    /// as that dataset alone builds it.
    @Test func weightedPrefixesAreBlended() throws {
        let second = try Self.makeCorpus()
        let words: [JSONValue] = [.string("0.3"), .string(Self.corpus.prefix), .string("0.7"), .string(second.prefix)]
        let trainer = try Self.trainer(try Self.config([("data-path", .array(words)), ("eval-iters", .number(0))]))
        #expect(try Self.run(trainer, until: 3).allSatisfy(\.isFinite))

        let builder = BERTSampleBuilder(cls: Self.vocabulary.classID, sep: Self.vocabulary.separatorID, mask: Self.vocabulary.maskID,
                                        pad: Self.vocabulary.padID, isContinuation: Self.vocabulary.tokens.map { $0.hasPrefix("##") },
                                        sequenceLength: 32, seed: 1234, classificationHead: true)
        let parts = try [Self.corpus.prefix, second.prefix].map {
            try BERTDataset(dataset: try IndexedDataset(prefix: $0), split: try DataSplit("90,10,0"), splitIndex: 0,
                            sampleCount: 20, builder: builder, shortSequenceProbability: 0.1)
        }
        let blend = try BlendedSampleSource(sources: parts, weights: [0.3, 0.7], size: 20)
        #expect(blend.datasetIndex == Blending.indices(weights: [0.3, 0.7], size: 20).dataset)
        for i in [0, 1, 7, 19] {
            var fromBlend = MicroBatch(batchSize: 1, sequenceLength: 0, tokens: [], labels: [], lossMask: [])
            var direct = fromBlend
            blend.append(sample: i, to: &fromBlend)
            parts[blend.datasetIndex[i]].append(sample: blend.datasetSampleIndex[i], to: &direct)
            #expect(fromBlend == direct && !fromBlend.tokens.isEmpty)
        }
    }

    /// Prefixes without weights blend one epoch of each in proportion to their samples (what
    /// megatron-core's builder means to do; its sample mapping refuses the missing count): no
    /// sentence starts two samples of an epoch, and the blend takes Megatron's greedy order over
    /// the epochs' sizes.
    @Test func unweightedPrefixesBlendOneEpochOfEach() throws {
        let second = try Self.makeCorpus()
        let unweighted: [JSONValue] = [.string(Self.corpus.prefix), .string(second.prefix)]
        let trainer = try Self.trainer(try Self.config([("data-path", .array(unweighted)), ("eval-iters", .number(0))]))
        #expect(try Self.run(trainer, until: 2).allSatisfy(\.isFinite))
        let blend = try #require(trainer.train as? BlendedSampleSource)
        let epochs = try blend.sources.map { try #require($0 as? BERTDataset) }
        for epoch in epochs {
            #expect(Set(epoch.samples.map(\.first)).count == epoch.samples.count)
        }
        #expect(blend.count == 24)  // 6 iterations of 4 samples, fewer than the two epochs hold
        #expect(blend.datasetIndex == Blending.indices(weights: Blending.normalize(epochs.map { Double($0.count) }), size: 24).dataset)
        // Asked for more samples than an epoch, the mapping runs more epochs: sentences repeat.
        let longer = try BERTDataset(dataset: epochs[0].dataset, split: try DataSplit("90,10,0"), splitIndex: 0,
                                     sampleCount: 3 * epochs[0].count, builder: epochs[0].builder, shortSequenceProbability: 0.1)
        #expect(Set(longer.samples.map(\.first)).count < longer.samples.count)
    }

    /// The sample mapping is cached as megatron-core caches it (`--data-cache-path`, else beside the
    /// data) and read back while its description holds; other settings, or a damaged file, rebuild it.
    @Test func sampleMappingIsCachedAndRebuiltWhenStale() throws {
        let dataset = try IndexedDataset(prefix: Self.corpus.prefix), split = try DataSplit("90,10,0")
        let builder = BERTSampleBuilder(cls: Self.vocabulary.classID, sep: Self.vocabulary.separatorID, mask: Self.vocabulary.maskID,
                                        pad: Self.vocabulary.padID, isContinuation: Self.vocabulary.tokens.map { $0.hasPrefix("##") },
                                        sequenceLength: 32, seed: 1234, classificationHead: true)
        let cache = ResumeTests.temporaryDirectory() + "/cache"
        func mapping(samples: Int? = 50, split splitIndex: Int = 0, probability: Double = 0.1) throws -> BERTDataset {
            try BERTDataset(dataset: dataset, split: split, splitIndex: splitIndex, sampleCount: samples, builder: builder,
                            shortSequenceProbability: probability, cacheDirectory: cache)
        }
        let first = try mapping(), again = try mapping()
        #expect(!first.loadedFromCache && again.loadedFromCache && again.samples == first.samples)
        for (label, other) in [("samples", try mapping(samples: 60)), ("one epoch", try mapping(samples: nil)),
                               ("valid split", try mapping(split: 1)), ("probability", try mapping(probability: 0.3))] {
            #expect(!other.loadedFromCache, "\(label)")
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: cache)
        #expect(files.filter { $0.hasSuffix("-BERTMaskedWordPieceDataset-train-sample_index.npy") }.count == 4)

        // A damaged file is rebuilt, not trusted.
        let alone = ResumeTests.temporaryDirectory()
        _ = try BERTDataset(dataset: dataset, split: split, splitIndex: 0, sampleCount: 50, builder: builder,
                            shortSequenceProbability: 0.1, cacheDirectory: alone)
        let stored = try #require(try FileManager.default.contentsOfDirectory(atPath: alone).first { $0.hasSuffix("sample_index.npy") })
        let bytes = try MappedFile.read(path: alone + "/" + stored)
        try AtomicFile.write(Array(bytes.dropLast(8)), to: alone + "/" + stored)
        let rebuilt = try BERTDataset(dataset: dataset, split: split, splitIndex: 0, sampleCount: 50, builder: builder,
                                      shortSequenceProbability: 0.1, cacheDirectory: alone)
        #expect(!rebuilt.loadedFromCache && rebuilt.samples == first.samples)

        // Training reads --data-cache-path (its mapping lands there), and without it caches beside
        // the data (a corpus of its own, whose folder holds no cache before).
        func trainMappings() throws -> Int {
            try FileManager.default.contentsOfDirectory(atPath: cache).filter { $0.hasSuffix("-train-sample_index.npy") }.count
        }
        let before = try trainMappings()
        let config = try Self.config([("data-cache-path", .string(cache)), ("eval-iters", .number(0))])
        _ = try Self.trainer(config)
        #expect(try trainMappings() == before + 1)
        #expect(try #require(try Self.trainer(config).train as? BERTDataset).loadedFromCache)
        let fresh = try Self.makeCorpus()
        let freshCache = BERTDataset.defaultCacheDirectory(try IndexedDataset(prefix: fresh.prefix))
        #expect(!FileManager.default.fileExists(atPath: freshCache))
        _ = try Self.trainer(try Self.config([("data-path", .string(fresh.prefix)), ("eval-iters", .number(0))]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: freshCache).contains { $0.hasSuffix("-train-sample_index.npy") })
    }

    /// `--train-data-path A --valid-data-path B`: training reads every document of A, validation
    /// every document of B, each as that dataset alone builds its split of weight one.
    @Test func perSplitPathsReadWholeDatasets() throws {
        let second = try Self.makeCorpus()
        let config = try Self.config([("data-path", .array([])), ("train-data-path", .array([.string(Self.corpus.prefix)])),
                                      ("valid-data-path", .array([.string(second.prefix)]))])
        let trainer = try Self.trainer(config)
        let values = try Self.run(trainer, until: 6)
        #expect(values.count == 6 * 3 + 2 * 2 && values.allSatisfy(\.isFinite))
        let train = try #require(trainer.train as? BERTDataset), valid = try #require(trainer.valid as? BERTDataset)
        #expect(train.dataset.prefix == Self.corpus.prefix && valid.dataset.prefix == second.prefix)
        for (source, split, index) in [(train, "1,0,0", 0), (valid, "0,1,0", 1)] {
            let alone = try BERTDataset(dataset: source.dataset, split: try DataSplit(split), splitIndex: index,
                                        sampleCount: source.count, builder: source.builder, shortSequenceProbability: 0.1)
            #expect(alone.samples == source.samples)
            // Every document is in the split: samples reach past document 72, where the 90% training
            // split of these 80 documents would end.
            #expect(source.samples.map(\.end).max()! > Int(source.dataset.documentIndices[72]))
        }
    }

    /// A dataset of whole documents (preprocessed without `--split-sentences`) is refused by name.
    @Test func documentLevelDataIsRefused() throws {
        let directory = ResumeTests.temporaryDirectory()
        try AtomicFile.write(Array("{\"text\": \"One sentence. Another one here.\"}\n{\"text\": \"A third. And a fourth.\"}\n".utf8),
                             to: directory + "/docs.jsonl")
        let preprocessor = Preprocessor(inputPath: directory + "/docs.jsonl", outputPrefix: directory + "/docs")
        _ = try preprocessor.run(tokenizer: Self.vocabulary)
        let config = try Self.config([("data-path", .string(preprocessor.datasetPrefix(key: "text")))])
        #expect { _ = try Self.trainer(config) } throws: { "\($0)".contains("BERT's data is preprocessed with --split-sentences") }
    }

    @Test func whatBERTCannotRunWithIsNamed() throws {
        func message(_ extra: [(key: String, value: JSONValue)]) -> String {
            do { _ = try Self.config(extra); return "" } catch { return "\(error)" }
        }
        #expect(message([("tokenizer-type", .string("GPT2BPETokenizer"))]).contains("--model-type bert: reads WordPiece"))
        #expect(message([("mask-prob", .number(1.5))]).contains("--mask-prob"))
        #expect(message([("bert-layernorm-order", .string("pre")), ("apply-residual-connection-post-layernorm", .bool(true))])
            .contains("pre contradicts --apply-residual-connection-post-layernorm"))
        #expect(try Self.config([("apply-residual-connection-post-layernorm", .bool(true))]).bertPostLayerNorm)
        #expect(message([("model-type", .string("t5"))]).contains("model-type must be gpt or bert, got t5"))
    }
}
