import ArgumentParser
import Distributed
import Models
import Training

/// `megatron bench pipeline`: time per iteration against the number of micro-batches for a GPT
/// split into pipeline stages (rank threads), and the measured bubble against the formula.
struct PipelineBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Time 1F1B / interleaved pipeline iterations against the number of micro-batches and measure the bubble.",
        discussion: """
        Each stage is a rank thread of this process with its share of the cores; the stages run
        the schedule on random tokens (no optimizer step). Per stage, the time computing and the
        time blocked waiting for a neighbour are recorded; the measured bubble is (iteration time -
        busiest stage's compute time) / busiest stage's compute time, which for balanced stages is
        (p - 1) / m for 1F1B and (p - 1) / (v m) interleaved. With more stages than cores the
        stages share cores, so a waiting stage's core is not idle and the measured bubble is
        smaller than the formula.
        """)

    @Option(name: .flag(.pipelineModelParallelSize), help: .flag(.pipelineModelParallelSize))
    var pipelineModelParallelSize = 2
    @Option(name: .flag(.numLayersPerVirtualPipelineStage), help: .flag(.numLayersPerVirtualPipelineStage, "Default: one chunk per stage."))
    var numLayersPerVirtualPipelineStage: Int?
    @Option(name: .long, parsing: .upToNextOption, help: "Numbers of micro-batches m to time.")
    var microBatches: [Int] = [1, 2, 4, 8, 16]
    @Option(name: .flag(.numLayers), help: .flag(.numLayers)) var numLayers = 8
    @Option(name: .flag(.hiddenSize), help: .flag(.hiddenSize)) var hiddenSize = 256
    @Option(name: .flag(.numAttentionHeads), help: .flag(.numAttentionHeads)) var numAttentionHeads = 4
    @Option(name: .flag(.seqLength), help: .flag(.seqLength)) var seqLength = 128
    @Option(name: .flag(.microBatchSize), help: .flag(.microBatchSize)) var microBatchSize = 4
    @Option(name: .long, help: "Vocabulary (small by default, so the last stage's output layer costs about a third of a layer).")
    var vocabSize = 1024
    @Option(name: .long, help: "Timed iterations per m (the median is reported).")
    var steps = 3
    @Option(name: .long, help: "Untimed warm-up iterations per m.")
    var warmup = 1

    /// The model the flags describe.
    var model: GPTConfig {
        GPTConfig(numLayers: numLayers, hiddenSize: hiddenSize, numAttentionHeads: numAttentionHeads,
                  maxPositionEmbeddings: seqLength, vocabSize: vocabSize)
    }

    func validate() throws {
        for (value, flag) in [(pipelineModelParallelSize, "--pipeline-model-parallel-size"), (numLayers, "--num-layers"),
                              (steps, "--steps"), (microBatchSize, "--micro-batch-size"), (seqLength, "--seq-length")] where value < 1 {
            throw ValidationError("\(flag) must be at least 1, got \(value)")
        }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative, got \(warmup)") }
        let config = model
        try config.validate()
        guard microBatchSize <= Int(Int32.max) / seqLength else {
            throw ValidationError("--micro-batch-size \(microBatchSize) x --seq-length \(seqLength) is more than 2^31 - 1 tokens")
        }
        // Weights and gradients of every stage live in this process.
        try BenchMemory.check(bytes: 8 * Double(config.parameterCount), what: "the model's weights and gradients")
        guard !microBatches.isEmpty, microBatches.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--micro-batches must be positive numbers")
        }
        if let perChunk = numLayersPerVirtualPipelineStage {
            guard pipelineModelParallelSize >= 2 else {
                throw ValidationError("--num-layers-per-virtual-pipeline-stage needs --pipeline-model-parallel-size of at least 2")
            }
            guard microBatches.allSatisfy({ $0 % pipelineModelParallelSize == 0 }) else {
                throw ValidationError("the interleaved schedule needs every --micro-batches value to be a multiple of "
                    + "--pipeline-model-parallel-size \(pipelineModelParallelSize)")
            }
            _ = try GPTPipelinePart.chunks(numLayers: numLayers, stages: pipelineModelParallelSize, layersPerChunk: perChunk)
        }
    }

    func run() throws {
        let p = pipelineModelParallelSize
        let chunks = try numLayersPerVirtualPipelineStage.map {
            try GPTPipelinePart.chunks(numLayers: numLayers, stages: p, layersPerChunk: $0)
        } ?? 1
        let config = model
        let benchmark = PipelineBenchmark(model: config, microBatchSize: microBatchSize, seqLength: seqLength,
                                          stages: p, chunks: chunks)
        print("pipeline: p = \(p)\(chunks > 1 ? ", v = \(chunks) (interleaved)" : " (1F1B)"), \(numLayers) layers, "
            + "h \(hiddenSize), seq \(seqLength), micro-batch \(microBatchSize), vocab \(vocabSize), "
            + "\(RankThreads.threadsPerRank(ranksOnThisMachine: p)) thread(s) per stage")
        print("m     s/iter   s/micro-batch  bubble measured  (p-1)/(v m)  per-stage compute s / wait s")
        for m in microBatches {
            let r = try benchmark.run(microBatches: m, warmup: warmup, steps: steps)
            let compute = r.computeSeconds.map { fixed($0, 3) }.joined(separator: "/")
            let wait = r.waitSeconds.map { fixed($0, 3) }.joined(separator: "/")
            print(String(m).padding(to: 6) + fixed(r.secondsPerIteration, 3).padding(to: 9)
                  + fixed(r.secondsPerIteration / Double(m), 4).padding(to: 15) + fixed(r.measuredBubble, 3).padding(to: 17)
                  + fixed(r.formulaBubble, 3).padding(to: 13) + compute + " / " + wait)
        }
    }
}
