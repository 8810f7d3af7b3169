import Accelerator
import Kernels
import Models
import Optimizer
import Parameters

/// Times full training steps of a GPT on random tokens.
public struct StepBenchmark {
    public let shape: BenchShape
    /// What the backward recomputes.
    public let recomputation: ActivationRecomputation
    /// The GEMMs' number format (fp16 with a fixed loss scale of 1024; random tokens do not overflow).
    public let precision: ComputePrecision
    /// Hidden and attention dropout probabilities (each step is a training forward on new samples).
    public let hiddenDropout: Float, attentionDropout: Float

    public init(shape: BenchShape, recomputation: ActivationRecomputation = .none, precision: ComputePrecision = .fp32,
                hiddenDropout: Float = 0, attentionDropout: Float = 0) {
        self.shape = shape
        self.recomputation = recomputation
        self.precision = precision
        self.hiddenDropout = hiddenDropout
        self.attentionDropout = attentionDropout
    }

    /// Per-phase timings (milliseconds) of every timed step.
    public struct Result {
        public var stepMs: [Double] = []
        public var forwardMs: [Double] = []
        public var backwardMs: [Double] = []
        public var optimizerMs: [Double] = []
        public var lastLoss: Double = 0
        public var parameterCount = 0
    }

    public func run(warmup: Int, steps: Int) throws -> Result {
        var config = shape.gptConfig
        config.hiddenDropout = hiddenDropout
        config.attentionDropout = attentionDropout
        let model = try GPTModel(config: config, seed: 1234, recomputation: recomputation, precision: precision)
        let lossScale: Float = precision == .fp16 ? 1024 : 1
        let optimizer = AdamWOptimizer(layout: model.layout, hyperparameters: AdamW.Hyperparameters(learningRate: 1e-4))
        let n = shape.microBatch * shape.seqLength
        var rng = RandomGenerator(seed: 99)
        let stream = (0...n).map { _ in Int32(rng.next() % UInt64(config.vocabSize)) }
        let tokens = Array(stream[0..<n]), targets = Array(stream[1...n])
        var result = Result(parameterCount: model.layout.totalCount)
        let clock = ContinuousClock()
        for step in 0..<(warmup + steps) {
            if step == warmup { GPU.active?.resetProfile() }  // MEGATRON_CUDA_PROFILE=1 covers the timed steps
            let start = clock.now
            model.zeroGrad()
            result.lastLoss = try model.forward(tokens: tokens, targets: targets, batch: shape.microBatch,
                                                seqLength: shape.seqLength, dropoutSample: step * shape.microBatch).mean
            let forwardEnd = clock.now
            model.backward(gradientScale: lossScale)
            GPU.hostWillRead()  // on a GPU running asynchronously, each phase ends when its work does
            let backwardEnd = clock.now
            optimizer.update(params: model.params, grads: model.grads, gradScale: 1 / lossScale)
            model.weightsDidChange()
            GPU.hostWillRead()
            let end = clock.now
            if step >= warmup {
                result.forwardMs.append(milliseconds(forwardEnd - start))
                result.backwardMs.append(milliseconds(backwardEnd - forwardEnd))
                result.optimizerMs.append(milliseconds(end - backwardEnd))
                result.stepMs.append(milliseconds(end - start))
            }
        }
        return result
    }
}
