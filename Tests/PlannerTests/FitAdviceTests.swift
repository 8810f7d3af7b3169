import Models
import Planner
import Testing

/// A layout that does not fit says by how much and which changes would fit.
@Suite struct FitAdviceTests {
    static let cluster: ClusterSpec = {
        var cluster = ClusterSpec.presets["dgx-a100-80gb"]!
        cluster.nodes = 128
        return cluster
    }()

    static func layout(pipeline: Int, microBatch: Int) -> TrainingLayout {
        var layout = TrainingLayout()
        layout.tensorParallel = 8
        layout.pipelineParallel = pipeline
        layout.dataParallel = 1024 / (8 * pipeline)
        layout.microBatchSize = microBatch
        layout.globalBatchSize = 1536
        layout.precision = .bf16
        return layout
    }

    @Test func aLayoutThatFitsNeedsNoAdvice() throws {
        var layout = Self.layout(pipeline: 16, microBatch: 1)
        layout.sequenceParallel = true
        layout.recompute = .selective
        layout.distributedOptimizer = true
        #expect(try Planner.estimate(config: ModelPreset.gpt3_175b.config, layout: layout, cluster: Self.cluster).fits)
        #expect(try FitAdvice(config: ModelPreset.gpt3_175b.config, layout: layout, cluster: Self.cluster) == nil)
    }

    /// GPT-3 175B at TP 8 x PP 4, micro-batch 2, needs 196 GiB of 80: no single change fits, pairs
    /// do; each is re-planned, fits, and they come fastest first.
    @Test func aLayoutThatDoesNotFitSaysByHowMuchAndWhatWould() throws {
        let config = ModelPreset.gpt3_175b.config, layout = Self.layout(pipeline: 4, microBatch: 2)
        let plan = try Planner.estimate(config: config, layout: layout, cluster: Self.cluster)
        let advice = try #require(try FitAdvice(config: config, layout: layout, cluster: Self.cluster))
        #expect(advice.excessBytes == plan.memoryPerDeviceBytes - Self.cluster.memoryBytes && advice.excessBytes > 0)
        #expect(!advice.alternatives.isEmpty)
        #expect(advice.alternatives.allSatisfy { $0.estimate.fits && $0.change.split(separator: " ").filter { $0.hasPrefix("--") }.count == 2 })
        #expect(advice.alternatives.map(\.estimate.iterationSeconds) == advice.alternatives.map(\.estimate.iterationSeconds).sorted())
        #expect(advice.alternatives.contains { $0.change == "--recompute-granularity full --use-distributed-optimizer" })
    }
}
