import Datasets
import Distributed
import FileSupport
import Kernels
import Models
import Optimizer
import Parameters
import Training

/// `megatron finetune`'s settings (Megatron-LM's `tasks/` flags).
public struct FinetuneSettings: Sendable {
    public var task: FinetuneTask
    /// `--seq-length`: tokens per sequence (each choice of a RACE question is one).
    public var seqLength = 128
    /// `--micro-batch-size`: examples per micro-batch (a RACE example is its 4 choices).
    public var microBatchSize = 8
    public var epochs = 3
    public var lr = 2e-5
    /// `--lr-warmup-fraction`: the share of the steps over which the rate rises from 0; it then
    /// decays linearly to 0 at the last step.
    public var warmupFraction = 0.065
    public var weightDecay = 0.01
    public var clipGrad = 1.0
    public var seed = 1234
    /// `--hidden-dropout`, `--attention-dropout` (Megatron's defaults): the encoder's dropouts,
    /// the hidden one also on the pooled output before the task head, in training steps only.
    public var hiddenDropout: Float = 0.1, attentionDropout: Float = 0.1
    /// `--global-batch-size`: examples per step, over the data-parallel ranks and the
    /// micro-batches each accumulates (nil: one micro-batch per data-parallel rank).
    public var globalBatchSize: Int?
    /// `--bf16`, `--fp16`: the model computes in bf16 or fp16 from fp32 master weights.
    public var precision = ComputePrecision.fp32
    /// fp16: `--loss-scale` (a constant scale; nil: dynamic from `--initial-loss-scale`, as
    /// Megatron's: halved at the second overflow since the last growth and at every one after
    /// it, doubled after 1000 clean steps).
    public var lossScale: Double?
    public var initialLossScale = 4_294_967_296.0
    /// `--use-distributed-optimizer`: ZeRO-1 over the data-parallel ranks.
    public var useDistributedOptimizer = false
    /// `--sequence-parallel`: with tensor parallelism, the LayerNorms and dropouts split the tokens.
    public var sequenceParallel = false

    public init(task: FinetuneTask) { self.task = task }
}

/// One step's figures.
public struct FinetuneStep: Sendable {
    public var epoch: Int, step: Int
    public var loss: Double, gradNorm: Double, learningRate: Double
    /// fp16: the gradients overflowed, the update was skipped and the scale backs off.
    public var skipped = false
    /// The loss scale the step's backward used (1 without fp16).
    public var lossScale = 1.0
}

/// Fine-tunes a pretrained BERT on a task (Megatron-LM's `tasks/finetune_utils.py`) on one rank
/// of any layout (tensor, sequence, pipeline and data parallelism, ZeRO-1, bf16, fp16): the encoder and pooler
/// come from the pretrained model, the task's head starts from Megatron's initialization
/// (normal(0, std), zero bias); each epoch visits the training examples in a fresh order drawn
/// from the seed, one global batch per step (each data-parallel rank its micro-batches of it;
/// dropout, AdamW, linear warmup and decay, global-norm clipping), and accuracy is measured on the
/// validation examples (no dropout). Every layout trains as one rank does, up to the order of sums.
public final class Finetuner {
    public let settings: FinetuneSettings
    public let parallel: ParallelState
    /// This rank's part of the fine-tuning model.
    public let model: GPTModel
    let step: TrainingStep
    let schedule: LearningRateSchedule
    /// Examples per step, over all data-parallel ranks.
    public let globalBatchSize: Int
    /// Steps per epoch.
    public let stepsPerEpoch: Int
    public private(set) var steps = 0
    /// Steps whose update happened (the learning-rate schedule advances over these only).
    public private(set) var updates = 0

    /// The whole fine-tuning model's fp32 weights: `pretrained`'s shape with `settings.task`'s
    /// head, holding every tensor the two share (the word, position and token-type embeddings,
    /// the layers, the pooler when pretrained with the sentence-order head), the new head as
    /// Megatron initializes it from the seed. Every rank slices its shards from them; ranks that
    /// share a process can share one (`init(startingWeights:)`).
    public static func startingWeights(pretrained: GPTModel, settings: FinetuneSettings) throws -> StartingWeights {
        var config = pretrained.config
        guard var bert = config.bert else {
            throw FinetuneError.invalid("the pretrained checkpoint is a GPT; `megatron finetune` fine-tunes BERT")
        }
        precondition(pretrained.part.isWhole && pretrained.tensorParallelSize == 1, "the pretrained model is the whole model")
        guard settings.seqLength <= config.maxPositionEmbeddings else {
            throw FinetuneError.invalid("--seq-length \(settings.seqLength) exceeds the model's \(config.maxPositionEmbeddings) positions")
        }
        bert.head = settings.task.head
        bert.tokenTypes = 2
        config.bert = bert
        config.hiddenDropout = settings.hiddenDropout
        config.attentionDropout = settings.attentionDropout
        let whole = GPTModel.freshWeights(config, seed: UInt64(settings.seed))
        for (index, spec) in whole.layout.specs.enumerated() {
            guard let source = pretrained.layout.index(of: spec.name) else { continue }
            guard pretrained.layout.specs[source].count == spec.count else {
                throw FinetuneError.invalid("the pretrained \(spec.name) has \(pretrained.layout.specs[source].count) values, the fine-tuning model \(spec.count)")
            }
            whole.pointer(at: index).update(from: pretrained.params.pointer(at: source), count: spec.count)
        }
        return StartingWeights(config: config, weights: whole)
    }

    /// The fine-tuning model's configuration and whole fp32 weights, read-only once made.
    public struct StartingWeights: @unchecked Sendable {
        public let config: GPTConfig
        public let weights: ParameterStore
    }

    /// This rank's part of the fine-tuning model of `pretrained` (see `startingWeights`).
    public convenience init(pretrained: GPTModel, settings: FinetuneSettings, trainExamples: Int,
                            parallel: ParallelState = .single) throws {
        try self.init(startingWeights: try Self.startingWeights(pretrained: pretrained, settings: settings), settings: settings,
                      trainExamples: trainExamples, parallel: parallel)
    }

    /// This rank's part of the fine-tuning model for `parallel`, its shards sliced from `start`.
    /// A run whose ranks on this machine need more than `availableMemory` bytes (nil: not
    /// checked) is refused before the model exists (`TrainingError.memory`, with what would fit).
    public init(startingWeights start: StartingWeights, settings: FinetuneSettings, trainExamples: Int,
                parallel: ParallelState = .single, availableMemory: Double? = SystemMemory.availableBytes()) throws {
        let config = start.config
        let globalBatch = settings.globalBatchSize ?? settings.microBatchSize * parallel.dataParallel
        guard trainExamples >= globalBatch else {
            throw FinetuneError.invalid("\(trainExamples) training examples do not fill one global batch of \(globalBatch)")
        }
        let part: GPTPipelinePart
        do {
            try parallel.grid.validate(heads: config.numAttentionHeads, hidden: config.hiddenSize,
                                       paddedVocabulary: config.paddedVocabSize, layers: config.numLayers)
            try parallel.grid.validate(globalBatchSize: globalBatch, microBatchSize: settings.microBatchSize)
            part = try GPTPipelinePart(numLayers: config.numLayers, stages: parallel.pipelineParallel, stage: parallel.pipelineRank)
        } catch {
            throw FinetuneError.invalid("the layout does not fit: \(error)")
        }
        let distributed = settings.useDistributedOptimizer && parallel.dataParallel > 1
        let sequenceParallel = settings.sequenceParallel && parallel.grid.tensorParallel > 1
        // Everything this machine's ranks will allocate, against what it has, before allocating.
        var run = MemoryCheckRun(microBatchSize: settings.microBatchSize, globalBatchSize: globalBatch, seqLength: settings.seqLength)
        run.sequencesPerSample = settings.task.head.sequencesPerLabel
        (run.distributedOptimizer, run.precision, run.sequenceParallel) = (distributed, settings.precision, sequenceParallel)
        try MemoryRequirement.check(config: config, run: run, layout: parallel.grid, parallel: parallel, available: availableMemory)
        self.settings = settings
        self.parallel = parallel
        globalBatchSize = globalBatch
        model = try GPTModel(config: config, seed: UInt64(settings.seed), tensorParallel: parallel.tensor, part: part,
                             shardedOver: distributed ? parallel.dataParallel : 1, precision: settings.precision,
                             sequenceParallel: sequenceParallel,
                             keepsMasterWeights: !(distributed && settings.precision != .fp32))
        var hyperparameters = AdamW.Hyperparameters(learningRate: 0)
        hyperparameters.weightDecay = Float(settings.weightDecay)
        let lossScaler = settings.precision != .fp16 ? nil : settings.lossScale.map { LossScaler(constant: $0) }
            ?? LossScaler(initialScale: settings.initialLossScale, minimumScale: 1, window: 1000, hysteresis: 2)
        step = TrainingStep(model: model, parallel: parallel, hyperparameters: hyperparameters, distributed: distributed,
                            settings: TrainingStep.Settings(clipGrad: settings.clipGrad), lossScaler: lossScaler)
        step.setWeights { [model] deliver in model.forEachShard(of: start.weights, deliver) }
        stepsPerEpoch = trainExamples / globalBatch
        let total = stepsPerEpoch * settings.epochs
        schedule = LearningRateSchedule(maxLR: settings.lr, style: .linear,
                                        warmupSamples: Int((settings.warmupFraction * Double(total)).rounded()), decaySamples: total)
    }

    /// Runs one epoch over `examples` (a whole number of global batches; the rest of a shuffled
    /// epoch is dropped, as Megatron's sampler drops the last partial batch), calling `report`
    /// after each step (on every rank, with the step's figures reduced over all of them).
    public func trainEpoch(_ epoch: Int, examples: [EncodedExample], report: (FinetuneStep) -> Void) throws {
        var random = RandomGenerator(seed: UInt64(settings.seed) &+ UInt64(epoch) &* 0x9E37_79B9)
        let order = examples.indices.shuffled(using: &random)
        let micro = settings.microBatchSize, dataParallel = parallel.dataParallel
        let head = model.config.bert!.head
        for first in stride(from: 0, to: order.count - globalBatchSize + 1, by: globalBatchSize) {
            // As Megatron's pretraining sampler (its tasks' interleave the ranks instead; a step
            // covers the same examples either way): each chunk of micro x DP examples gives every
            // DP rank one micro-batch.
            let batches = (0..<(globalBatchSize / (micro * dataParallel))).map { k in
                let offset = (k * dataParallel + parallel.dataRank) * micro
                let slice = order[(first + offset)..<(first + offset + micro)].map { examples[$0] }
                // Each sequence is named by its place in the run: fresh dropout masks every step.
                return Self.microBatch(ArraySlice(slice), head: head, seqLength: settings.seqLength,
                                       firstSample: (steps * globalBatchSize + offset) * head.sequencesPerLabel)
            }
            let learningRate = schedule.learningRate(afterSamples: updates)
            let outcome: TrainingStep.Outcome
            do { outcome = try step.run(batches, learningRate: learningRate, iteration: steps + 1) } catch TrainingError.diverged(_, let loss, let norm) {
                throw FinetuneError.invalid("the loss (\(loss)) or gradient norm (\(norm)) is not finite at step \(steps + 1)")
            }
            steps += 1
            if !outcome.skipped { updates += 1 }
            report(FinetuneStep(epoch: epoch, step: steps, loss: outcome.loss, gradNorm: outcome.gradNorm, learningRate: learningRate,
                                skipped: outcome.skipped, lossScale: outcome.lossScale))
        }
    }

    /// Correct predictions (the arg-max of each example's logits) among `examples`, counted over
    /// every rank (each data-parallel rank scores every DP-th micro-batch); a collective.
    public func accuracy(_ examples: [EncodedExample]) throws -> (correct: Int, total: Int) {
        let head = model.config.bert!.head
        let micro = settings.microBatchSize
        let firsts = stride(from: 0, to: examples.count, by: micro).enumerated()
            .filter { $0.offset % parallel.dataParallel == parallel.dataRank }.map(\.element)
        let slices = firsts.map { examples[$0..<min($0 + micro, examples.count)] }
        let batches = slices.map { Self.microBatch($0, head: head, seqLength: settings.seqLength, firstSample: 0) }
        var correct = 0.0
        _ = try step.forwardOnly(batches) { k, activations in
            let logits = self.model.sequenceLogits(of: activations)
            for (row, example) in slices[k].enumerated() {
                let scores = logits[(row * head.classes)..<((row + 1) * head.classes)]
                let predicted = scores.indices.max { scores[$0] < scores[$1] }! - row * head.classes
                if predicted == Int(example.label) { correct += 1 }
            }
        }
        // The last stage counted; its tensor-parallel ranks alike.
        var counts = [correct]
        if let pipeline = parallel.pipeline { counts = pipeline.allReduce(counts, operation: .sum) }
        if let data = parallel.data { counts = data.allReduce(counts, operation: .sum) }
        return (Int(counts[0]), examples.count)
    }

    /// Saves the fine-tuned model and its optimizer state as a checkpoint at the steps taken
    /// (collective over the world: every rank calls it).
    public func save(to directory: String) throws {
        // The schedule runs in steps; the checkpoint records it, as its counters, in samples.
        var recorded = schedule
        (recorded.warmupSamples, recorded.decaySamples) = (schedule.warmupSamples * globalBatchSize, schedule.decaySamples * globalBatchSize)
        try step.save(to: directory, state: Checkpoint.State(iteration: steps, consumedSamples: steps * globalBatchSize,
                                                             consumedValidSamples: 0, optimizerStep: step.optimizer.step,
                                                             seed: settings.seed, scheduledSamples: updates * globalBatchSize,
                                                             precision: settings.precision, lossScaler: step.lossScaler?.state),
                      schedule: recorded)
    }

    /// A task micro-batch as the pipeline executor reads it (no masked-LM labels).
    static func microBatch(_ examples: ArraySlice<EncodedExample>, head: BERTHead, seqLength: Int, firstSample: Int) -> MicroBatch {
        let batch = TaskSequences.microBatch(examples, head: head, seqLength: seqLength)
        return MicroBatch(batchSize: batch.batch, sequenceLength: seqLength, tokens: batch.tokens, labels: batch.labels,
                          lossMask: batch.lossMask, firstSample: firstSample,
                          bert: BERTInputs(tokenTypes: batch.tokenTypes, lengths: batch.lengths, sequenceLabels: batch.sequenceLabels))
    }
}
