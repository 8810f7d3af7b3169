import Accelerator
import Datasets
import Distributed
import FileSupport
import Kernels
import Models
import Optimizer
import Parameters
import Pipeline

/// The work of one training iteration once its micro-batches are loaded, on one rank of any
/// layout: this stage's pipeline schedule (forward and backward of every micro-batch), the
/// gradient synchronization (sequence-parallel LayerNorms, the tied embedding between the first
/// and last stage, the data-parallel all-reduce or ZeRO-1 reduce-scatter), the global-norm
/// clipping, fp16's loss scale, and the AdamW update. `Trainer` (pretraining) and the BERT
/// fine-tuner run their steps through it, so that both train alike on every layout.
public final class TrainingStep {
    public let model: GPTModel
    public let parallel: ParallelState
    /// AdamW over the whole local model, or with `distributed` and data parallelism the ZeRO-1
    /// `DistributedOptimizer`, whose ranks keep moments (and, without master weights in the
    /// model, the fp32 weights) for their shard.
    public let optimizer: any ModelOptimizer
    /// fp16's loss scaler (nil in fp32 and bf16).
    public internal(set) var lossScaler: LossScaler?
    /// How the step clips and what it does with a non-finite loss or gradient.
    public let settings: Settings
    let executor: PipelineExecutor
    private let gradientSync: GradientSync

    /// The step's clipping and its rules for non-finite values.
    public struct Settings: Sendable {
        /// Global gradient-norm clipping (`--clip-grad`; 0: none).
        public var clipGrad: Double
        /// `--check-for-nan-in-loss-and-grad`: a non-finite loss or norm throws (else the update is skipped).
        public var checkForNaN = true
        /// fp16: the overflows at the minimum loss scale after which the run stops.
        public var maxSkipsAtMinLossScale = Int.max
        /// `--ddp-bucket-size` (nil: Megatron's default).
        public var bucketSize: Int?

        public init(clipGrad: Double) { self.clipGrad = clipGrad }
    }

    /// What one step did.
    public struct Outcome: Sendable {
        /// The mean over micro-batches (and data-parallel ranks) of each micro-batch's mean loss:
        /// the language-model or the fine-tuning task's loss.
        public var loss: Double
        /// BERT pretraining with the binary head: the mean sentence-order loss.
        public var sentenceOrderLoss: Double?
        /// Global gradient norm before clipping (of the unscaled gradients with fp16).
        public var gradNorm: Double
        /// The update was skipped (fp16 overflow, or non-finite values with the NaN check off).
        public var skipped: Bool
        /// The loss scale the backward used (1 without fp16).
        public var lossScale: Double
    }

    /// Sets up the step for `model` (this rank's part of it) on `parallel`: the optimizer with
    /// `hyperparameters` (ZeRO-1 when `distributed` and data-parallel, holding the fp32 master
    /// weights when the model keeps none), the pipeline executor and the gradient sync.
    public init(model: GPTModel, parallel: ParallelState, hyperparameters: AdamW.Hyperparameters, distributed: Bool,
                settings: Settings, lossScaler: LossScaler? = nil) {
        self.model = model
        self.parallel = parallel
        self.settings = settings
        self.lossScaler = lossScaler
        executor = PipelineExecutor(model: model, pipeline: parallel.pipeline)
        if distributed, let data = parallel.data, data.size > 1 {
            // Holding the master weights, it hands the updated values to the model's copies.
            optimizer = DistributedOptimizer(layout: model.layout, hyperparameters: hyperparameters, data: data,
                                             masterWeightsReceiver: model.keepsMasterWeights ? nil : model.receiveWeights)
        } else {
            precondition(model.keepsMasterWeights, "a model without master weights needs the distributed optimizer to hold them")
            optimizer = AdamWOptimizer(layout: model.layout, hyperparameters: hyperparameters)
        }
        gradientSync = GradientSync(parallel: parallel, bucketSize: settings.bucketSize, model: model)
    }

    /// Sets this rank's weights from `forEachTensor`, which hands over fp32 values tensor by
    /// tensor (values, layout offset, count): into the model's weights, or, when the optimizer
    /// holds the master weights, into its shard and the model's low-precision copies.
    public func setWeights(_ forEachTensor: ((UnsafePointer<Float>, Int, Int) -> Void) -> Void) {
        if model.keepsMasterWeights {
            forEachTensor { values, start, count in (model.params.buffer.pointer + start).update(from: values, count: count) }
            model.weightsDidChange()
        } else {
            let sharded = optimizer as! DistributedOptimizer
            forEachTensor { values, start, count in
                model.receiveWeights(values, start: start, count: count)
                sharded.storeMasters(values, start: start, count: count)
            }
        }
    }

    /// Runs one iteration over `batches` (this data-parallel rank's micro-batches; every stage
    /// gets the same ones) at `learningRate`; `iteration` (counted from 1) names it in errors.
    /// A non-finite loss or gradient norm throws `TrainingError.diverged` before the update, or
    /// with the check off skips the update.
    public func run(_ batches: [MicroBatch], learningRate: Double, iteration: Int) throws -> Outcome {
        let microBatches = batches.count
        model.zeroGrad()
        // fp16: the backward starts from the scaled loss, so the gradients come out scaled.
        let lossScale = lossScaler?.scale ?? 1
        let lossSum = try executor.run(try Self.pipelineSchedule(part: model.part, microBatches: microBatches),
                                       batches: batches, gradientScale: Float(lossScale / Double(microBatches)))
        let norm = gradientSync.synchronize(model, optimizer: optimizer) / lossScale
        let losses = meanLosses([lossSum, executor.sentenceOrderLossSum], microBatches: microBatches)
        let sentenceOrderLoss = model.config.bert?.binaryHead == true && model.config.bert?.head == .pretraining ? losses[1] : nil
        // The objective: BERT's is the masked-LM plus the sentence-order loss.
        let loss = losses[0] + (sentenceOrderLoss ?? 0)
        // The one place that decides whether the update happens. Loss and norm are reduced over
        // every rank, so all ranks decide alike. With fp16 non-finite gradients are an overflow
        // of the loss scale: the iteration is skipped and the scaler backs off.
        let overflow = lossScaler != nil && !norm.isFinite
        let skipped = !(loss.isFinite && norm.isFinite)
        if skipped && settings.checkForNaN && !(overflow && loss.isFinite) {
            throw TrainingError.diverged(iteration: iteration, loss: loss, gradNorm: norm)
        }
        // The scaler sees the gradients' outcome (an iteration skipped for a non-finite loss
        // alone, with the NaN check off, tells it nothing).
        if var scaler = lossScaler, overflow || !skipped {
            let scale = scaler.scale
            scaler.update(overflow: overflow)
            lossScaler = scaler
            if scaler.overflowsAtMinimum >= settings.maxSkipsAtMinLossScale {
                throw TrainingError.lossScaleExhausted(iteration: iteration, scale: scale, count: scaler.overflowsAtMinimum)
            }
        }
        if !skipped {
            // The gradients are summed over DP: the scale takes the mean, unscales and clips.
            optimizer.hyperparameters.learningRate = Float(learningRate)
            let scale = GradientClipping.coefficient(norm: norm, clip: settings.clipGrad) / (Double(parallel.dataParallel) * lossScale)
            optimizer.update(params: model.params, grads: model.grads, gradScale: Float(scale))
            model.weightsDidChange()
        }
        GPU.hostWillRead()  // the step's GPU work done: checkpoints, logs and the clock see it finished
        return Outcome(loss: losses[0], sentenceOrderLoss: sentenceOrderLoss, gradNorm: norm, skipped: skipped,
                       lossScale: lossScale)
    }

    /// Forward only over `batches` (evaluation; no dropout): returns the sum of their mean
    /// losses on the last stage (0 elsewhere), and hands each micro-batch's index and
    /// activations to `inspect` on the last stage, after its forward.
    public func forwardOnly(_ batches: [MicroBatch], inspect: ((Int, GPTActivations) -> Void)? = nil) throws -> Double {
        try executor.forwardOnly(batches: batches, inspect: inspect)
    }

    /// The iteration's losses on every rank: the last stage's sums of micro-batch losses, summed
    /// over the pipeline and averaged over DP and the micro-batches.
    private func meanLosses(_ lossSums: [Double], microBatches: Int) -> [Double] {
        var sums = lossSums
        if let pipeline = parallel.pipeline { sums = pipeline.allReduce(sums, operation: .sum) }
        if let data = parallel.data { sums = data.allReduce(sums, operation: .sum).map { $0 / Double(parallel.dataParallel) } }
        return sums.map { $0 / Double(microBatches) }
    }

    /// The 1F1B schedule of this model's part (interleaved when it holds several chunks).
    private static func pipelineSchedule(part: GPTPipelinePart, microBatches: Int) throws -> PipelineSchedule {
        do {
            return try PipelineSchedule(kind: part.chunks > 1 ? .interleaved(virtualStages: part.chunks) : .oneForwardOneBackward,
                                        stages: part.stages, microBatches: microBatches)
        } catch {
            throw TrainingError.invalidFlag("--num-layers-per-virtual-pipeline-stage", error.description)
        }
    }
}

extension TrainingStep {
    /// Saves a checkpoint of this rank's weights and optimizer state at `state` into `directory`
    /// (collective over the world: every rank calls it).
    public func save(to directory: String, state: Checkpoint.State, arguments: JSONValue = .object([]),
                     schedule: LearningRateSchedule? = nil) throws(TrainingError) {
        try Checkpoint.save(to: directory, model: model, moments: Checkpoint.Moments(optimizer), state: state,
                            arguments: arguments, schedule: schedule, parallel: parallel)
    }
}
