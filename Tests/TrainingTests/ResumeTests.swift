#if canImport(Glibc)
import Optimizer
import Glibc
#endif
import Datasets
import FileSupport
import Testing
import TestSupport
import Tokenizer
@testable import Training

/// Training on a small preprocessed corpus: stop-and-resume equals an uninterrupted run bit for bit.
@Suite(.serialized) struct ResumeTests {
    static let repository = repositoryRoot()
    static let tokenizerFile = repository + "/Tests/DataTests/Fixtures/tokenizer/tokenizer.json"

    /// Preprocesses the first 80 documents of the bundled corpus into a fresh directory.
    static func corpus() throws -> (directory: String, prefix: String) {
        let directory = temporaryDirectory()
        var lines = [String]()
        try TextDocuments.forEach(in: repository + "/data/devils-dictionary/devils_dictionary.jsonl") { text in
            if lines.count < 80 { lines.append(JSONValue.object([("text", .string(text))]).serialized) }
        }
        try AtomicFile.write(Array(lines.joined(separator: "\n").utf8), to: directory + "/corpus.jsonl")
        var preprocessor = Preprocessor(inputPath: directory + "/corpus.jsonl", outputPrefix: directory + "/corpus")
        preprocessor.appendEndOfDocument = true
        _ = try preprocessor.run(tokenizer: try Tokenizer.load(tokenizerFile: tokenizerFile))
        return (directory, preprocessor.datasetPrefix(key: "text"))
    }

    /// A new empty directory under /tmp.
    static func temporaryDirectory() -> String {
        var template = Array("/tmp/megatron-train-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    static func config(prefix: String, extra: [(key: String, value: JSONValue)] = []) throws -> TrainingConfig {
        let settings: [(key: String, value: JSONValue)] = [
            ("num-layers", .number(2)), ("hidden-size", .number(32)), ("num-attention-heads", .number(2)),
            ("seq-length", .number(16)), ("micro-batch-size", .number(2)), ("global-batch-size", .number(4)),
            ("lr", .number(3e-3)), ("min-lr", .number(3e-4)), ("lr-decay-style", .string("cosine")),
            ("lr-warmup-iters", .number(2)), ("train-iters", .number(6)), ("eval-interval", .number(3)),
            ("eval-iters", .number(1)), ("data-path", .string(prefix)), ("tokenizer-file", .string(tokenizerFile)),
            ("split", .string("90,10,0")), ("weight-decay", .number(0.1)), ("clip-grad", .number(0.5)),
        ]
        return try TrainingConfig(settings: [("test", settings + extra)])
    }

    static func trainer(_ config: TrainingConfig) throws -> Trainer {
        try Trainer(config: config, vocabularySize: 2048, endOfDocument: 0)
    }

    /// Runs until `stopAt`, evaluating every eval interval; returns the losses seen.
    static func run(_ trainer: Trainer, until stopAt: Int) throws -> [Double] {
        var losses = [Double]()
        while trainer.iteration < stopAt {
            losses.append(try trainer.step().loss)
            if trainer.iteration % trainer.config.evalInterval == 0, let loss = try trainer.evaluate() {
                losses.append(loss)
            }
        }
        return losses
    }

    /// Also with dropout: its masks are keyed by the consumed samples the checkpoint keeps.
    @Test(arguments: [false, true])
    func resumedRunIsBitIdentical(dropout: Bool) throws {
        let (directory, prefix) = try Self.corpus()
        let config = try Self.config(prefix: prefix, extra: dropout
            ? [("hidden-dropout", .number(0.1)), ("attention-dropout", .number(0.1))] : [])

        let straight = try Self.trainer(config)
        let straightLosses = try Self.run(straight, until: 6)
        #expect(straightLosses.count == 8)  // 6 iterations + 2 validations
        #expect(straightLosses[0] > straightLosses[6])

        let first = try Self.trainer(config)
        var losses = try Self.run(first, until: 3)
        try first.save(to: directory + "/checkpoints")
        #expect(try Checkpoint.latestIteration(in: directory + "/checkpoints") == 3)
        var resumedConfig = config
        resumedConfig.load = directory + "/checkpoints"
        let resumed = try Self.trainer(resumedConfig)
        #expect(resumed.iteration == 3 && resumed.consumedSamples == 12)
        losses += try Self.run(resumed, until: 6)

        #expect(losses == straightLosses)
        let n = straight.model.layout.totalCount
        for (a, b) in [(straight.model.params, resumed.model.params), (plain(straight).m, plain(resumed).m),
                       (plain(straight).v, plain(resumed).v)] {
            #expect((0..<n).allSatisfy { a.buffer.pointer[$0].bitPattern == b.buffer.pointer[$0].bitPattern })
        }
    }

    @Test func checkpointOfAnotherShapeIsAClearError() throws {
        let (directory, prefix) = try Self.corpus()
        let trainer = try Self.trainer(try Self.config(prefix: prefix))
        _ = try trainer.step()
        try trainer.save(to: directory + "/checkpoints")
        let other = try Self.config(prefix: prefix, extra: [("hidden-size", .number(48)),
                                                            ("load", .string(directory + "/checkpoints"))])
        do {
            _ = try Self.trainer(other)
            Issue.record("loading a checkpoint of another shape must fail")
        } catch {
            #expect("\(error)".contains("but this run asks for"))
        }
        // Saving again over the same iteration replaces it whole; the tracker still names it.
        try trainer.save(to: directory + "/checkpoints")
        #expect(try Checkpoint.latestIteration(in: directory + "/checkpoints") == 1)
    }
}

/// The plain AdamW of a run without the distributed optimizer.
func plain(_ trainer: Trainer) -> AdamWOptimizer {
    guard let optimizer = trainer.optimizer as? AdamWOptimizer else { preconditionFailure("expected the plain AdamW optimizer") }
    return optimizer
}
