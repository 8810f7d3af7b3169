import ArgumentParser
import Datasets
import Distributed
import Finetuning
import Models
import Tokenizer
import Training

extension FinetuneTask: ExpressibleByArgument {}

/// `megatron finetune`: a pretrained BERT fine-tuned on MNLI, QQP, RACE or BoolQ (Megatron-LM's
/// `tasks/main.py`), with the validation accuracy after every epoch.
struct FinetuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Fine-tune a pretrained BERT on mnli, qqp, race or boolq and report the validation accuracy.",
        discussion: """
        The task files are JSON Lines with the public datasets' fields (Hugging Face's glue/mnli,
        glue/qqp, race, boolq): mnli premise, hypothesis, label (0 entailment, 1 neutral,
        2 contradiction); qqp question1, question2, label; boolq question, passage, label or
        answer; race article, question, options (4), answer (A-D). Each example becomes
        [CLS] A [SEP] B [SEP] of --seq-length tokens (RACE: question with an option, then the
        article, one sequence per option), cut at the end as Megatron's tasks do.

        With --tensor-model-parallel-size, --pipeline-model-parallel-size and
        --data-parallel-size the ranks run as threads of this process, or one per process under
        mpirun; every layout trains as one rank does.
        """)

    @Option(name: .long, help: "mnli, qqp, race or boolq.")
    var task: FinetuneTask

    @Option(name: .long, parsing: .upToNextOption, help: "Training files (JSON Lines).")
    var trainData: [String]

    @Option(name: .long, parsing: .upToNextOption, help: "Validation files (JSON Lines).")
    var validData: [String]

    @Option(name: .long, help: "The pretrained BERT checkpoint directory (train --model-type bert --save, or an imported BertForPreTraining).")
    var pretrainedCheckpoint: String

    @OptionGroup var tokenizer: TokenizerOptions

    @Option(name: .long, help: "Tokens per sequence.") var seqLength = 128
    @Option(name: .long, help: "Examples per micro-batch (a RACE example is its 4 choices).") var microBatchSize = 8
    @Option(name: .long, help: "Examples per step, over the data-parallel ranks and their micro-batches (default: one micro-batch per data-parallel rank).")
    var globalBatchSize: Int?
    @Option(name: .long, help: "Tensor-parallel ranks.") var tensorModelParallelSize = 1
    @Option(name: .long, help: "Pipeline stages.") var pipelineModelParallelSize = 1
    @Option(name: .long, help: "Data-parallel ranks (default 1, or what mpirun's world leaves).") var dataParallelSize: Int?
    @Flag(name: .long, help: "ZeRO-1: shard the optimizer state over the data-parallel ranks.") var useDistributedOptimizer = false
    @Flag(name: .long, help: "Split the LayerNorms and dropouts over the tensor-parallel ranks' tokens.") var sequenceParallel = false
    @Flag(name: .long, help: "Compute in bf16 from fp32 master weights.") var bf16 = false
    @Flag(name: .long, help: "Compute in fp16 from fp32 master weights, with a loss scale.") var fp16 = false
    @Option(name: .long, help: "fp16: a constant loss scale (default: dynamic).") var lossScale: Double?
    @Option(name: .long, help: "fp16: the dynamic loss scale's first value.") var initialLossScale = 4_294_967_296.0
    @Option(name: .long, help: "Passes over the training data.") var epochs = 3
    @Option(name: .long, help: "Peak learning rate.") var lr = 2e-5
    @Option(name: .long, help: "Share of the steps of linear warmup (then linear decay to 0).") var lrWarmupFraction = 0.065
    @Option(name: .long, help: "AdamW weight decay.") var weightDecay = 0.01
    @Option(name: .long, help: "Global gradient-norm clipping (0: none).") var clipGrad = 1.0
    @Option(name: .long, help: "Dropout on the hidden states and on the pooled output before the task head.") var hiddenDropout = 0.1
    @Option(name: .long, help: "Dropout on the attention probabilities.") var attentionDropout = 0.1
    @Option(name: .long, help: "Seed of the head's initialization, the data order and the dropout masks.") var seed = 1234
    @Option(name: .long, help: "Steps between log lines.") var logInterval = 10
    @Option(name: .long, help: "Write the fine-tuned model and its optimizer state as a checkpoint here.") var save: String?

    func validate() throws {
        guard tokenizer.isWordPiece else {
            throw ValidationError("finetune reads BERT's WordPiece: give --tokenizer-type BertWordPieceLowerCase or BertWordPieceCase with --vocab-file vocab.txt")
        }
        for (value, flag) in [(seqLength, "--seq-length"), (microBatchSize, "--micro-batch-size"), (epochs, "--epochs"),
                              (logInterval, "--log-interval"), (globalBatchSize ?? 1, "--global-batch-size"),
                              (tensorModelParallelSize, "--tensor-model-parallel-size"),
                              (pipelineModelParallelSize, "--pipeline-model-parallel-size"),
                              (dataParallelSize ?? 1, "--data-parallel-size")] where value < 1 {
            throw ValidationError("\(flag) must be at least 1, got \(value)")
        }
        guard lr > 0 && lr.isFinite else { throw ValidationError("--lr must be positive, got \(lr)") }
        guard !(bf16 && fp16) else { throw ValidationError("--bf16 and --fp16 exclude each other") }
        if !fp16, let flag = [(lossScale != nil, "--loss-scale"), (initialLossScale != 4_294_967_296.0, "--initial-loss-scale")]
            .first(where: \.0)?.1 {
            throw ValidationError("\(flag) needs --fp16")
        }
        if sequenceParallel {
            guard tensorModelParallelSize > 1 else { throw ValidationError("--sequence-parallel needs --tensor-model-parallel-size > 1") }
            guard seqLength % tensorModelParallelSize == 0 else {
                throw ValidationError("--sequence-parallel: --seq-length \(seqLength) does not divide over --tensor-model-parallel-size \(tensorModelParallelSize)")
            }
        }
        for (value, flag) in [(lossScale ?? 1, "--loss-scale"), (initialLossScale, "--initial-loss-scale")] where !(value > 0 && value.isFinite) {
            throw ValidationError("\(flag) must be a positive number, got \(value)")
        }
        guard (0...1).contains(lrWarmupFraction) else { throw ValidationError("--lr-warmup-fraction must be in [0, 1], got \(lrWarmupFraction)") }
        for (value, flag) in [(weightDecay, "--weight-decay"), (clipGrad, "--clip-grad")] where !(value >= 0 && value.isFinite) {
            throw ValidationError("\(flag) must be a finite number >= 0, got \(value)")
        }
        for (value, flag) in [(hiddenDropout, "--hidden-dropout"), (attentionDropout, "--attention-dropout")] where !(0..<1).contains(value) {
            throw ValidationError("\(flag) must be in [0, 1), got \(value)")
        }
    }

    func run() throws {
        // Global rank 0 claims --save before training, so that a folder that cannot be written
        // fails now, not after the epochs, and clears what killed runs left there.
        let saveLock = try save.flatMap { path throws(TrainingError) in RankLauncher.isGlobalRankZero ? try SaveFolder.claim(path) : nil }
        defer { withExtendedLifetime(saveLock) {} }
        if let save, saveLock != nil {
            let actions = try SaveFolder.removeStaleTemporaries(in: save)
            if !actions.isEmpty { printLine("> cleaned up after an earlier run in \(save): " + actions.joined(separator: ", ")) }
        }
        guard let vocabulary = try tokenizer.loadText() as? WordPieceTokenizer else {
            throw ValidationError("finetune reads BERT's WordPiece vocabulary")
        }
        var settings = FinetuneSettings(task: task)
        settings.seqLength = seqLength
        settings.microBatchSize = microBatchSize
        settings.globalBatchSize = globalBatchSize
        settings.epochs = epochs
        settings.lr = lr
        settings.warmupFraction = lrWarmupFraction
        settings.weightDecay = weightDecay
        settings.clipGrad = clipGrad
        settings.seed = seed
        settings.hiddenDropout = Float(hiddenDropout)
        settings.attentionDropout = Float(attentionDropout)
        settings.precision = bf16 ? .bf16 : fp16 ? .fp16 : .fp32
        settings.lossScale = lossScale
        settings.initialLossScale = initialLossScale
        settings.useDistributedOptimizer = useDistributedOptimizer
        settings.sequenceParallel = sequenceParallel
        let train = TaskSequences.encode(try trainData.flatMap { try task.examples(path: $0) }, vocabulary: vocabulary,
                                         seqLength: seqLength)
        let valid = TaskSequences.encode(try validData.flatMap { try task.examples(path: $0) }, vocabulary: vocabulary,
                                         seqLength: seqLength)
        let run = try makeRun(settings: settings, vocabulary: vocabulary, train: train, valid: valid)
        let (t, p) = (tensorModelParallelSize, pipelineModelParallelSize)
        try RankLauncher.run(worldSize: { mpiWorld in
            (dataParallelSize ?? (mpiWorld.map { max(1, $0 / (t * p)) } ?? 1)) * t * p
        }) { world in
            try run.train(parallel: try world.map { try ParallelState(world: $0, tensorParallel: t, pipelineParallel: p) } ?? .single)
        }
    }

    /// The run's inputs: the starting weights are made once for every rank of this process
    /// (which slice their shards from them), and the pretrained model is released after.
    private func makeRun(settings: FinetuneSettings, vocabulary: WordPieceTokenizer, train: [EncodedExample],
                         valid: [EncodedExample]) throws -> FinetuneRun {
        let (pretrained, iteration) = try Checkpoint.loadModel(from: pretrainedCheckpoint)
        guard vocabulary.vocabularySize <= pretrained.config.acceptedVocabularySize else {
            throw ValidationError("--vocab-file has \(vocabulary.vocabularySize) pieces but the checkpoint's model accepts \(pretrained.config.acceptedVocabularySize)")
        }
        return FinetuneRun(settings: settings, train: train, valid: valid,
                           start: try Finetuner.startingWeights(pretrained: pretrained, settings: settings),
                           description: "\(pretrainedCheckpoint) (iteration \(iteration))", logInterval: logInterval, save: save)
    }
}

/// One fine-tuning run's inputs, shared by its ranks: each rank takes its shards of the
/// starting weights, which no rank changes.
private struct FinetuneRun: Sendable {
    let settings: FinetuneSettings
    let train: [EncodedExample], valid: [EncodedExample]
    let start: Finetuner.StartingWeights
    let description: String
    let logInterval: Int
    let save: String?

    /// The epochs on one rank; the first rank logs.
    func train(parallel: ParallelState) throws {
        let finetuner = try Finetuner(startingWeights: start, settings: settings, trainExamples: train.count, parallel: parallel)
        let log = parallel.isFirst
        let layout = parallel.world == nil ? "" : ", TP \(parallel.grid.tensorParallel) x PP \(parallel.pipelineParallel) x DP \(parallel.dataParallel)"
        if log {
            printLine("> fine-tuning \(description) on \(settings.task.rawValue): \(train.count) training and "
                      + "\(valid.count) validation examples, \(finetuner.stepsPerEpoch) steps per epoch of "
                      + "\(finetuner.globalBatchSize), head \(settings.task.head)\(layout)")
        }
        var best = 0.0
        for epoch in 1...settings.epochs {
            var losses = [Double](), skipped = 0
            var since = monotonicSeconds()  // the time of the steps since the last line, without validation
            try finetuner.trainEpoch(epoch, examples: train) { step in
                losses.append(step.loss)
                if step.skipped { skipped += 1 }
                if step.step % logInterval == 0 {
                    // fp16: the scale and the skipped steps since the last line, as Megatron logs them.
                    let scale = settings.precision == .fp16
                        ? " loss scale: \(step.lossScale) | number of skipped iterations: \(skipped) |" : ""
                    let now = monotonicSeconds()
                    let elapsed = fixed((now - since) * 1000 / Double(losses.count), 1)
                    since = now
                    if log {
                        printLine(" epoch \(epoch) | step \(step.step) | elapsed time per iteration (ms): \(elapsed)"
                                  + " | loss: \(scientificE(losses.reduce(0, +) / Double(losses.count)))"
                                  + " | learning rate: \(scientificE(step.learningRate)) |\(scale) grad norm: \(fixed(step.gradNorm, 3)) |")
                    }
                    losses.removeAll()
                    skipped = 0
                }
            }
            let (correct, total) = try finetuner.accuracy(valid)
            let accuracy = total > 0 ? Double(correct) / Double(total) : 0
            best = max(best, accuracy)
            if log { printLine(" validation accuracy after epoch \(epoch): \(fixed(accuracy * 100, 2))% (\(correct) of \(total))") }
        }
        if log { printLine("> best validation accuracy: \(fixed(best * 100, 2))%") }
        if let save {
            try finetuner.save(to: save)
            if log { printLine("> saved the fine-tuned model (iteration \(finetuner.steps)) to \(save)") }
        }
    }
}
