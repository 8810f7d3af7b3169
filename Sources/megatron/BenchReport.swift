import Measurement

/// What `megatron bench` prints.
struct BenchReport: Codable {
    var config: String
    var parameters: Int
    var tokensPerStep: Int
    var steps: Int
    var msPerStep: Double
    var forwardMs: Double
    var backwardMs: Double
    var optimizerMs: Double
    var tokensPerSecond: Double
    var peakMemoryMiB: Double
    var modelTFLOPsPerStep: Double
    var achievedGFLOPs: Double
    var sgemmPeakGFLOPs: Double
    var mfu: Double
    var finalLoss: Double

    init(shape: BenchShape, result: StepBenchmark.Result, sgemmPeakGFLOPs: Double) {
        config = shape.name
        parameters = result.parameterCount
        tokensPerStep = shape.microBatch * shape.seqLength
        steps = result.stepMs.count
        msPerStep = median(result.stepMs)
        forwardMs = median(result.forwardMs)
        backwardMs = median(result.backwardMs)
        optimizerMs = median(result.optimizerMs)
        tokensPerSecond = Double(tokensPerStep) / (msPerStep / 1000)
        peakMemoryMiB = Double(ProcessMemory.peakResidentBytes()) / 1_048_576
        modelTFLOPsPerStep = shape.modelFLOPsPerStep / 1e12
        achievedGFLOPs = shape.modelFLOPsPerStep / (msPerStep / 1000) / 1e9
        self.sgemmPeakGFLOPs = sgemmPeakGFLOPs
        mfu = achievedGFLOPs / sgemmPeakGFLOPs
        finalLoss = result.lastLoss
    }

    var text: String {
        func f(_ x: Double, _ digits: Int = 1) -> String { fixed(x, digits) }
        return """
        config \(config): \(parameters) parameters, \(tokensPerStep) tokens/step, median of \(steps) steps
          ms/step          \(f(msPerStep)) (forward \(f(forwardMs)), backward \(f(backwardMs)), optimizer \(f(optimizerMs)))
          tokens/s         \(f(tokensPerSecond))
          peak memory      \(f(peakMemoryMiB)) MiB
          model FLOPs      \(f(modelTFLOPsPerStep, 3)) TFLOP/step -> \(f(achievedGFLOPs)) GFLOP/s
          sgemm peak       \(f(sgemmPeakGFLOPs)) GFLOP/s (measured)
          MFU              \(f(mfu * 100)) %
          loss             \(f(finalLoss, 4))
        """
    }
}
