import ArgumentParser
import Datasets
import Evaluation
import FileSupport
import Tokenizer
import Training

/// `megatron evaluate`: loss and perplexity of a checkpoint on a dataset or a text file, or its
/// score on a zero- or few-shot task (`EvaluateTaskRun`).
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Loss and perplexity of a checkpoint on a dataset or a text file, or its score on a zero-/few-shot task.",
        discussion: """
        With --task NAME --task-data FILE.jsonl, the documents of the file (the fields of the
        task's public dataset, one JSON object per line) are scored as lm-evaluation-harness
        0.4.13's task of that name: the same prompts and continuations, log-likelihoods summed over
        the continuation's tokens, acc and acc_norm (multiple choice) or acc and perplexity
        (lambada_openai). --num-fewshot K prepends K examples drawn with Python's random.sample
        seeded by --fewshot-seed from --fewshot-data (default: the task file, leaving out the
        evaluated document). Tasks: \(TaskCatalog.names.joined(separator: ", ")).

        With --data-path, samples of --seq-length tokens are drawn in Megatron's order from the
        --split portion given (default: the whole dataset, "0,0,1") and the masked mean loss over
        --eval-iters micro-batches (default: all) is reported. With --text-file, the file is
        tokenized as one document without EOD and cut into consecutive windows of seq-length + 1
        tokens overlapping by one token (the last may be shorter); the loss is the mean negative
        log-likelihood of every token after the first, and word_ppl is WikiText's word-level
        perplexity exp(loss * (tokens - 1) / (words - 1)) with words = the text split on spaces.
        """)

    @Option(name: .flag(.load), help: .flag(.load))
    var load: String

    @Option(name: .flag(.dataPath), parsing: .upToNextOption, help: .flag(.dataPath))
    var dataPath: [String] = []

    @Option(name: .long, help: "Plain text file to score.")
    var textFile: String?

    @OptionGroup var task: TaskOptions

    @OptionGroup var tokenizer: TokenizerOptions
    @OptionGroup var deviceOptions: DeviceOptions

    @Option(name: .flag(.seqLength), help: .flag(.seqLength, "Also the window of --text-file (default: the model's maximum)."))
    var seqLength: Int?

    @Option(name: .flag(.split), help: .flag(.split, "The last nonzero part is evaluated."))
    var split = "0,0,1"

    @Option(name: .flag(.evalIters), help: .flag(.evalIters, "Default: every sample of the split."))
    var evalIters: Int?

    @Option(name: .flag(.microBatchSize), help: .flag(.microBatchSize, "With --task: requests per forward (default 1)."))
    var microBatchSize = 1
    @Option(name: .flag(.seed), help: .flag(.seed)) var seed = 1234

    @Flag(name: .long, help: "Print {\"tokens\", \"loss\", \"ppl\", \"word_ppl\"} as JSON.")
    var json = false

    @Flag(name: .long, help: "Run the linear layers' GEMMs in bf16 (as train --bf16).")
    var bf16 = false

    func validate() throws {
        guard [!dataPath.isEmpty, textFile != nil, task.task != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --data-path, --text-file and --task")
        }
        try task.validate()
        guard microBatchSize >= 1 else { throw ValidationError("--micro-batch-size must be at least 1") }
        if let evalIters { guard evalIters >= 1 else { throw ValidationError("--eval-iters must be at least 1") } }
        if let seqLength { guard seqLength >= 1 else { throw ValidationError("--seq-length must be at least 1") } }
        try TrainingFlag.seed.range?.check(Double(seed), flag: "--seed")  // a seed beyond UInt32 would trap
    }

    func run() throws {
        try deviceOptions.activate()
        let tokenizer = try tokenizer.load()
        let (model, iteration) = try Checkpoint.loadGPT(from: load, precision: bf16 ? .bf16 : .fp32, command: "evaluate")
        guard tokenizer.vocabularySize <= model.config.paddedVocabSize else {
            throw ValidationError("the tokenizer has \(tokenizer.vocabularySize) ids but the checkpoint's model only \(model.config.paddedVocabSize)")
        }
        let length = seqLength ?? model.config.maxPositionEmbeddings
        guard length <= model.config.maxPositionEmbeddings else {
            throw ValidationError("--seq-length \(length) exceeds the model's \(model.config.maxPositionEmbeddings) positions")
        }
        if task.task != nil {
            return try task.run(model: model, iteration: iteration, tokenizer: tokenizer, batchSize: microBatchSize, json: json)
        }
        let result: EvaluationResult
        if let textFile {
            let text = try UTF8Text.decode(try MappedFile.read(path: textFile), source: textFile)
            result = try Evaluation.text(model: model, tokens: tokenizer.encode(text), sequenceLength: length,
                                         words: Evaluation.wordCount(text))
        } else {
            guard let eod = tokenizer.endOfDocumentID else { throw ValidationError("the tokenizer has no <|endoftext|> token") }
            var config = GPTDatasetConfig(sequenceLength: length, split: try DataSplit(split), endOfDocumentID: eod)
            config.seed = UInt32(seed)
            let splitIndex = try DataSplit(split).bookends.lastIndex { $0 != nil }!
            let path = try DataPath(dataPath)
            let wanted = evalIters.map { $0 * microBatchSize }
            let source: GPTSampleSource
            if path.prefixes.count == 1 {  // one epoch of the split unless --eval-iters says how many
                source = try GPTDataset(dataset: try IndexedDataset(prefix: path.prefixes[0]), config: config,
                                        splitIndex: splitIndex, sampleCount: wanted)
            } else {
                guard let wanted else { throw ValidationError("a blended --data-path needs --eval-iters") }
                var sizes: [Int?] = [nil, nil, nil]
                sizes[splitIndex] = wanted
                source = try GPTDataBuilder.build(dataPath: path, config: config, sizes: sizes)[splitIndex]!
            }
            result = try Evaluation.dataset(model: model, source: source, microBatchSize: microBatchSize,
                                            maxSamples: evalIters.map { $0 * microBatchSize })
        }
        if json {
            var fields: [(key: String, value: JSONValue)] = [("tokens", .number(Double(result.tokens))),
                                                              ("loss", .number(result.loss)), ("ppl", .number(result.perplexity))]
            if let word = result.wordPerplexity { fields.append(("word_ppl", .number(word))) }
            print(JSONValue.object(fields).serialized)
        } else {
            print("checkpoint iteration \(iteration): \(result.tokens) tokens, loss \(fixed(result.loss, 4)), "
                  + "ppl \(fixed(result.perplexity, 3))" + (result.wordPerplexity.map { ", word ppl \(fixed($0, 3))" } ?? ""))
        }
    }
}
