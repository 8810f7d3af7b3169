import Models
import Testing
@testable import Planner

/// The planner against the papers' published runs (REFERENCE section 7), with one efficiency
/// per cluster preset.
@Suite struct PublishedRunsTests {
    static func mtnlgLayout(nodes: Int) -> TrainingLayout {
        var layout = TrainingLayout()
        layout.tensorParallel = 8
        layout.pipelineParallel = 35
        layout.dataParallel = nodes * 8 / 280
        layout.microBatchSize = 1
        layout.globalBatchSize = 1920
        layout.recompute = .full
        layout.distributedOptimizer = true
        layout.precision = .bf16
        return layout
    }

    static func cluster(_ name: String, nodes: Int) -> ClusterSpec {
        var cluster = ClusterSpec.presets[name]!
        cluster.nodes = nodes
        return cluster
    }

    @Test(arguments: [(280, 60.1, 126.0), (350, 50.2, 121.0), (420, 44.4, 113.0)])
    func mtnlgIterationTimeAndThroughput(nodes: Int, seconds: Double, tflops: Double) throws {
        let estimate = try Planner.estimate(config: ModelPreset.mtnlg_530b.config, layout: Self.mtnlgLayout(nodes: nodes),
                                            cluster: Self.cluster("dgx-a100-80gb", nodes: nodes))
        print("MT-NLG \(nodes) nodes: \(estimate.iterationSeconds) s (published \(seconds)), "
              + "\(estimate.flopsPerDevice / 1e12) TFLOP/s per GPU (published \(tflops))")
        #expect(abs(estimate.iterationSeconds / seconds - 1) < 0.10)
        #expect(abs(estimate.flopsPerDevice / 1e12 / tflops - 1) < 0.10)
        #expect(estimate.fits)
    }

    static let megatron1_2B = GPTConfig(numLayers: 40, hiddenSize: 1536, numAttentionHeads: 16,
                                        maxPositionEmbeddings: 1024, vocabSize: 51200)

    static func megatron2019Layout(tensorParallel: Int, dataParallel: Int) -> TrainingLayout {
        var layout = TrainingLayout()
        layout.tensorParallel = tensorParallel
        layout.dataParallel = dataParallel
        layout.microBatchSize = 8
        layout.globalBatchSize = 8 * dataParallel
        layout.recompute = .full
        layout.precision = .fp16
        return layout
    }

    @Test func megatron2019BaselineAndWeakScaling() throws {
        let baseline = try Planner.estimate(config: Self.megatron1_2B,
                                            layout: Self.megatron2019Layout(tensorParallel: 1, dataParallel: 1),
                                            cluster: Self.cluster("dgx2h-v100", nodes: 1))
        let scaled = try Planner.estimate(config: ModelPreset.megatron_8_3b.config,
                                          layout: Self.megatron2019Layout(tensorParallel: 8, dataParallel: 64),
                                          cluster: Self.cluster("dgx2h-v100", nodes: 32))
        let total = scaled.flopsPerDevice * 512
        let efficiency = scaled.flopsPerDevice / baseline.flopsPerDevice
        print("Megatron 2019: 1.2B on 1 V100 \(baseline.flopsPerDevice / 1e12) TFLOP/s (published 39); "
              + "8.3B on 512 \(total / 1e15) PFLOP/s (15.1), weak scaling \(efficiency) (0.76)")
        #expect(abs(baseline.flopsPerDevice / 39e12 - 1) < 0.10)
        #expect(abs(total / 15.1e15 - 1) < 0.10)
        #expect(abs(efficiency / 0.76 - 1) < 0.10)
        #expect(scaled.tensorParallelSeconds > 0 && scaled.dataParallelSeconds > 0)
    }

    @Test func memoryDecidesWhatFits() throws {
        let cluster = Self.cluster("dgx-a100-80gb", nodes: 280)
        var layout = Self.mtnlgLayout(nodes: 280)
        let fitting = try Planner.estimate(config: ModelPreset.mtnlg_530b.config, layout: layout, cluster: cluster)
        layout.recompute = .none
        let noRecompute = try Planner.estimate(config: ModelPreset.mtnlg_530b.config, layout: layout, cluster: cluster)
        #expect(fitting.fits && !noRecompute.fits)
        #expect(noRecompute.activationBytesPerDevice > 10 * fitting.activationBytesPerDevice)
        // ZeRO-1 over 8 replicas: 6 + 12/8 bytes per parameter instead of 18.
        layout.recompute = .full
        layout.distributedOptimizer = false
        let replicated = try Planner.estimate(config: ModelPreset.mtnlg_530b.config, layout: layout, cluster: cluster)
        #expect(abs(replicated.stateBytesPerDevice / fitting.stateBytesPerDevice - 18 / 7.5) < 1e-9)
    }

    @Test func layoutsThatDoNotDivideAreErrors() {
        let config = ModelPreset.gpt2_124m.config
        let cluster = Self.cluster("dgx-a100-80gb", nodes: 1)
        func error(_ change: (inout TrainingLayout) -> Void) -> String {
            var layout = TrainingLayout()
            layout.globalBatchSize = 8
            change(&layout)
            do {
                _ = try Planner.estimate(config: config, layout: layout, cluster: cluster)
                return "ok"
            } catch {
                return error.description
            }
        }
        #expect(error { _ in } == "ok")
        #expect(error { $0.tensorParallel = 5 }.contains("does not divide --num-attention-heads"))
        #expect(error { $0.pipelineParallel = 5 }.contains("--pipeline-model-parallel-size 5 does not divide --num-layers 12"))
        #expect(error { $0.microBatchSize = 3 }.contains("--global-batch-size 8"))
        #expect(error { $0.dataParallel = 16; $0.globalBatchSize = 16 }.contains("needs 16 devices"))
        #expect(error { $0.sequenceParallel = true }.contains("--sequence-parallel"))
    }

    @Test func clusterFiles() throws {
        let json = """
        {"name": "lab", "peak_flops": 1e14, "memory_bytes": 2.4e10, "memory_bandwidth": 1e12,
         "devices_per_node": 4, "nodes": 2, "intra_node_bandwidth": 5e10, "intra_node_latency": 1e-5,
         "inter_node_bandwidth": 2.5e10, "inter_node_latency": 2e-5}
        """
        let cluster = try ClusterSpec(json: json, source: "lab.json")
        #expect(cluster.devices == 8 && cluster.gemmEfficiency == 0.5)
        #expect(throws: PlanError.invalid("lab.json: unknown key \"peak\" (known: \(ClusterSpec.jsonKeys.joined(separator: ", ")))")) {
            try ClusterSpec(json: "{\"peak\": 1}", source: "lab.json")
        }
        #expect(throws: PlanError.self) { try ClusterSpec(json: "{\"peak_flops\": -1}", source: "x") }
        #expect(throws: PlanError.self) { try ClusterSpec(json: "{\"name\": ", source: "x") }
    }
}

@Suite struct LayoutSearchTests {
    @Test func searchRanksLayoutsThatFit() throws {
        var cluster = ClusterSpec.presets["dgx-a100-80gb"]!
        cluster.nodes = 280
        let config = ModelPreset.mtnlg_530b.config
        let search = LayoutSearch(config: config, cluster: cluster, globalBatchSize: 1920,
                                  precision: .bf16, distributedOptimizer: nil)
        #expect(search.ranked.count > 10 && !search.tooLarge.isEmpty)
        #expect(search.ranked.allSatisfy { $0.estimate.fits && $0.layout.devices == 2240 })
        let times = search.ranked.map(\.estimate.iterationSeconds)
        #expect(zip(times, times.dropFirst()).allSatisfy { $0 <= $1 * (1 + 1e-4) })
        // Without tensor parallelism the 530B model cannot fit in 80 GB at any pipeline depth here.
        #expect(!search.ranked.contains { $0.layout.tensorParallel == 1 && $0.layout.pipelineParallel == 1 })
        let published = try Planner.estimate(config: config, layout: PublishedRunsTests.mtnlgLayout(nodes: 280),
                                             cluster: cluster)
        #expect(search.ranked[0].estimate.iterationSeconds <= published.iterationSeconds)
        let reasons = LayoutSearch.reasons(search.ranked[4].estimate, comparedTo: search.ranked[0].estimate)
        #expect(!reasons.isEmpty)
    }
}
