import FileSupport
import Kernels
import Foundation
import Models
import Optimizer
import Testing
@testable import Training

/// A Megatron-LM checkpoint imported and trained further here: the run takes the checkpoint's
/// padded vocabulary (2112, Megatron-LM's padding of the 2048-id test tokenizer to a multiple of
/// 96, which this project's default of 128 would not give), starts from its weights, and learns;
/// Megatron's --finetune and --no-load-optim then continue from what it saved.
@Suite(.serialized) struct MegatronLMTrainingTests {
    /// A small run on the test corpus shaped like the Megatron-LM fixtures' model.
    static func settings() throws -> [(key: String, value: JSONValue)] {
        let (_, prefix) = try ResumeTests.corpus()
        return [
            ("num-layers", .number(4)), ("hidden-size", .number(48)), ("num-attention-heads", .number(4)),
            ("seq-length", .number(16)), ("max-position-embeddings", .number(32)), ("micro-batch-size", .number(2)),
            ("global-batch-size", .number(4)), ("lr", .number(1e-3)), ("train-iters", .number(8)), ("eval-interval", .number(100)),
            ("data-path", .string(prefix)), ("tokenizer-file", .string(ResumeTests.tokenizerFile)), ("split", .string("90,10,0")),
        ]
    }

    @Test func importedCheckpointTrainsOn() throws {
        let (imported, _) = try MegatronLMCheckpoint.read(directory: MegatronLMCheckpointTests.fixtures + "/tp1")
        let directory = ResumeTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let checkpoint = directory + "/checkpoint"
        try Checkpoint.save(to: checkpoint, model: imported,
                            moments: .whole(AdamWOptimizer(layout: imported.layout, hyperparameters: AdamW.Hyperparameters(learningRate: 0))),
                            state: Checkpoint.State(iteration: 0, consumedSamples: 0, consumedValidSamples: 0, optimizerStep: 0, seed: 1234))
        let settings = try Self.settings() + [("load", .string(checkpoint))]
        let trainer = try Trainer(config: try TrainingConfig(settings: [("test", settings)]), vocabularySize: 2048, endOfDocument: 0)
        #expect(trainer.model.config.paddedVocabSize == 2112 && !trainer.model.config.maskPaddedVocabulary)
        for spec in imported.layout.specs {
            #expect(trainer.model.params.values(spec.name) == imported.params.values(spec.name), "\(spec.name)")
        }
        var losses = [Double]()
        while trainer.iteration < 8 { losses.append(try trainer.step().loss) }
        #expect(losses.allSatisfy(\.isFinite) && losses.suffix(2).reduce(0, +) < losses.prefix(2).reduce(0, +), "\(losses)")

        // Continued with Megatron's --finetune (weights only) and --no-load-optim (fresh moments).
        let saved = directory + "/trained"
        try trainer.save(to: saved)
        let trainedWeights = trainer.model.layout.specs.map { trainer.model.params.values($0.name) }
        for (flag, iteration) in [("finetune", 0), ("no-load-optim", 8)] {
            var continued = settings.filter { $0.key != "load" } + [("load", .string(saved)), (flag, .bool(true))]
            continued = continued.map { $0.key == "train-iters" ? ($0.key, .number(12)) : $0 }
            let next = try Trainer(config: try TrainingConfig(settings: [("test", continued)]), vocabularySize: 2048, endOfDocument: 0)
            #expect(next.iteration == iteration && next.optimizer.step == 0, "--\(flag)")
            #expect(next.model.layout.specs.map { next.model.params.values($0.name) } == trainedWeights, "--\(flag)")
        }

        // A tokenizer larger than the imported vocabulary is refused by name.
        #expect { _ = try Trainer(config: try TrainingConfig(settings: [("test", settings)]), vocabularySize: 3000, endOfDocument: 0) }
            throws: { "\($0)".contains("the tokenizer has 3000 ids") }
    }

    /// The model-shape flags Megatron-LM job scripts pass reach the model; a checkpoint fixes
    /// them for a run that loads it, and a flag asking for something else is an error naming it.
    @Test func megatronShapeFlagsReachTheModel() throws {
        let shape: [(key: String, value: JSONValue)] = [
            ("norm-epsilon", .number(1e-6)), ("make-vocab-size-divisible-by", .number(96)),
            ("untie-embeddings-and-output-weights", .bool(true)), ("train-iters", .number(1)),
        ]
        let settings = try Self.settings().filter { $0.key != "train-iters" } + shape
        let trainer = try Trainer(config: try TrainingConfig(settings: [("test", settings)]), vocabularySize: 2048, endOfDocument: 0)
        let config = trainer.model.config
        #expect(config.layerNormEpsilon == 1e-6 && config.paddedVocabSize == 2112 && config.untieEmbeddingsAndOutputWeights)
        #expect(trainer.model.layout.index(of: outputLayerName) != nil)
        _ = try trainer.step()
        let directory = ResumeTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try trainer.save(to: directory)
        // Loaded without the flags: the checkpoint's untied layer and padding, and its epsilon given again.
        let plain = try Self.settings() + [("norm-epsilon", .number(1e-6)), ("load", .string(directory))]
        let loaded = try Trainer(config: try TrainingConfig(settings: [("test", plain)]), vocabularySize: 2048, endOfDocument: 0)
        #expect(loaded.model.config == config)
        let otherEpsilon = plain.filter { $0.key != "norm-epsilon" }
        #expect { _ = try Trainer(config: try TrainingConfig(settings: [("test", otherEpsilon)]), vocabularySize: 2048, endOfDocument: 0) }
            throws: { "\($0)".contains("--norm-epsilon") }
        // A tied checkpoint does not become untied.
        let tied = directory + "/tied"
        let tiedTrainer = try Trainer(config: try TrainingConfig(settings: [("test", Self.settings())]), vocabularySize: 2048, endOfDocument: 0)
        try tiedTrainer.save(to: tied)
        let untie = try Self.settings() + [("untie-embeddings-and-output-weights", .bool(true)), ("load", .string(tied))]
        #expect { _ = try Trainer(config: try TrainingConfig(settings: [("test", untie)]), vocabularySize: 2048, endOfDocument: 0) }
            throws: { "\($0)".contains("--untie-embeddings-and-output-weights") }
    }

    /// Megatron job scripts' data and tokenizer flags: per-split blends instead of --data-path
    /// and --split (the sample order is megatron-core's, `GPTDatasetTests`), and --tokenizer-type
    /// checked against the files; conflicting or unsupported ones are errors naming the flag.
    @Test func perSplitDataPathsAndTokenizerType() throws {
        let base = try Self.settings()
        let prefix = try ResumeTests.corpus().1
        let perSplit = base.filter { $0.key != "data-path" && $0.key != "split" } + [
            ("train-data-path", .string(prefix)), ("valid-data-path", .string(prefix)), ("test-data-path", .string(prefix)),
            ("tokenizer-type", .string("HuggingFaceTokenizer")), ("eval-iters", .number(1)),
        ]
        let trainer = try Trainer(config: try TrainingConfig(settings: [("test", perSplit)]), vocabularySize: 2048, endOfDocument: 0)
        let step = try trainer.step()
        let validation = try #require(try trainer.evaluate())
        #expect(step.loss.isFinite && validation.isFinite)
        for (settings, flag) in [
            (base + [("train-data-path", .string(prefix))], "--train-data-path"),
            (base + [("valid-data-path", .string(prefix))], "--valid-data-path"),
            (base + [("tokenizer-type", .string("GPT2BPETokenizer"))], "--tokenizer-type"),
            (base + [("tokenizer-type", .string("SentencePieceTokenizer"))], "--tokenizer-type"),
        ] as [([(key: String, value: JSONValue)], String)] {
            #expect { _ = try TrainingConfig(settings: [("test", settings)]) } throws: { "\($0)".contains(flag) }
        }
    }
}
