import Accelerator
import Kernels
import Measurement
import Models

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
    /// The process's peak resident memory (host).
    var peakMemoryMiB: Double
    /// With `--device cuda`: GPU memory in use after the run (the card's total less its free).
    var gpuMemoryMiB: Double?
    var modelTFLOPsPerStep: Double
    var achievedGFLOPs: Double
    /// The measured peak of the GEMM the precision uses (sgemm, or the bf16 GEMM).
    var gemmPeakGFLOPs: Double
    var mfu: Double
    /// fp32, bf16 or fp16, and what computes the bf16 GEMMs.
    var precision: String
    var gemm: String
    var finalLoss: Double
    /// `none`, `selective` or `full (method, N layers)`.
    var recompute: String
    /// Bytes the transformer layers keep for the backward (one micro-batch), and the logits'.
    var layerActivationMiB: Double
    var logitsMiB: Double

    init(shape: BenchShape, result: StepBenchmark.Result, gemmPeakGFLOPs: Double, recomputation: ActivationRecomputation,
         precision: ComputePrecision) {
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
        gpuMemoryMiB = GPU.active.map { gpu in
            let memory = gpu.memoryInfo()
            return Double(memory.total - memory.free) / 1_048_576
        }
        modelTFLOPsPerStep = shape.modelFLOPsPerStep / 1e12
        achievedGFLOPs = shape.modelFLOPsPerStep / (msPerStep / 1000) / 1e9
        self.gemmPeakGFLOPs = gemmPeakGFLOPs
        mfu = achievedGFLOPs / gemmPeakGFLOPs
        self.precision = precision.rawValue
        switch (precision, GPU.active?.deviceName) {
        case (.fp32, nil): gemm = "OpenBLAS sgemm"
        case (.bf16, nil): gemm = BF16Matmul.description
        case (.fp16, nil): gemm = "fp16 emulated: fp16-rounded operands, OpenBLAS sgemm"
        case (.fp32, let device?): gemm = "cuBLAS sgemm, no TF32, on \(device)"
        case (.bf16, let device?): gemm = "cuBLAS bf16 GEMM, fp32 accumulation, on \(device)"
        case (.fp16, let device?): gemm = "fp16 emulated: fp16-rounded operands, cuBLAS sgemm, on \(device)"
        }
        finalLoss = result.lastLoss
        recompute = recomputation.description
        let config = shape.gptConfig
        let withHead = GPTMemory.activationBytes(config: config, batch: shape.microBatch, seqLength: shape.seqLength,
                                                 tensorParallel: 1, layerCount: config.numLayers, head: true,
                                                 recomputation: recomputation, precision: precision)
        let withoutLayers = GPTMemory.activationBytes(config: config, batch: shape.microBatch, seqLength: shape.seqLength,
                                                      tensorParallel: 1, layerCount: 0, head: true, precision: precision)
        let withoutHead = GPTMemory.activationBytes(config: config, batch: shape.microBatch, seqLength: shape.seqLength,
                                                    tensorParallel: 1, layerCount: 0, head: false, precision: precision)
        layerActivationMiB = (withHead - withoutLayers) / 1_048_576
        logitsMiB = (withoutLayers - withoutHead) / 1_048_576
    }

    var text: String {
        func f(_ x: Double, _ digits: Int = 1) -> String { fixed(x, digits) }
        return """
        config \(config): \(parameters) parameters, \(tokensPerStep) tokens/step, median of \(steps) steps
          ms/step          \(f(msPerStep)) (forward \(f(forwardMs)), backward \(f(backwardMs)), optimizer \(f(optimizerMs)))
          precision        \(precision) (\(gemm))
          tokens/s         \(f(tokensPerSecond))
          recompute        \(recompute)
          saved activations \(f(layerActivationMiB)) MiB in the layers, \(f(logitsMiB)) MiB logits and loss
          peak memory      \(f(peakMemoryMiB)) MiB\(gpuMemoryMiB.map { " (host); GPU \(f($0)) MiB in use" } ?? "")
          model FLOPs      \(f(modelTFLOPsPerStep, 3)) TFLOP/step -> \(f(achievedGFLOPs)) GFLOP/s
          GEMM peak        \(f(gemmPeakGFLOPs)) GFLOP/s (measured, \(precision == "bf16" ? "bf16 GEMM" : "sgemm"))
          MFU              \(f(mfu * 100)) %
          loss             \(f(finalLoss, 4))
        """
    }
}
