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
    /// `--micro-batch-size`: examples per step (a RACE example is its 4 choices).
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

    public init(task: FinetuneTask) { self.task = task }
}

/// One step's figures.
public struct FinetuneStep: Sendable {
    public var epoch: Int, step: Int
    public var loss: Double, gradNorm: Double, learningRate: Double
}

/// Fine-tunes a pretrained BERT on a task (Megatron-LM's `tasks/finetune_utils.py` on one
/// rank): the encoder and pooler come from the pretrained model, the task's head starts from
/// Megatron's initialization (normal(0, std), zero bias); each epoch visits the training examples
/// in a fresh order drawn from the seed, one micro-batch per step (dropout, AdamW, linear warmup
/// and decay, global-norm clipping), and accuracy is measured on the validation examples (no
/// dropout).
public final class Finetuner {
    public let settings: FinetuneSettings
    public let model: GPTModel
    let optimizer: AdamWOptimizer
    let schedule: LearningRateSchedule
    /// Steps per epoch.
    public let stepsPerEpoch: Int
    public private(set) var steps = 0

    /// A model of `pretrained`'s shape with `settings.task`'s head, holding every tensor the
    /// two share (the word, position and token-type embeddings, the layers, the pooler when
    /// pretrained with the sentence-order head).
    public init(pretrained: GPTModel, settings: FinetuneSettings, trainExamples: Int) throws {
        var config = pretrained.config
        guard var bert = config.bert else {
            throw FinetuneError.invalid("the pretrained checkpoint is a GPT; `megatron finetune` fine-tunes BERT")
        }
        guard settings.seqLength <= config.maxPositionEmbeddings else {
            throw FinetuneError.invalid("--seq-length \(settings.seqLength) exceeds the model's \(config.maxPositionEmbeddings) positions")
        }
        guard trainExamples >= settings.microBatchSize else {
            throw FinetuneError.invalid("\(trainExamples) training examples do not fill one micro-batch of \(settings.microBatchSize)")
        }
        bert.head = settings.task.head
        bert.tokenTypes = 2
        config.bert = bert
        config.hiddenDropout = settings.hiddenDropout
        config.attentionDropout = settings.attentionDropout
        self.settings = settings
        model = try GPTModel(config: config, seed: UInt64(settings.seed))
        for (index, spec) in model.layout.specs.enumerated() {
            guard let source = pretrained.layout.index(of: spec.name) else { continue }  // the new head keeps its initialization
            guard pretrained.layout.specs[source].count == spec.count else {
                throw FinetuneError.invalid("the pretrained \(spec.name) has \(pretrained.layout.specs[source].count) values, the fine-tuning model \(spec.count)")
            }
            model.params.pointer(at: index).update(from: pretrained.params.pointer(at: source), count: spec.count)
        }
        model.weightsDidChange()
        var hyperparameters = AdamW.Hyperparameters(learningRate: 0)
        hyperparameters.weightDecay = Float(settings.weightDecay)
        optimizer = AdamWOptimizer(layout: model.layout, hyperparameters: hyperparameters)
        stepsPerEpoch = trainExamples / settings.microBatchSize
        let total = stepsPerEpoch * settings.epochs
        schedule = LearningRateSchedule(maxLR: settings.lr, style: .linear,
                                        warmupSamples: Int((settings.warmupFraction * Double(total)).rounded()), decaySamples: total)
    }

    /// Runs one epoch over `examples` (a whole number of micro-batches; the rest of a shuffled
    /// epoch is dropped, as Megatron's sampler drops the last partial batch), calling `report`
    /// after each step.
    public func trainEpoch(_ epoch: Int, examples: [EncodedExample], report: (FinetuneStep) -> Void) throws {
        var random = RandomGenerator(seed: UInt64(settings.seed) &+ UInt64(epoch) &* 0x9E37_79B9)
        let order = examples.indices.shuffled(using: &random)
        let micro = settings.microBatchSize
        for first in stride(from: 0, to: order.count - micro + 1, by: micro) {
            let batch = TaskSequences.microBatch(ArraySlice(order[first..<(first + micro)].map { examples[$0] }),
                                                 head: model.config.bert!.head, seqLength: settings.seqLength)
            model.zeroGrad()
            // Each step's sequences are named by their place in the run: fresh masks every step.
            let loss = try model.forward(bert: batch, dropoutSample: steps * batch.batch).total
            model.backward()
            let norm = GradientClipping.squares(model.grads) { _ in 1 }.squareRoot()
            guard loss.isFinite && norm.isFinite else {
                throw FinetuneError.invalid("the loss (\(loss)) or gradient norm (\(norm)) is not finite at step \(steps + 1)")
            }
            let learningRate = schedule.learningRate(afterSamples: steps)
            optimizer.hyperparameters.learningRate = Float(learningRate)
            optimizer.update(params: model.params, grads: model.grads,
                             gradScale: Float(GradientClipping.coefficient(norm: norm, clip: settings.clipGrad)))
            model.weightsDidChange()
            steps += 1
            report(FinetuneStep(epoch: epoch, step: steps, loss: loss, gradNorm: norm, learningRate: learningRate))
        }
    }

    /// Correct predictions (the arg-max of each example's logits) among `examples`.
    public func accuracy(_ examples: [EncodedExample]) throws -> (correct: Int, total: Int) {
        let head = model.config.bert!.head
        var correct = 0
        for first in stride(from: 0, to: examples.count, by: settings.microBatchSize) {
            let slice = examples[first..<min(first + settings.microBatchSize, examples.count)]
            _ = try model.forward(bert: TaskSequences.microBatch(slice, head: head, seqLength: settings.seqLength))
            let logits = model.sequenceLogits
            for (row, example) in slice.enumerated() {
                let scores = logits[(row * head.classes)..<((row + 1) * head.classes)]
                let predicted = scores.indices.max { scores[$0] < scores[$1] }! - row * head.classes
                if predicted == Int(example.label) { correct += 1 }
            }
        }
        return (correct, examples.count)
    }
}
