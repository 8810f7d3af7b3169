import Accelerator
import ArgumentParser
import Datasets
import Distributed
import FileSupport
import Measurement
import Synchronization
import Tokenizer
import Training
#if canImport(Glibc)
import Glibc
#endif

/// `megatron train`: Megatron's pretrain_gpt.py (or with `--model-type bert` pretrain_bert.py):
/// one rank, rank threads, or one rank per process under mpirun.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a GPT (or --model-type bert) with Megatron's flags (and/or --config run.json).",
        discussion: """
        --config FILE reads the same settings from a JSON object or a YAML file (keys
        with - or _; YAML flat or in Megatron's nested --yaml-cfg layout); flags given
        on the command line override it; an unknown key or flag is an error.

        \(TrainingFlag.helpText())
        """)

    @Argument(parsing: .captureForPassthrough, help: "Training flags, e.g. --num-layers 4 --hidden-size 256 ...")
    var arguments: [String] = []

    func run() throws {
        let startTime = monotonicSeconds()
        let startBytes = ProcessMemory.residentBytes()  // the planner's per-process baseline
        if arguments.contains("--help") || arguments.contains("-h") {
            print(Self.helpMessage())
            return
        }
        let parsed = try TrainingConfig.settings(fromArguments: arguments)
        var sources = [(source: String, values: [(key: String, value: JSONValue)])]()
        if let file = parsed.config { sources.append((file, try TrainingConfig.settings(fromFile: file))) }
        sources.append(("command line", parsed.settings))
        let config = try TrainingConfig(settings: sources)
        // Global rank 0 claims --save for the whole run before any rank writes, then clears what
        // killed runs left there.
        var saveLock: DirectoryLock?
        if let save = config.save, RankLauncher.isGlobalRankZero {
            saveLock = try SaveFolder.claim(save)
            let actions = try SaveFolder.removeStaleTemporaries(in: save)
            if !actions.isEmpty { printLine("> cleaned up after an earlier run in \(save): " + actions.joined(separator: ", ")) }
        }
        if config.exitSignalHandler { ExitConditions.installSignalHandler() }
        // Before any buffer is allocated: with a GPU they all take its managed memory.
        let device = try GPU.activate(config.device, allowsAsynchronous: true)
        if config.device != .cpu && RankLauncher.isGlobalRankZero { printLine("> \(device)") }
        // GPT reads byte-level BPE (its end-of-document id separates documents); BERT, WordPiece.
        let wordPiece: WordPieceTokenizer?, vocabularySize: Int, eod: Int32
        if config.modelType == .bert, let type = config.tokenizerType, let lowerCase = WordPieceTokenizer.megatronTypes[type] {
            let vocabulary = try WordPieceTokenizer(vocabularyFile: config.vocabFile!, lowerCase: lowerCase)
            (wordPiece, vocabularySize, eod) = (vocabulary, vocabulary.vocabularySize, vocabulary.separatorID)
        } else {
            let tokenizer = try config.tokenizerFile.map { try Tokenizer.load(tokenizerFile: $0) }
                ?? Tokenizer.load(vocabFile: config.vocabFile!, mergesFile: config.mergeFile!)
            guard let id = tokenizer.endOfDocumentID else {
                throw ValidationError("the tokenizer has no <|endoftext|> token")
            }
            (wordPiece, vocabularySize, eod) = (nil, tokenizer.vocabularySize, id)
        }
        let modelParallel = config.tensorModelParallelSize * config.pipelineModelParallelSize
        try RankLauncher.run(worldSize: { mpiWorld in
            // Outside mpirun the layout sets the number of rank threads; under mpirun the data-
            // parallel size defaults to what the world leaves after tensor and pipeline parallelism.
            let dataParallel = config.dataParallelSize ?? (mpiWorld.map { max(1, $0 / modelParallel) } ?? 1)
            if config.device == .cuda && modelParallel * dataParallel > 1 {
                throw LayoutError.invalid("--device cuda runs one rank; mpirun started \(modelParallel * dataParallel)")
            }
            return modelParallel * dataParallel
        }) { world in
            let state = try world.map {
                try ParallelState(world: $0, tensorParallel: config.tensorModelParallelSize,
                                  pipelineParallel: config.pipelineModelParallelSize)
            } ?? .single
            try Self.train(config: config, vocabularySize: vocabularySize, eod: eod, wordPiece: wordPiece, parallel: state,
                           startTime: startTime, startBytes: startBytes)
        }
        withExtendedLifetime(saveLock) {}
        if let profile = GPU.active?.profileReport { printError(profile) }  // MEGATRON_CUDA_PROFILE=1
    }

    /// The loop of one rank; global rank 0 logs and writes the metrics and event files. Ends at
    /// the last iteration, or earlier with a checkpoint when an `ExitConditions` reason comes up
    /// (`startTime`: when the run started, for `--exit-duration-in-mins`; `startBytes`: the
    /// process's resident memory then, the planner's baseline in the metrics file's header).
    static func train(config: TrainingConfig, vocabularySize: Int, eod: Int32, wordPiece: WordPieceTokenizer?,
                      parallel: ParallelState, startTime: Double, startBytes: Int) throws {
        let trainer = try Trainer(config: config, vocabularySize: vocabularySize, endOfDocument: eod, parallel: parallel,
                                  wordPiece: wordPiece)
        let first = parallel.isFirst
        let metrics = first ? try config.metricsFile.map { try MetricsFile(path: $0) } : nil
        let tensorBoard = first ? try config.tensorboardDir.map { try TensorBoardWriter(directory: $0) } : nil
        // Only the logging rank measures the GEMM peak (the others would run it at the same time),
        // on its share of the cores; MFU divides the whole run's FLOP/s by every rank's share.
        let ranks = Double(parallel.world?.size ?? 1)
        let peak = first ? GEMMPeak.measure(config.precision) : 0
        let peakFLOPs = first ? peak * 1e9 * ranks : 1
        var log = TrainingLog(trainer: trainer, peakFLOPs: peakFLOPs, metrics: metrics, tensorBoard: tensorBoard, quiet: !first)
        let exits = ExitConditions(config: config, startTime: startTime)
        log.start()
        if first && config.precision == .bf16, let note = BF16SpeedNote.measure(bf16Peak: peak) { log.note("note: " + note) }
        if let metrics, metrics.repairedBytes > 0 {
            log.note("cut off the torn last line (\(metrics.repairedBytes) bytes) of --metrics-file \(metrics.path)")
        }
        // The dashboard's line under its title, set as the run goes. The server starts before the
        // header is written, so a port already in use stops the run without a header record.
        let total = config.trainIters.map { " of \($0)" } ?? ""
        let status = Mutex("training from iteration \(trainer.iteration)")
        if let metrics, first, config.dashboardPort != nil {
            let address = try TrainingDashboard.start(config: config, metricsFile: metrics.path) { status.withLock { $0 } }
            log.note("dashboard on \(address)")
        }
        if let metrics {
            let header = TrainingDashboard.header(trainer: trainer, processBytes: Double(startBytes), peakFLOPs: log.peakFLOPs)
            do { try metrics.write(header) } catch {
                log.note("warning: --metrics-file: the header record was not written: \(error)")
            }
        }
        /// Whether `--save-interval` saves at the current iteration.
        let intervalSaves = { config.saveInterval.map { trainer.iteration % $0 == 0 } ?? false }
        func saveCheckpoint(to save: String) throws {
            try trainer.save(to: save)
            log.note("saved checkpoint at iteration \(trainer.iteration) to \(save)")
        }
        var exitReason: String?
        while !trainer.finished {
            let stats = try trainer.step()
            log.record(stats)
            status.withLock { $0 = "training: iteration \(trainer.iteration)\(total)" }
            if trainer.iteration % config.evalInterval == 0 || trainer.finished, let loss = try trainer.evaluate() {
                log.validation(loss: loss, sentenceOrderLoss: trainer.validationSentenceOrderLoss)
            }
            if let save = config.save, intervalSaves() { try saveCheckpoint(to: save) }
            if !trainer.finished, let reason = exits.reason(after: trainer.iteration, parallel: parallel) {
                exitReason = reason
                break
            }
        }
        // The end of the run, or an early exit: a checkpoint unless the interval just wrote one.
        if let save = config.save, !intervalSaves() {
            try saveCheckpoint(to: save)
        } else if config.save == nil && exitReason != nil {
            log.note("no --save: exiting without a checkpoint")
        }
        if let exitReason { log.note("exiting at iteration \(trainer.iteration): \(exitReason)") }
        status.withLock { $0 = "finished at iteration \(trainer.iteration)" + (exitReason.map { " (\($0))" } ?? "") }
        log.finish()
    }
}
