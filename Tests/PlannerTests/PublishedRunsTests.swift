import Models
import Testing
@testable import Planner

/// The planner against published runs it was not fitted to (`PublishedRuns`).
@Suite struct PublishedRunsTests {
    /// Every published run's error in TFLOP/s per GPU and in seconds per iteration, in percent
    /// (README, "megatron plan"), pinned to 0.3 points so that a change to the time model that
    /// moves any of them is seen and the README table is regenerated.
    static let pinnedErrors: KeyValuePairs<String, (tflops: Double, seconds: Double)> = [
        "Narayanan 2021: 1.7B": (6.9, -6.5),
        "Narayanan 2021: 3.6B": (8.1, -7.5),
        "Narayanan 2021: 7.5B": (8.4, -7.7),
        "Narayanan 2021: 18B": (8.9, -8.2),
        "Narayanan 2021: 39B": (4.0, -3.8),
        "Narayanan 2021: 76B": (10.7, -9.7),
        "Narayanan 2021: 145B": (7.3, -6.8),
        "Narayanan 2021: 310B": (5.9, -5.6),
        "Narayanan 2021: 530B": (3.8, -3.7),
        "Narayanan 2021: 1T": (0.9, -0.9),
        "Korthikanti 2022: 22B full recompute": (1.4, -1.4),
        "Korthikanti 2022: 22B SP + selective": (3.8, -3.6),
        "Korthikanti 2022: 175B full recompute": (-2.1, 2.2),
        "Korthikanti 2022: 175B SP + selective": (-1.0, 1.0),
        "Korthikanti 2022: 530B full recompute": (-4.2, 4.3),
        "Korthikanti 2022: 530B SP + selective": (-2.3, 2.3),
        "Korthikanti 2022: 1T full recompute": (-0.4, 0.4),
        "Korthikanti 2022: 1T SP + selective": (-0.7, 0.7),
        "BLOOM 176B": (19.2, -16.1),
        "Megatron README 2020: 1B V100": (-14.7, 17.2),
        "Megatron README 2020: 1B A100": (2.1, -2.0),
        "Megatron README 2020: 1B A100 DP 128": (6.7, -6.3),
        "Megatron README 2020: 2B V100": (-8.7, 9.6),
        "Megatron README 2020: 2B A100": (5.7, -5.4),
        "Megatron README 2020: 2B A100 DP 128": (8.4, -7.8),
        "Megatron README 2020: 4B V100": (-5.8, 6.2),
        "Megatron README 2020: 4B A100": (7.7, -7.1),
        "Megatron README 2020: 4B A100 DP 128": (6.2, -5.8),
        "Megatron README 2020: 8B V100": (-5.2, 5.5),
        "Megatron README 2020: 8B A100": (7.5, -7.0),
        "Megatron README 2020: 8B A100 DP 128": (-3.6, 3.7),
        "MT-NLG 530B, 280 nodes": (24.7, -20.0),
        "MT-NLG 530B, 350 nodes": (25.8, -20.9),
        "MT-NLG 530B, 420 nodes": (30.6, -23.1),
        "Megatron-LM 2019: 1.2B, 1 GPU": (15.3, -13.3),
        "Megatron-LM 2019: 8.3B, 512 GPUs": (25.9, -20.6),
        "Megatron-LM v1.0 (2020): 1.2B, 1 GPU": (-27.9, 38.8)
    ]

    @Test func everyPublishedRunKeepsItsPinnedError() throws {
        let runs = PublishedRuns.all
        #expect(runs.count == Self.pinnedErrors.count)
        #expect(Set(runs.map(\.name)).count == runs.count)
        for run in runs {
            let estimate = try run.predict()
            let errors = run.errors(of: estimate)
            let (tflopsError, secondsError) = (errors.tflops * 100, errors.seconds * 100)
            let pinned = try #require(Self.pinnedErrors.first { $0.key == run.name }?.value, "\(run.name) is not pinned")
            #expect(abs(tflopsError - pinned.tflops) < 0.3 && abs(secondsError - pinned.seconds) < 0.3,
                    "\(run.name): \(tflopsError)% / \(secondsError)%, pinned \(pinned)")
            #expect(estimate.fits, "\(run.name) ran, so it fits")
        }
    }

    /// The runs of Megatron-LM's own software of 2022 (Korthikanti et al., the fused kernels and
    /// gradient-accumulation fusion the planner assumes by default) are predicted within 5%, and
    /// Narayanan et al.'s within 11%.
    @Test func megatronRunsAreWithinTheirBounds() throws {
        for run in PublishedRuns.narayanan2021 {
            let estimate = try run.predict()
            #expect(abs(run.errors(of: estimate).seconds) < 0.11, "\(run.name)")
        }
        for run in PublishedRuns.korthikanti2022 {
            let estimate = try run.predict()
            #expect(abs(run.errors(of: estimate).seconds) < 0.05, "\(run.name)")
        }
    }

    /// What the 2019 paper reports is weak scaling: the 8.3B model's rate per GPU over 512 GPUs
    /// against the 1.2B baseline's on one, 76% with PyTorch's DDP; the repository's README of the
    /// time puts it at 60% without DDP's overlap and 74% with it. Counted as the paper counts
    /// (`PublishedRuns.megatron2019`), the planner's ratio is within 7 points of the published
    /// one, and the overlap's gain within 3 points of the README's 14; the absolute rates of that
    /// software are not (README).
    @Test func megatron2019WeakScalingIsThePublishedOne() throws {
        let baseline = PublishedRuns.megatron2019[0], scaled = PublishedRuns.megatron2019[1]
        func rate(_ run: PublishedRun) throws -> Double { run.tflops(atSeconds: try run.predict().iterationSeconds) }
        var local = scaled
        local.layout.software.overlapGradReduce = false
        let (overlapped, plain) = (try rate(scaled) / rate(baseline), try rate(local) / rate(baseline))
        #expect(abs(overlapped - 0.76) < 0.07, "\(overlapped)")
        #expect(abs((overlapped - plain) - (0.74 - 0.60)) < 0.03, "\(overlapped), \(plain)")
    }

    static func mtnlgLayout(nodes: Int) -> TrainingLayout {
        var layout = PublishedRuns.mtnlg[0].layout
        layout.dataParallel = nodes * 8 / 280
        return layout
    }

    static func cluster(_ name: String, nodes: Int) -> ClusterSpec {
        var cluster = ClusterSpec.presets[name]!
        cluster.nodes = nodes
        return cluster
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
        #expect(cluster.devices == 8 && cluster.gemmEfficiency == 0.8 && cluster.streamingMultiprocessors == nil)
        let withUnits = try ClusterSpec(json: String(json.dropLast()) + #", "streaming_multiprocessors": 108}"#, source: "lab.json")
        #expect(withUnits.streamingMultiprocessors == 108)
        #expect(throws: PlanError.invalid("lab.json: memory_efficiency must be at most 1")) {
            try ClusterSpec(json: String(json.dropLast()) + #", "memory_efficiency": 1.5}"#, source: "lab.json")
        }
        #expect(throws: PlanError.invalid("lab.json: missing key \"memory_bandwidth\"")) {
            try ClusterSpec(json: #"{"peak_flops": 1e14, "memory_bytes": 1e9}"#, source: "lab.json")
        }
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
