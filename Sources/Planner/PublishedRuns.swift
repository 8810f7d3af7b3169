import Models

/// A training run whose throughput was published, with its model, layout, software and cluster
/// as its source states them: a check of the time model, never an input to it.
public struct PublishedRun: Sendable {
    /// Paper or report and the row (`Narayanan 2021: 39B`).
    public var name: String
    /// Where the row and its settings come from.
    public var source: String
    public var config: GPTConfig
    public var layout: TrainingLayout
    public var cluster: ClusterSpec
    /// Published hardware TFLOP/s per GPU (recomputation counted), as the source counts them.
    public var tflopsPerGPU: Double
    /// Published seconds per iteration, or the one the TFLOP/s implies (`iterationPublished`).
    public var iterationSeconds: Double
    public var iterationPublished: Bool
    /// FLOPs of an iteration as the source counts them (recomputation included).
    public var flopsPerIteration: Double

    /// The planner's prediction for the run.
    public func predict() throws(PlanError) -> PlanEstimate {
        try Planner.estimate(config: config, layout: layout, cluster: cluster)
    }

    /// TFLOP/s per GPU at a predicted iteration time, counted as the source counts them.
    public func tflops(atSeconds seconds: Double) -> Double {
        flopsPerIteration / (Double(layout.devices) * seconds) / 1e12
    }

    /// A prediction's errors against the published figures (fractions: +0.1 is 10% over), in
    /// TFLOP/s per GPU and in seconds per iteration.
    public func errors(of estimate: PlanEstimate) -> (tflops: Double, seconds: Double) {
        (tflops(atSeconds: estimate.iterationSeconds) / tflopsPerGPU - 1, estimate.iterationSeconds / iterationSeconds - 1)
    }
}

/// The published runs the planner is checked against (README, "megatron plan"): every row's
/// source and settings are facts of the run; the planner's constants come from datasheets and
/// micro-benchmarks (`ClusterSpec.presets`), none from these rows.
public enum PublishedRuns {
    /// Builds a run from its published shape and layout; the iteration time is derived from the
    /// TFLOP/s (or the TFLOP/s from the time) with the FLOP count of its recomputation, or with
    /// `sourceFLOPs` where the source is known to count an iteration otherwise.
    static func run(_ name: String, _ source: String, layers: Int, hidden: Int, heads: Int, seq: Int = 2048,
                    vocab: Int = 51200, tp: Int, pp: Int, gpus: Int, micro: Int, global: Int, chunks: Int = 1,
                    recompute: CostModel.Recompute = .full, sequenceParallel: Bool = false,
                    precision: MemoryModel.Precision, distributedOptimizer: Bool = false,
                    software: SoftwareOptions = SoftwareOptions(), firstStageLayers: Int? = nil,
                    lastStageLayers: Int? = nil, cluster preset: String,
                    tflops: Double? = nil, seconds: Double? = nil, sourceFLOPs: Double? = nil) -> PublishedRun {
        let config = GPTConfig(numLayers: layers, hiddenSize: hidden, numAttentionHeads: heads,
                               maxPositionEmbeddings: seq, vocabSize: vocab)
        var layout = TrainingLayout()
        (layout.tensorParallel, layout.pipelineParallel, layout.dataParallel) = (tp, pp, gpus / (tp * pp))
        (layout.microBatchSize, layout.globalBatchSize, layout.virtualStages) = (micro, global, chunks)
        (layout.recompute, layout.sequenceParallel, layout.precision) = (recompute, sequenceParallel, precision)
        layout.distributedOptimizer = distributedOptimizer
        layout.software = software
        (layout.firstStageLayers, layout.lastStageLayers) = (firstStageLayers, lastStageLayers)
        var cluster = ClusterSpec.presets[preset]!
        cluster.nodes = max(1, gpus / cluster.devicesPerNode)
        let flops = sourceFLOPs ?? CostModel.flopsPerIteration(config, batch: global, recompute: recompute)
        let time = seconds ?? flops / (Double(gpus) * tflops! * 1e12)
        return PublishedRun(name: name, source: source, config: config, layout: layout, cluster: cluster,
                            tflopsPerGPU: tflops ?? flops / (Double(gpus) * time) / 1e12,
                            iterationSeconds: time, iterationPublished: seconds != nil, flopsPerIteration: flops)
    }

    /// Megatron-LM before February 2022: weight gradients added into the fp32 buffer separately.
    static var megatron2021: SoftwareOptions {
        var software = SoftwareOptions()
        software.gradientAccumulationFusion = false
        return software
    }

    /// Megatron-LM as the code stood when the 2019 paper's figures were published (commit
    /// 93ab4bea, September 2019) and at v1.0 (03d2880923, April 2020): no fused kernels, so the
    /// scores' scale, mask, softmax and dropout, the fc1 bias and GELU, and each bias, dropout and
    /// residual addition are kernels of their own. The fusions came with "Various speed
    /// optimizations" (51a2e6b0, September 2020).
    static var unfused2019: SoftwareOptions {
        var software = megatron2021
        (software.maskedSoftmaxFusion, software.biasGELUFusion, software.biasDropoutFusion) = (false, false, false)
        return software
    }

    /// PyTorch's DistributedDataParallel (`--DDP-impl torch`): buckets reduced during the backward.
    static func torchDDP(_ software: SoftwareOptions = megatron2021) -> SoftwareOptions {
        var software = software
        software.overlapGradReduce = true
        return software
    }

    /// Megatron-DeepSpeed (2021-22): DeepSpeed's pipeline engine partitions each boundary over
    /// the TP ranks (`is_pipe_partitioned`, the same traffic as scatter-gather), and DeepSpeed
    /// adds every micro-batch's gradients into its own fp32 buffer (no gradient-accumulation
    /// fusion).
    static var deepSpeedPipeline: SoftwareOptions { megatron2021 }

    /// Narayanan et al. 2021 (SC21), table 1: weak scaling on Selene (DGX A100 80GB), fp16, full
    /// recomputation, sequence 2048, vocabulary 51,200; micro-batch, global batch, interleaving
    /// and DDP implementation from the authors' `examples/sc21` scripts in Megatron-LM.
    public static let narayanan2021: [PublishedRun] = {
        let source = "Narayanan et al. 2021, table 1; Megatron-LM examples/sc21"
        func row(_ name: String, _ layers: Int, _ hidden: Int, _ heads: Int, tp: Int, pp: Int, gpus: Int, micro: Int,
                 global: Int, chunks: Int = 1, torch: Bool = false, tflops: Double) -> PublishedRun {
            run("Narayanan 2021: \(name)", source, layers: layers, hidden: hidden, heads: heads, tp: tp, pp: pp, gpus: gpus,
                micro: micro, global: global, chunks: chunks, precision: .fp16,
                software: torch ? torchDDP() : megatron2021, cluster: "dgx-a100-80gb", tflops: tflops)
        }
        return [
            row("1.7B", 24, 2304, 24, tp: 1, pp: 1, gpus: 32, micro: 16, global: 512, torch: true, tflops: 137),
            row("3.6B", 30, 3072, 32, tp: 2, pp: 1, gpus: 64, micro: 16, global: 512, torch: true, tflops: 138),
            row("7.5B", 36, 4096, 32, tp: 4, pp: 1, gpus: 128, micro: 16, global: 512, torch: true, tflops: 142),
            row("18B", 40, 6144, 48, tp: 8, pp: 1, gpus: 256, micro: 8, global: 1024, torch: true, tflops: 135),
            row("39B", 48, 8192, 64, tp: 8, pp: 2, gpus: 512, micro: 4, global: 1536, tflops: 138),
            row("76B", 60, 10240, 80, tp: 8, pp: 4, gpus: 1024, micro: 2, global: 1792, chunks: 3, tflops: 140),
            row("145B", 80, 12288, 96, tp: 8, pp: 8, gpus: 1536, micro: 2, global: 2304, chunks: 2, tflops: 148),
            row("310B", 96, 16384, 128, tp: 8, pp: 16, gpus: 1920, micro: 1, global: 2160, chunks: 2, tflops: 155),
            row("530B", 105, 20480, 128, tp: 8, pp: 35, gpus: 2520, micro: 1, global: 2520, chunks: 3, tflops: 163),
            row("1T", 128, 25600, 160, tp: 8, pp: 64, gpus: 3072, micro: 1, global: 3072, tflops: 163),
        ]
    }()

    /// Korthikanti et al. 2022, tables 3 and 5: Selene (DGX A100 80GB), data-parallel size 1,
    /// full recomputation against SP with selective recomputation. The iteration times reproduce
    /// the MFU and HFU the Megatron-LM README of May 2022 states (41.5/51.4/56.0/56.3%).
    public static let korthikanti2022: [PublishedRun] = {
        let source = "Korthikanti et al. 2022, tables 3 and 5; Megatron-LM README (May 2022)"
        func rows(_ name: String, _ layers: Int, _ hidden: Int, _ heads: Int, pp: Int, gpus: Int, micro: Int, global: Int,
                  full: Double, selective: Double) -> [PublishedRun] {
            [run("Korthikanti 2022: \(name) full recompute", source, layers: layers, hidden: hidden, heads: heads, tp: 8,
                 pp: pp, gpus: gpus, micro: micro, global: global, precision: .bf16, cluster: "dgx-a100-80gb", seconds: full),
             run("Korthikanti 2022: \(name) SP + selective", source, layers: layers, hidden: hidden, heads: heads, tp: 8,
                 pp: pp, gpus: gpus, micro: micro, global: global, recompute: .selective, sequenceParallel: true,
                 precision: .bf16, cluster: "dgx-a100-80gb", seconds: selective)]
        }
        return rows("22B", 48, 6144, 64, pp: 1, gpus: 8, micro: 4, global: 4, full: 1.42, selective: 1.10)
            + rows("175B", 96, 12288, 96, pp: 8, gpus: 64, micro: 1, global: 64, full: 18.13, selective: 13.75)
            + rows("530B", 105, 20480, 128, pp: 35, gpus: 280, micro: 1, global: 280, full: 49.05, selective: 37.83)
            + rows("1T", 128, 25600, 160, pp: 64, gpus: 512, micro: 1, global: 512, full: 94.42, selective: 71.49)
    }()

    /// BLOOM 176B (BigScience, `train/tr11-176B-ml/tr11-176B-ml.slurm` and its README's log at
    /// iteration 85,376): 48 nodes of 8 A100 80GB on Jean Zay, Megatron-DeepSpeed's pipeline,
    /// bf16 (DeepSpeed's BF16 optimizer shards the fp32 state over DP, as ZeRO-1), full
    /// recomputation, vocabulary 250,880. DeepSpeed's `type:transformer|embedding`
    /// partition counts each embedding as a layer: 5 transformer layers on the first and last
    /// stages, 6 on the others.
    public static let bloom: [PublishedRun] = [
        run("BLOOM 176B", "bigscience-workshop/bigscience tr11-176B-ml (slurm script, README log)", layers: 70,
            hidden: 14336, heads: 112, vocab: 250_880, tp: 4, pp: 12, gpus: 384, micro: 2, global: 2048, precision: .bf16,
            distributedOptimizer: true, software: deepSpeedPipeline, firstStageLayers: 5, lastStageLayers: 5, cluster: "jean-zay-a100",
            tflops: 149.77, seconds: 104.70),
    ]

    /// The Megatron-LM README of September 2020 (`images/tables.tex`): sequence 1024, vocabulary
    /// 51,200, fp16, full recomputation; model parallelism only on one DGX-2H (V100, batch 8) or
    /// one DGX A100 (40GB, batch 16), then 128-way data parallelism (global batch 2048). The
    /// table was merged in the same minute as the fused kernels (51a2e6b0, 5281919), so the
    /// fusions are taken as on.
    public static let megatronReadme2020: [PublishedRun] = {
        let source = "Megatron-LM README (Sep 2020), images/tables.tex"
        let shapes = [("1B", 24, 1920, 15, 1), ("2B", 30, 2304, 18, 2), ("4B", 36, 3072, 24, 4), ("8B", 42, 4096, 32, 8)]
        let v100 = [1.121, 1.093, 1.238, 1.407], a100 = [1.076, 1.026, 1.162, 1.343], scaled = [1.153, 1.101, 1.242, 1.380]
        return shapes.indices.flatMap { i -> [PublishedRun] in
            let (name, layers, hidden, heads, mp) = shapes[i]
            func row(_ what: String, cluster: String, micro: Int, global: Int, dp: Int, seconds: Double) -> PublishedRun {
                run("Megatron README 2020: \(name) \(what)", source, layers: layers, hidden: hidden, heads: heads, seq: 1024,
                    tp: mp, pp: 1, gpus: mp * dp, micro: micro, global: global, precision: .fp16, software: megatron2021,
                    cluster: cluster, seconds: seconds)
            }
            return [row("V100", cluster: "dgx2h-v100", micro: 8, global: 8, dp: 1, seconds: v100[i]),
                    row("A100", cluster: "dgx-a100-40gb", micro: 16, global: 16, dp: 1, seconds: a100[i]),
                    row("A100 DP 128", cluster: "dgx-a100-40gb", micro: 16, global: 2048, dp: 128, seconds: scaled[i])]
        }
    }()

    /// MT-NLG 530B (Smith et al. 2022, table 1): 280, 350 and 420 DGX A100 nodes, TP 8 x PP 35,
    /// global batch 1920, bf16, full recomputation, Megatron-DeepSpeed's pipeline and ZeRO-1.
    public static let mtnlg: [PublishedRun] = [(280, 60.1, 126.0), (350, 50.2, 121.0), (420, 44.4, 113.0)].map {
        var run = run("MT-NLG 530B, \($0.0) nodes", "Smith et al. 2022, table 1", layers: 105, hidden: 20480, heads: 128,
                      tp: 8, pp: 35, gpus: $0.0 * 8, micro: 1, global: 1920, precision: .bf16, distributedOptimizer: true,
                      software: deepSpeedPipeline, cluster: "dgx-a100-80gb", seconds: $0.1)
        run.tflopsPerGPU = $0.2
        return run
    }

    /// Shoeybi et al. 2019: the 1.2B baseline on one V100 (39 TFLOP/s) and 8.3B over 512
    /// (TP 8 x DP 64, 15.1 PFLOP/s), fp16, full recomputation, sequence 1024, batch 8 per replica.
    /// The 8.3B run used PyTorch's DDP: the repository's README of the time says its scaling
    /// rose from 60% to 74% with it (the paper states 76%).
    ///
    /// The paper gives no iteration time and no FLOP formula; NVIDIA's Megatron-LM v1.0 post
    /// (`megatronV1`) gives both for the same 1.2B baseline: 1,288 ms at 62.4 TFLOP/s, "60% over
    /// our previously 39 teraFLOPs". So the paper's baseline took 1.288 x 62.4 / 39 = 2.061 s, and
    /// its count is 62.4e12 x 1.288 = 8.04e13 FLOPs an iteration: 8 per parameter and token
    /// (forward, backward and the recomputed forward) within 1.1%, not the 8.63e13 of Narayanan
    /// et al.'s formula, which adds the attention scores. The 8.3B row is counted the same way.
    public static let megatron2019: [PublishedRun] = {
        let source = "Shoeybi et al. 2019, section 5.1; iteration time and FLOP count from NVIDIA's Megatron-LM v1.0 post"
        let scaled = GPTConfig(numLayers: 72, hiddenSize: 3072, numAttentionHeads: 32, maxPositionEmbeddings: 1024,
                               vocabSize: 51200)
        return [
            run("Megatron-LM 2019: 1.2B, 1 GPU", source, layers: 40, hidden: 1536, heads: 16, seq: 1024, tp: 1, pp: 1,
                gpus: 1, micro: 8, global: 8, precision: .fp16, software: unfused2019, cluster: "dgx2h-v100",
                tflops: 39, seconds: v1Baseline.seconds * v1Baseline.tflops / 39,
                sourceFLOPs: v1Baseline.tflops * 1e12 * v1Baseline.seconds),
            run("Megatron-LM 2019: 8.3B, 512 GPUs", source, layers: 72, hidden: 3072, heads: 32, seq: 1024, tp: 8, pp: 1,
                gpus: 512, micro: 8, global: 512, precision: .fp16, software: torchDDP(unfused2019),
                cluster: "dgx2h-v100", tflops: 15.1e3 / 512,
                sourceFLOPs: 8 * CostModel.parameters(scaled) * 512 * 1024),
        ]
    }()

    /// NVIDIA ADLR, "MegatronLM's Supercharged V1.0" (the release tagged v1.0, 03d2880923, April
    /// 2020): the 1.2B baseline at 1,288 ms per iteration and 62.4 TFLOP/s on one DGX-2H V100.
    static let v1Baseline = (seconds: 1.288, tflops: 62.4)

    /// The post's 1.2B row, the 2019 paper's baseline model. The code of v1.0 has no fused
    /// kernels (scale, mask, softmax and dropout, bias and GELU, bias, dropout and residual are
    /// separate kernels) and its example scripts recompute activations. The post's other rows
    /// (2.0B, 4.2B and 8.7B with model parallelism) give no shape, and their weak-scaling
    /// percentages do not follow from the 2019 paper's shapes of those sizes, so they are left out.
    public static let megatronV1: [PublishedRun] = [
        run("Megatron-LM v1.0 (2020): 1.2B, 1 GPU", "NVIDIA ADLR, MegatronLM's Supercharged V1.0 (nv-adlr.github.io)",
            layers: 40, hidden: 1536, heads: 16, seq: 1024, tp: 1, pp: 1, gpus: 1, micro: 8, global: 8,
            precision: .fp16, software: unfused2019, cluster: "dgx2h-v100", tflops: v1Baseline.tflops,
            seconds: v1Baseline.seconds, sourceFLOPs: v1Baseline.tflops * 1e12 * v1Baseline.seconds),
    ]

    /// Every published row, the ones the planner is checked against.
    public static var all: [PublishedRun] {
        narayanan2021 + korthikanti2022 + bloom + megatronReadme2020 + mtnlg + megatron2019 + megatronV1
    }
}
