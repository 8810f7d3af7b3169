#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Models
import Planner
import Testing

/// The local time model's pieces: GEMM throughput interpolated on the measured grid, the step
/// added up from the kernels (checked against closed-form FLOP counts with a flat throughput),
/// and the timings file's checks.
@Suite struct LocalStepTimeTests {
    /// Timings with every GEMM at `gflops` (or a throughput growing with the shape), the
    /// attention core and every memory-bound kernel at fixed costs.
    static func timings(gflops: (Int, Int, Int) -> Double = { _, _, _ in 100 }, perElement: Double = 1e-9) -> KernelTimings {
        let rows = [256, 1024, 4096], features = [64, 256, 1024, 4096]
        var table = [Double]()
        for m in rows { for k in features { for n in features { table.append(gflops(m, k, n)) } } }
        var elementwise = [String: Double]()
        for kernel in KernelTimings.Elementwise.allCases { elementwise[kernel.rawValue] = perElement }
        return KernelTimings(machine: "test", threads: 1, precision: "fp32", rows: rows, inFeatures: features, outFeatures: features,
                             gemmGFLOPs: ["forward": table, "inputGradient": table, "weightGradient": table],
                             attentionSeqLengths: [128, 1024], attentionForward: [1e-11, 1e-11], attentionBackward: [2e-11, 2e-11],
                             elementwise: elementwise)
    }

    /// At a grid point the measured throughput itself; between points within the neighbours'
    /// range; outside the grid the edge's.
    @Test func gemmThroughputIsInterpolatedOnTheGrid() {
        let timings = Self.timings { m, k, n in Double(m / 256 + k / 64 + n / 64) }
        func gflops(_ m: Int, _ k: Int, _ n: Int) -> Double {
            2 * Double(m * k * n) / timings.gemmSeconds("forward", rows: m, inFeatures: k, outFeatures: n) / 1e9
        }
        #expect(abs(gflops(1024, 256, 1024) - Double(4 + 4 + 16)) < 1e-9)
        let between = gflops(2048, 256, 1024)
        #expect(between > 24 && between < 36)
        #expect(abs(gflops(65536, 4096, 50304) - gflops(4096, 4096, 4096)) < 1e-9)
        #expect(abs(gflops(16, 8, 8) - gflops(256, 64, 64)) < 1e-9)
    }

    /// With one GEMM throughput everywhere, the GEMM part of a micro-batch is its closed-form FLOPs
    /// over it: forward and both gradients of `12 l h^2` weights and the `V h` output layer, and a
    /// second forward of the layers with full recomputation; TP splits it.
    @Test(arguments: [CostModel.Recompute.none, .full])
    func gemmTimeIsTheClosedFormFLOPs(recompute: CostModel.Recompute) {
        let config = GPTConfig(numLayers: 4, hiddenSize: 256, numAttentionHeads: 4, maxPositionEmbeddings: 128, vocabSize: 1000)
        var layout = TrainingLayout()
        layout.microBatchSize = 2
        layout.recompute = recompute
        let step = LocalStepTime(config: config, layout: layout, timings: Self.timings())
        let n = 2.0 * 128, h = 256.0, l = 4.0, v = Double(config.paddedVocabSize)
        let flops = 3 * 2 * n * (12 * l * h * h + v * h) + (recompute == .full ? 2 * n * 12 * l * h * h : 0)
        #expect(abs(step.gemmSeconds - flops / 100e9) / step.gemmSeconds < 1e-9)
        layout.tensorParallel = 2
        let split = LocalStepTime(config: config, layout: layout, timings: Self.timings())
        #expect(abs(split.gemmSeconds - step.gemmSeconds / 2) / step.gemmSeconds < 1e-9)
        #expect(split.tensorParallelSeconds > 0 && step.tensorParallelSeconds == 0)
    }

    /// The plan of a layout on a cluster with kernel timings is the schedule over the local step:
    /// `m` micro-batches of the slowest stage and `p - 1` of the stages' mean (fill and drain),
    /// plus DP and the optimizer.
    @Test func thePlanAddsUpTheLocalStep() throws {
        let config = GPTConfig(numLayers: 4, hiddenSize: 256, numAttentionHeads: 4, maxPositionEmbeddings: 128, vocabSize: 1000)
        var cluster = ClusterSpec(name: "local", peakFLOPs: 1e11, memoryBytes: 1e12, memoryBandwidth: 1e10, devicesPerNode: 2,
                                  nodes: 1, intraNodeBandwidth: 1e10, intraNodeLatency: 1e-6, interNodeBandwidth: 1e10,
                                  interNodeLatency: 1e-6, gemmEfficiency: 0.75)
        cluster.implementation = .megatronSwift
        cluster.kernelTimings = Self.timings()
        var layout = TrainingLayout()
        layout.pipelineParallel = 2
        layout.microBatchSize = 1
        layout.globalBatchSize = 4
        layout.precision = .fp32
        let plan = try Planner.estimate(config: config, layout: layout, cluster: cluster)
        let step = LocalStepTime(config: config, layout: layout, timings: Self.timings())
        let perMicroBatch = step.computePerMicroBatch + step.tensorParallelSeconds + step.pipelineParallelSeconds
        let expected = 4 * perMicroBatch + step.meanStageSeconds + step.dataParallelSeconds + step.optimizerSeconds
        #expect(step.meanStageSeconds < perMicroBatch)
        #expect(abs(plan.iterationSeconds - expected) / expected < 1e-12)
    }

    /// Saved timings read back equal; a file that is not JSON, or lacks a kernel, is an error
    /// naming the file and what is wrong.
    @Test func timingsFilesAreChecked() throws {
        let directory = FileManager.default.temporaryDirectory.path + "/timings-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/kernels.json"
        try Self.timings().save(to: path)
        #expect(try KernelTimings.load(from: path) == Self.timings())
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: path))
        #expect { try KernelTimings.load(from: path) } throws: { "\($0)" == "\(path): not a kernel timings file (not valid JSON)" }
        try Data(#"{"format": "five"}"#.utf8).write(to: URL(fileURLWithPath: path))
        #expect { try KernelTimings.load(from: path) } throws: {
            "\($0)" == "\(path): not a kernel timings file (at \"format\": expected an integer)"
        }
        var missing = Self.timings()
        missing.elementwise["adamw"] = nil
        try missing.save(to: path)
        #expect { try KernelTimings.load(from: path) } throws: { "\($0)".contains("adamw") }
    }

    /// A measurement may replace a cache of any format (an older one is measured again), never a
    /// file that is not a cache: a mistyped `--kernel-timings-file` keeps the user's file.
    @Test func onlyATimingsCacheIsReplaced() throws {
        let directory = FileManager.default.temporaryDirectory.path + "/timings-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/kernels.json"
        try KernelTimings.checkReplaceable(path)  // absent
        try Data(#"{"machine": "old cpu", "threads": 2}"#.utf8).write(to: URL(fileURLWithPath: path))
        try KernelTimings.checkReplaceable(path)
        try Data(#"{"num_layers": 2}"#.utf8).write(to: URL(fileURLWithPath: path))
        #expect { try KernelTimings.checkReplaceable(path) } throws: { "\($0)".contains("exists and is not a kernel timings cache") }
    }
}
