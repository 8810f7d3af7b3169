import ArgumentParser
import Distributed
import FileSupport
import Measurement
import Tokenizer
import Training
#if canImport(Glibc)
import Glibc
#endif

/// `megatron train`: Megatron's pretrain_gpt.py: one rank, rank threads, or one rank per
/// process under mpirun.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a GPT with Megatron's flags (and/or --config run.json).",
        discussion: """
        --config FILE reads the same settings from a JSON object or a YAML file (keys
        with - or _; YAML flat or in Megatron's nested --yaml-cfg layout); flags given
        on the command line override it; an unknown key or flag is an error.

        \(TrainingFlag.helpText())
        """)

    @Argument(parsing: .captureForPassthrough, help: "Training flags, e.g. --num-layers 4 --hidden-size 256 ...")
    var arguments: [String] = []

    func run() throws {
        if arguments.contains("--help") || arguments.contains("-h") {
            print(Self.helpMessage())
            return
        }
        let parsed = try TrainingConfig.settings(fromArguments: arguments)
        var sources = [(source: String, values: [(key: String, value: JSONValue)])]()
        if let file = parsed.config { sources.append((file, try TrainingConfig.settings(fromFile: file))) }
        sources.append(("command line", parsed.settings))
        let config = try TrainingConfig(settings: sources)
        let tokenizer = try config.tokenizerFile.map { try Tokenizer.load(tokenizerFile: $0) }
            ?? Tokenizer.load(vocabFile: config.vocabFile!, mergesFile: config.mergeFile!)
        guard let eod = tokenizer.endOfDocumentID else {
            throw ValidationError("the tokenizer has no <|endoftext|> token")
        }
        let modelParallel = config.tensorModelParallelSize * config.pipelineModelParallelSize
        let vocabularySize = tokenizer.vocabularySize
        try RankLauncher.run(worldSize: { mpiWorld in
            // Outside mpirun the layout sets the number of rank threads; under mpirun the data-
            // parallel size defaults to what the world leaves after tensor and pipeline parallelism.
            let dataParallel = config.dataParallelSize ?? (mpiWorld.map { max(1, $0 / modelParallel) } ?? 1)
            return modelParallel * dataParallel
        }) { world in
            let state = try world.map {
                try ParallelState(world: $0, tensorParallel: config.tensorModelParallelSize,
                                  pipelineParallel: config.pipelineModelParallelSize)
            } ?? .single
            try Self.train(config: config, vocabularySize: vocabularySize, eod: eod, parallel: state)
        }
    }

    /// The loop of one rank; global rank 0 logs and writes the metrics and event files.
    static func train(config: TrainingConfig, vocabularySize: Int, eod: Int32, parallel: ParallelState) throws {
        let trainer = try Trainer(config: config, vocabularySize: vocabularySize, endOfDocument: eod, parallel: parallel)
        let first = parallel.isFirst
        let metrics = first ? try config.metricsFile.map { try MetricsFile(path: $0) } : nil
        let tensorBoard = first ? try config.tensorboardDir.map { try TensorBoardWriter(directory: $0) } : nil
        // Only the logging rank measures the sgemm peak (the others would run it at the same time).
        var log = TrainingLog(trainer: trainer, peakFLOPs: first ? GEMMPeak.measure() * 1e9 : 1, metrics: metrics,
                              tensorBoard: tensorBoard, quiet: !first)
        log.start()
        while !trainer.finished {
            let stats = try trainer.step()
            log.record(stats)
            if trainer.iteration % config.evalInterval == 0 || trainer.finished, let loss = try trainer.evaluate() {
                log.validation(loss: loss)
            }
            if let save = config.save, let interval = config.saveInterval, trainer.iteration % interval == 0 {
                try trainer.save(to: save)
                log.note("saved checkpoint at iteration \(trainer.iteration) to \(save)")
            }
        }
        if let save = config.save, config.saveInterval.map({ trainer.iteration % $0 != 0 }) ?? true {
            try trainer.save(to: save)
            log.note("saved checkpoint at iteration \(trainer.iteration) to \(save)")
        }
        log.finish()
    }
}
