/// Megatron's `--rampup-batch-size START INCREMENT SAMPLES`: the global batch grows from `start`
/// by `increment` every `SAMPLES / ((final - start) / increment)` consumed samples until it
/// reaches the final `--global-batch-size`.
public struct BatchSizeRampup: Sendable, Equatable, Codable {
    public var start: Int
    public var increment: Int
    public var samples: Int
    public var finalBatchSize: Int

    /// Checks Megatron's conditions: the increments divide the difference, and every size is a
    /// multiple of micro-batch x data-parallel size.
    public init(start: Int, increment: Int, samples: Int, finalBatchSize: Int,
                microBatchTimesDataParallel: Int) throws(TrainingError) {
        guard start > 0, increment > 0, samples > 0 else {
            throw .invalidFlag("--rampup-batch-size", "START, INCREMENT and SAMPLES must be positive")
        }
        guard finalBatchSize > start, (finalBatchSize - start) % increment == 0 else {
            throw .invalidFlag("--rampup-batch-size", "--global-batch-size \(finalBatchSize) - start \(start) must be a positive multiple of the increment \(increment)")
        }
        guard start % microBatchTimesDataParallel == 0, increment % microBatchTimesDataParallel == 0 else {
            throw .invalidFlag("--rampup-batch-size", "start and increment must be multiples of micro-batch x data-parallel size \(microBatchTimesDataParallel)")
        }
        self.start = start
        self.increment = increment
        self.samples = samples
        self.finalBatchSize = finalBatchSize
    }

    /// The global batch size once `consumedSamples` samples have been trained on.
    public func globalBatchSize(consumedSamples: Int) -> Int {
        if consumedSamples > samples { return finalBatchSize }
        let steps = (finalBatchSize - start) / increment
        let samplesPerIncrement = Double(samples) / Double(steps)
        let size = start + Int(Double(consumedSamples) / samplesPerIncrement) * increment
        return min(size, finalBatchSize)
    }
}
