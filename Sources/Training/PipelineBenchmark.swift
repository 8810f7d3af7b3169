import Datasets
import Distributed
import Models
import Parameters
import Pipeline

/// Times training iterations of a GPT split into pipeline stages run as rank threads, on random
/// tokens, and measures the pipeline bubble: how much longer the iteration takes than the
/// busiest stage's compute alone (the time with no bubble). For 1F1B with balanced stages that
/// ratio is `(p - 1) / m`, for the interleaved schedule `(p - 1) / (v m)` (Narayanan et al. 2021).
public struct PipelineBenchmark: Sendable {
    public var model: GPTConfig
    public var microBatchSize: Int
    public var seqLength: Int
    public var stages: Int
    /// Model chunks per stage (`v`; 1: plain 1F1B).
    public var chunks: Int

    public init(model: GPTConfig, microBatchSize: Int, seqLength: Int, stages: Int, chunks: Int) {
        self.model = model
        self.microBatchSize = microBatchSize
        self.seqLength = seqLength
        self.stages = stages
        self.chunks = chunks
    }

    /// What one number of micro-batches measured.
    public struct Result: Sendable {
        public var microBatches: Int
        /// Median over the timed iterations of the slowest stage's time for the whole schedule.
        public var secondsPerIteration: Double
        /// Per stage, medians over the timed iterations: seconds computing and seconds waiting.
        public var computeSeconds: [Double]
        public var waitSeconds: [Double]
        /// (iteration time - busiest stage's compute) / busiest stage's compute.
        public var measuredBubble: Double
        /// `(p - 1) / (v m)`.
        public var formulaBubble: Double
    }

    /// Runs `warmup` untimed and `steps` timed iterations of `microBatches` micro-batches.
    public func run(microBatches: Int, warmup: Int, steps: Int) throws -> Result {
        let schedule = try PipelineSchedule(kind: chunks > 1 ? .interleaved(virtualStages: chunks) : .oneForwardOneBackward,
                                            stages: stages, microBatches: microBatches)
        _ = try GPTPipelinePart(numLayers: model.numLayers, stages: stages, stage: 0, chunks: chunks)  // layers divide
        let config = model, micro = microBatchSize, seq = seqLength
        let perStage = try RankThreads.run(size: stages) { world -> [(wall: Double, compute: Double, wait: Double)] in
            let part = try GPTPipelinePart(numLayers: config.numLayers, stages: stages, stage: world.rank, chunks: chunks)
            let model = try GPTModel(config: config, part: part)
            let executor = PipelineExecutor(model: model, pipeline: stages > 1 ? world : nil)
            var rng = RandomGenerator(seed: 7)
            let batches = (0..<microBatches).map { _ in
                let tokens = (0..<micro * seq).map { _ in Int32(rng.next() % UInt64(config.vocabSize)) }
                return MicroBatch(batchSize: micro, sequenceLength: seq, tokens: tokens,
                                  labels: Array(tokens.dropFirst()) + [tokens[0]],
                                  lossMask: [Float](repeating: 1, count: micro * seq))
            }
            let clock = ContinuousClock()
            var timings = [(wall: Double, compute: Double, wait: Double)]()
            for step in 0..<(warmup + steps) {
                model.zeroGrad()
                executor.resetTimers()
                world.barrier()
                let start = clock.now
                _ = try executor.run(schedule, batches: batches, gradientScale: 1 / Float(microBatches))
                let elapsed = (clock.now - start).components
                if step >= warmup {
                    timings.append((Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18,
                                    executor.computeSeconds, executor.waitSeconds))
                }
            }
            return timings
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let walls: [Double] = (0..<steps).map { step in perStage.map { $0[step].wall }.max()! }
        let compute: [Double] = perStage.map { timings in median(timings.map { $0.compute }) }
        let wait: [Double] = perStage.map { timings in median(timings.map { $0.wait }) }
        let iteration = median(walls)
        let busiest = compute.max()!
        let bubble = (iteration - busiest) / busiest
        return Result(microBatches: microBatches, secondsPerIteration: iteration, computeSeconds: compute, waitSeconds: wait,
                      measuredBubble: bubble, formulaBubble: Double(stages - 1) / Double(chunks * microBatches))
    }
}
