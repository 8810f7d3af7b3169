import Accelerator
import Datasets
import Distributed
import Kernels
import Models
import Optimizer
import Parameters
import Pipeline
import Tokenizer

/// One iteration's figures.
public struct IterationStats: Sendable {
    public var iteration: Int
    public var consumedSamples: Int
    public var globalBatchSize: Int
    public var learningRate: Double
    /// Mean over micro-batches of each micro-batch's masked mean loss (Megatron's lm loss).
    public var loss: Double
    /// BERT: the mean sentence-order loss (Megatron's sop loss; nil for GPT or without the
    /// binary head). The step's objective is `loss` plus it.
    public var sentenceOrderLoss: Double?
    /// Global gradient norm before clipping (of the unscaled gradients with fp16).
    public var gradNorm: Double
    /// The update was skipped: with fp16 because the gradients overflowed, otherwise because the
    /// loss or the gradients were not finite (only with `--no-check-for-nan-in-loss-and-grad`;
    /// with the check such an iteration throws).
    public var skipped: Bool
    /// The loss scale this iteration's backward used (1 without fp16).
    public var lossScale: Double
    public var seconds: Double
    /// On an iteration the log reports (every `--log-interval`, and the last): each stage of this
    /// rank's pipeline's compute and wait seconds summed over the steps since the previous one
    /// (the wait is where the bubble and the stage's sends and receives are); empty otherwise.
    public var stageSeconds: [(compute: Double, wait: Double)] = []
}

/// The training loop of one rank: gradient accumulation over micro-batches, global-norm
/// clipping, LR warmup and decay and batch-size ramp-up counted in samples, validation, and
/// checkpoints that resume bit-identically. With a `ParallelState`, the model is split over the
/// tensor-parallel group and into pipeline stages, and each data-parallel rank trains on its
/// slice of every global batch: the stage runs its 1F1B (or interleaved 1F1B) instruction list,
/// the tied embedding's gradients are summed between the first and last stage, and gradients are
/// all-reduced over the data-parallel group (or reduce-scattered into the distributed
/// optimizer's shards).
public final class Trainer {
    public let config: TrainingConfig
    public let parallel: ParallelState
    public let model: GPTModel
    /// AdamW over the whole local model, or with `--use-distributed-optimizer` and data
    /// parallelism the ZeRO-1 `DistributedOptimizer`, whose ranks keep moments for their shard.
    public var optimizer: any ModelOptimizer { trainingStep.optimizer }
    public let schedule: LearningRateSchedule
    public let rampup: BatchSizeRampup?
    public let totalSamples: Int
    public private(set) var iteration = 0
    public private(set) var consumedSamples = 0
    public private(set) var consumedValidSamples = 0
    /// Samples the learning-rate schedule has advanced over: as `consumedSamples`, less the
    /// batches of skipped iterations (Megatron steps its scheduler only after an update).
    public private(set) var scheduledSamples = 0
    /// fp16's loss scaler (nil in fp32 and bf16).
    public var lossScaler: LossScaler? { trainingStep.lossScaler }
    /// A note for the log when the checkpoint loaded was written in another precision.
    public private(set) var loadNote: String?
    /// Set when `--load` named a folder without any checkpoint yet (Megatron's first launch):
    /// the run starts from scratch and the log shows this warning.
    public private(set) var loadWarning: String?
    /// The training and validation samples (`--data-path` with `--split`, or the per-split paths).
    let train: any TrainingSampleSource
    let valid: (any TrainingSampleSource)?
    /// BERT: the sentence-order loss of the last `evaluate` (nil for GPT or without the binary head).
    public private(set) var validationSentenceOrderLoss: Double?
    /// The iteration's schedule, gradient sync, clipping and update.
    private let trainingStep: TrainingStep
    private var executor: PipelineExecutor { trainingStep.executor }
    /// What this rank allocates (counted from the buffer sizes, before allocating them).
    public let memory: MemoryRequirement
    /// This stage's compute and wait seconds in the steps since the last `reportedStageSeconds`.
    private var unreportedStageSeconds = (compute: 0.0, wait: 0.0)
    /// Bytes this rank's saved activations (every micro-batch set its pipeline schedule keeps in
    /// flight) and the model's shared scratch hold now, counted from the allocated buffers.
    public var allocatedActivationBytes: (saved: Int, scratch: Int) { (executor.activationBytes, model.scratchBytes) }

    /// Builds the model (initialised from `--seed`), the datasets and, with `--load`, restores
    /// the latest checkpoint. `vocabularySize` and `endOfDocument` come from the tokenizer;
    /// BERT's data needs its WordPiece vocabulary `wordPiece` (its size is the vocabulary's).
    public init(config: TrainingConfig, vocabularySize: Int, endOfDocument: Int32,
                parallel: ParallelState = .single, wordPiece: WordPieceTokenizer? = nil) throws {
        self.config = config
        self.parallel = parallel
        var modelConfig = GPTConfig(numLayers: config.numLayers, hiddenSize: config.hiddenSize,
                                    numAttentionHeads: config.numAttentionHeads,
                                    maxPositionEmbeddings: config.maxPositionEmbeddings ?? config.seqLength,
                                    vocabSize: vocabularySize, makeVocabSizeDivisibleBy: config.makeVocabSizeDivisibleBy,
                                    initMethodStd: Float(config.initMethodStd), layerNormEpsilon: Float(config.normEpsilon),
                                    hiddenDropout: Float(config.hiddenDropout), attentionDropout: Float(config.attentionDropout),
                                    exactGELU: config.noBiasGeluFusion, ffnHiddenSize: config.ffnHiddenSize,
                                    untieEmbeddingsAndOutputWeights: config.untieEmbeddingsAndOutputWeights,
                                    bert: config.modelType == .bert
                                        ? BERTSettings(residualConnectionPostLayerNorm: config.bertPostLayerNorm,
                                                       binaryHead: !config.bertNoBinaryHead) : nil)
        if let load = config.load, (try? Checkpoint.latestIteration(in: load)) != nil {
            modelConfig = try Checkpoint.modelConfig(modelConfig, loading: load)
        }
        do { try modelConfig.validate() } catch { throw TrainingError(error) }
        // The layout's rules, checked once before any work: the model divides over TP and the
        // stages, and every global batch size of the run (each ramp-up size too) over DP and,
        // interleaved, into a multiple of the stages.
        let rampup = try config.rampup()
        let sizes = rampup.map { Array(stride(from: $0.start, through: $0.finalBatchSize, by: $0.increment)) + [$0.finalBatchSize] }
            ?? [config.globalBatchSize]
        let layout: RankGrid
        do {
            let grid = parallel.grid
            layout = try RankGrid(tensorParallel: grid.tensorParallel, dataParallel: grid.dataParallel,
                                  pipelineParallel: grid.pipelineParallel, virtualStages: config.virtualPipelineChunks)
            try layout.validate(heads: modelConfig.numAttentionHeads, hidden: modelConfig.hiddenSize,
                                paddedVocabulary: modelConfig.paddedVocabSize, layers: modelConfig.numLayers)
            for size in sizes { try layout.validate(globalBatchSize: size, microBatchSize: config.microBatchSize) }
        } catch {
            throw TrainingError.layout(error.description)
        }
        // Everything this machine's ranks will allocate, against what it has, before allocating.
        memory = try MemoryRequirement.check(config: modelConfig, training: config, layout: layout,
                                             parallel: parallel)[parallel.pipelineRank]
        let part = try GPTPipelinePart(numLayers: modelConfig.numLayers, stages: parallel.pipelineParallel,
                                       stage: parallel.pipelineRank, chunks: config.virtualPipelineChunks)
        let zeroShards = config.useDistributedOptimizer ? parallel.dataParallel : 1
        // bf16 and fp16 under ZeRO-1: the optimizer holds the fp32 master weights, sharded.
        let shardedMasters = config.shardsMasterWeights(dataParallel: parallel.dataParallel)
        let built = try GPTModel(config: modelConfig, seed: UInt64(config.seed), tensorParallel: parallel.tensor, part: part,
                                 recomputation: config.recomputation, shardedOver: zeroShards, precision: config.precision,
                                 sequenceParallel: config.usesSequenceParallel, keepsMasterWeights: !shardedMasters)
        model = built
        var lossScaler: LossScaler?
        if config.fp16 {
            lossScaler = config.lossScale.map { LossScaler(constant: $0) }
                ?? LossScaler(initialScale: config.initialLossScale, minimumScale: config.minLossScale,
                              window: config.lossScaleWindow, hysteresis: config.hysteresis)
        }
        var hyper = AdamW.Hyperparameters(learningRate: 0)
        hyper.beta1 = Float(config.adamBeta1)
        hyper.beta2 = Float(config.adamBeta2)
        hyper.epsilon = Float(config.adamEps)
        hyper.weightDecay = Float(config.weightDecay)
        var stepSettings = TrainingStep.Settings(clipGrad: config.clipGrad)
        stepSettings.checkForNaN = config.checkForNaNInLossAndGrad
        stepSettings.maxSkipsAtMinLossScale = config.maxSkipsAtMinLossScale
        stepSettings.bucketSize = config.ddpBucketSize
        trainingStep = TrainingStep(model: built, parallel: parallel, hyperparameters: hyper,
                                    distributed: config.useDistributedOptimizer, settings: stepSettings, lossScaler: lossScaler)
        // The fresh weights, a tensor at a time: the optimizer keeps its shard, the model its copies.
        if shardedMasters { trainingStep.setWeights(built.forEachFreshTensor) }
        schedule = try config.schedule()
        self.rampup = rampup
        totalSamples = try config.totalSamples()

        let split = try DataSplit(config.split)
        var datasetConfig = GPTDatasetConfig(sequenceLength: config.seqLength, split: split, endOfDocumentID: endOfDocument)
        datasetConfig.seed = UInt32(config.seed)
        datasetConfig.eodMaskLoss = config.eodMaskLoss
        datasetConfig.cacheDirectory = config.dataCachePath
        let gbs = config.globalBatchSize
        let trainIters = config.trainIters ?? (totalSamples + gbs - 1) / gbs
        let validSamples = config.evalIters > 0 ? (trainIters / config.evalInterval + 1) * config.evalIters * gbs : 0
        // Samples for training and validation (train does not evaluate the test split); a split
        // without weight in --split is not built.
        let splitSamples: [Int?] = [totalSamples, validSamples > 0 ? validSamples : nil, nil]
        // --train-data-path and its siblings, or nil for --data-path with --split.
        let perSplit = config.trainDataPath.isEmpty ? nil : try [config.trainDataPath, config.validDataPath, config.testDataPath].map {
            words throws(DatasetError) in words.isEmpty ? nil : try DataPath(words)
        }
        let sources: [(any TrainingSampleSource)?]
        if config.modelType == .bert {
            guard let wordPiece else { throw TrainingError.invalidFlag("--model-type bert", "needs BERT's WordPiece vocabulary") }
            if let perSplit {
                sources = try BERTDataBuilder.build(perSplit: perSplit, vocabulary: wordPiece, config: config, sizes: splitSamples)
            } else {
                sources = try BERTDataBuilder.build(dataPath: try DataPath(config.dataPath), split: split, vocabulary: wordPiece,
                                                    config: config, sizes: splitSamples)
            }
        } else if let perSplit {
            sources = try GPTDataBuilder.build(perSplit: perSplit, config: datasetConfig, sizes: splitSamples)
        } else {
            sources = try GPTDataBuilder.build(dataPath: try DataPath(config.dataPath), config: datasetConfig, sizes: splitSamples)
        }
        train = sources[0]!
        valid = sources[1]

        if let load = config.load, try Checkpoint.isUnused(load) {
            loadWarning = "could not find the metadata file \(load)/\(Checkpoint.trackerName); will not load any "
                + "checkpoints and will start from random"
        } else if let load = config.load {
            let state = try Checkpoint.load(from: load, model: model, moments: moments,
                                            readsMoments: !config.finetune && !config.noLoadOptim)
            if !config.finetune {  // --finetune: the weights alone
                iteration = state.iteration
                consumedSamples = state.consumedSamples
                consumedValidSamples = state.consumedValidSamples
                scheduledSamples = state.scheduledSamples
                if let saved = state.lossScaler { trainingStep.lossScaler?.restore(saved) }
            }
            if state.precision != config.precision {
                loadNote = "the checkpoint was trained in \(state.precision.rawValue), this run continues in "
                    + "\(config.precision.rawValue) from its fp32 master weights and moments"
                    + (lossScaler != nil ? " (the loss scale starts afresh)" : "")
            }
        }
    }

    /// The global batch size of the next iteration.
    public var currentGlobalBatchSize: Int {
        rampup?.globalBatchSize(consumedSamples: consumedSamples) ?? config.globalBatchSize
    }

    /// Whether the run has reached `--train-iters` / `--train-samples`.
    public var finished: Bool {
        if let trainIters = config.trainIters { return iteration >= trainIters }
        return consumedSamples >= totalSamples
    }

    /// Whether the log reports the iteration just run: every `--log-interval`, and the last.
    public var reportsThisIteration: Bool { iteration % config.logInterval == 0 || finished }

    /// Runs one iteration: load the global batch, run this stage's pipeline schedule (forward
    /// and backward of every micro-batch), synchronize the gradients, clip, and update the
    /// weights at the scheduled learning rate. A non-finite loss or gradient norm throws
    /// `TrainingError.diverged` before the update, or with `--no-check-for-nan-in-loss-and-grad`
    /// skips the update (`IterationStats.skipped`).
    public func step() throws -> IterationStats {
        let clock = ContinuousClock()
        let start = clock.now
        let batchSize = currentGlobalBatchSize
        let microBatches = batchSize / (config.microBatchSize * parallel.dataParallel)
        let learningRate = schedule.learningRate(afterSamples: scheduledSamples)
        let batches = try loadGlobalBatch(microBatches: microBatches)
        let (compute, wait) = (executor.computeSeconds, executor.waitSeconds)
        let outcome = try trainingStep.run(batches, learningRate: learningRate, iteration: iteration + 1)
        unreportedStageSeconds.compute += executor.computeSeconds - compute
        unreportedStageSeconds.wait += executor.waitSeconds - wait
        if !outcome.skipped { scheduledSamples += batchSize }
        consumedSamples += batchSize
        iteration += 1
        let stageSeconds = reportsThisIteration ? reportedStageSeconds() : []
        let elapsed = (clock.now - start).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        return IterationStats(iteration: iteration, consumedSamples: consumedSamples, globalBatchSize: batchSize,
                              learningRate: learningRate, loss: outcome.loss, sentenceOrderLoss: outcome.sentenceOrderLoss,
                              gradNorm: outcome.gradNorm, skipped: outcome.skipped,
                              lossScale: outcome.lossScale, seconds: seconds, stageSeconds: stageSeconds)
    }

    /// Every stage's compute and wait seconds since the last report, gathered over this rank's
    /// pipeline group with one small all-reduce (each stage fills its own slots); only on the
    /// iterations the log reports, which every rank of the group reaches together.
    private func reportedStageSeconds() -> [(compute: Double, wait: Double)] {
        var values = [Double](repeating: 0, count: 2 * parallel.pipelineParallel)
        values[2 * parallel.pipelineRank] = unreportedStageSeconds.compute
        values[2 * parallel.pipelineRank + 1] = unreportedStageSeconds.wait
        unreportedStageSeconds = (0, 0)
        if let pipeline = parallel.pipeline { values = pipeline.allReduce(values, operation: .sum) }
        return (0..<parallel.pipelineParallel).map { (values[2 * $0], values[2 * $0 + 1]) }
    }

    /// This data-parallel rank's micro-batches of the next global batch (Megatron's sampler: each
    /// chunk of micro x DP samples gives every DP rank one micro-batch). Every stage loads them
    /// (the first reads the tokens, the last the labels), so a shortage stops all ranks before
    /// any communication.
    private func loadGlobalBatch(microBatches: Int) throws -> [MicroBatch] {
        let micro = config.microBatchSize, dp = parallel.dataParallel
        return try (0..<microBatches).map { k in
            try loadMicroBatch(source: train, consumedSamples: consumedSamples + (k * dp + parallel.dataRank) * micro)
        }
    }

    /// Mean loss over `--eval-iters` global batches of the validation split (continuing where
    /// the previous evaluation stopped, as Megatron does); nil without validation data. For BERT
    /// the masked-LM loss, the sentence-order one going to `validationSentenceOrderLoss`.
    public func evaluate() throws -> Double? {
        guard let valid, config.evalIters > 0 else { return nil }
        let micro = config.microBatchSize
        let perBatch = config.globalBatchSize / micro
        var loader = MicroBatchLoader(source: valid, microBatchSize: micro, consumedSamples: consumedValidSamples)
        var sums = [0.0, 0.0], count = 0
        // One global batch at a time, so the activations buffered between stages stay bounded.
        for _ in 0..<config.evalIters {
            var batches = [MicroBatch]()
            while batches.count < perBatch, let batch = loader.next() { batches.append(batch) }
            if batches.isEmpty { break }
            sums[0] += try executor.forwardOnly(batches: batches)
            sums[1] += executor.sentenceOrderLossSum
            count += batches.count
        }
        consumedValidSamples = loader.consumedSamples
        guard count > 0 else { return nil }
        if let pipeline = parallel.pipeline { sums = pipeline.allReduce(sums, operation: .sum) }
        validationSentenceOrderLoss = model.config.bert?.binaryHead == true ? sums[1] / Double(count) : nil
        return sums[0] / Double(count)
    }

    private func loadMicroBatch(source: any TrainingSampleSource, consumedSamples: Int) throws -> MicroBatch {
        var loader = MicroBatchLoader(source: source, microBatchSize: config.microBatchSize, consumedSamples: consumedSamples)
        guard let batch = loader.next() else {
            throw TrainingError.data("the training data ran out at sample \(loader.consumedSamples) of \(source.count)")
        }
        return batch
    }

    /// Saves a checkpoint of the current state into `directory` (collective over the world: every
    /// rank calls it).
    public func save(to directory: String) throws {
        try trainingStep.save(to: directory,
                              state: Checkpoint.State(iteration: iteration, consumedSamples: consumedSamples,
                                                      consumedValidSamples: consumedValidSamples,
                                                      optimizerStep: optimizer.step, seed: config.seed,
                                                      scheduledSamples: scheduledSamples, precision: config.precision,
                                                      lossScaler: lossScaler?.state),
                              arguments: config.arguments, schedule: schedule)
    }

    /// Where this rank's Adam moments live.
    private var moments: Checkpoint.Moments { Checkpoint.Moments(optimizer) }

    /// This rank's fp32 (master) weights, whole: the model's own, or gathered from the
    /// distributed optimizer's shards, a collective every rank of the data-parallel group calls.
    public func masterWeights() -> ParameterStore {
        model.keepsMasterWeights ? model.params : moments.masterHolder.gatheredMasters(keep: true)!
    }

    /// Model FLOPs of one iteration of `batchSize` samples (72-form, for MFU).
    public func modelFLOPs(batchSize: Int) -> Double {
        model.config.modelFLOPs(batch: batchSize, seqLength: config.seqLength)
    }
}
