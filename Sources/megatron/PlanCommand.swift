import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import FileSupport
import Kernels
import Measurement
import Models
import Planner
import Training
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `megatron plan`: memory, FLOPs and time of a 3D layout on a cluster, or a layout search.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Predict memory, FLOPs and time of a training layout on a cluster; --search ranks layouts.",
        discussion: """
        The model is a preset (--model gpt2-124m | megatron-8.3b | gpt3-175b | mt-nlg-530b) or
        given with train's flags. The cluster is a preset (dgx2h-v100, dgx-a100-80gb, dgx-a100-40gb,
        jean-zay-a100, dgx-h100, dgx-h200, local) or a JSON file with the keys \(ClusterSpec.jsonKeys.joined(separator: ", ")).
        The data-parallel size is the cluster's devices / (TP x PP) unless --data-parallel-size
        is given. Time model: ARCHITECTURE.md (Planner). --published-runs prints the published
        runs the GPU time model is checked against, predicted beside published.
        """)

    @Option(name: .long, help: "Model preset.")
    var model: String?
    @Option(name: .flag(.numLayers), help: .flag(.numLayers)) var numLayers: Int?
    @Option(name: .flag(.hiddenSize), help: .flag(.hiddenSize)) var hiddenSize: Int?
    @Option(name: .flag(.numAttentionHeads), help: .flag(.numAttentionHeads)) var numAttentionHeads: Int?
    @Option(name: .flag(.seqLength), help: .flag(.seqLength)) var seqLength: Int?
    @Option(name: .long, help: "Vocabulary size before padding (default 50257).")
    var vocabSize: Int?

    @Option(name: .flag(.tensorModelParallelSize), help: .flag(.tensorModelParallelSize)) var tensorModelParallelSize = 1
    @Option(name: .flag(.pipelineModelParallelSize), help: .flag(.pipelineModelParallelSize)) var pipelineModelParallelSize = 1
    @Option(name: .flag(.numLayersPerVirtualPipelineStage), help: .flag(.numLayersPerVirtualPipelineStage))
    var numLayersPerVirtualPipelineStage: Int?
    @Option(name: .flag(.dataParallelSize), help: .flag(.dataParallelSize, "Default: the cluster's devices / (TP x PP)."))
    var dataParallelSize: Int?
    @Option(name: .flag(.microBatchSize), help: .flag(.microBatchSize)) var microBatchSize = 1
    @Option(name: .flag(.globalBatchSize), help: .flag(.globalBatchSize)) var globalBatchSize: Int = 0
    @Flag(name: .long) var sequenceParallel = false
    @Option(name: .long, help: "none, selective or full.")
    var recomputeGranularity: String = "none"
    @Flag(name: .flag(.useDistributedOptimizer), help: .flag(.useDistributedOptimizer)) var useDistributedOptimizer = false
    @Flag(name: .long) var bf16 = false
    @Flag(name: .long) var fp16 = false

    @Option(name: .long, help: "Cluster preset or JSON file.")
    var cluster: String = Self.defaultCluster
    static let (defaultCluster, defaultTrainTokens, defaultTop) = ("dgx-a100-80gb", 300e9, 5)
    @Option(name: .long, help: "Nodes (overrides the preset or file).")
    var nodes: Int?
    @Option(name: .long, help: "Tokens to train on, for the days-to-train figure.")
    var trainTokens: Double = Self.defaultTrainTokens

    @Flag(name: .long, help: "Rank the layouts that fit instead of planning one.")
    var search = false
    @Option(name: .long, help: "Layouts to show with --search.")
    var top = Self.defaultTop
    @Flag(name: .long, help: "Print JSON.")
    var json = false
    @Option(name: .long, help: "--cluster local: where this machine's kernel timings are cached (default ~/.cache/megatron-swift/).")
    var kernelTimingsFile: String?
    @Option(name: .long, help: "With --search: write an SVG of the best layouts' time per iteration and memory per device.")
    var plot: String?
    @OptionGroup var software: PlanSoftwareFlags
    @Flag(name: .long, help: "Print the published runs the time model is checked against, predicted beside published.")
    var publishedRuns = false

    func validate() throws {
        if publishedRuns { try checkPublishedRunsAlone() }
        guard publishedRuns || globalBatchSize >= 1 else { throw ValidationError("--global-batch-size must be at least 1") }
        guard microBatchSize >= 1 else { throw ValidationError("--micro-batch-size must be at least 1") }
        guard top >= 0 else { throw ValidationError("--top must not be negative") }
        guard plot == nil || search else { throw ValidationError("--plot draws the layouts of --search; add --search") }
        if cluster == "local" { try software.checkLocal() }
        try ValueRange.positive.check(trainTokens, flag: "--train-tokens")
    }

    /// `--published-runs` takes only `--json`: each row brings its own model, layout, software and
    /// cluster, so any other flag would be silently ignored.
    private func checkPublishedRunsAlone() throws {
        let given = [model != nil, numLayers != nil, hiddenSize != nil, numAttentionHeads != nil, seqLength != nil,
                     vocabSize != nil, tensorModelParallelSize != 1, pipelineModelParallelSize != 1,
                     numLayersPerVirtualPipelineStage != nil, dataParallelSize != nil, microBatchSize != 1,
                     globalBatchSize != 0, sequenceParallel, recomputeGranularity != "none", useDistributedOptimizer,
                     bf16, fp16, cluster != Self.defaultCluster, nodes != nil, trainTokens != Self.defaultTrainTokens, search,
                     top != Self.defaultTop,
                     kernelTimingsFile != nil, plot != nil, !software.isDefault]
        if given.contains(true) {
            throw ValidationError("--published-runs takes no other flag but --json: each run brings its own model, layout and cluster")
        }
    }

    func run() throws {
        if publishedRuns {
            print(json ? try PublishedRunsReport.json() : try PublishedRunsReport.table())
            return
        }
        let config = try modelConfig()
        var cluster = try clusterSpec()
        if let nodes {
            guard nodes >= 1 else { throw ValidationError("--nodes must be at least 1") }
            cluster.nodes = nodes
        }
        guard !(bf16 && fp16) else { throw ValidationError("give at most one of --bf16 and --fp16") }
        let precision: MemoryModel.Precision = bf16 ? .bf16 : fp16 ? .fp16 : .fp32
        try software.check(cluster: cluster, search: search, distributedOptimizer: useDistributedOptimizer)
        if search {
            var flags = TrainingLayout()
            software.apply(to: &flags)
            let result = LayoutSearch(config: config, cluster: cluster, globalBatchSize: globalBatchSize,
                                      precision: precision, distributedOptimizer: useDistributedOptimizer ? true : nil,
                                      software: flags.software)
            print(json ? try PlanReport.searchJSON(result, top: top) : PlanReport.searchText(result, top: top, config: config, cluster: cluster))
            if let plot {
                let title = "\(fixed(CostModel.parameters(config) / 1e9, 2))B parameters on \(cluster.devices) devices "
                    + "(\(cluster.name) x \(cluster.nodes)), global batch \(globalBatchSize), \(precision.rawValue)"
                let svg = LayoutPlot.svg(Array(result.ranked.prefix(max(top, 1))), title: title, deviceMemory: cluster.memoryBytes)
                try AtomicFile.write(Array(svg.utf8), to: plot)
            }
            return
        }
        let layout = try trainingLayout(config: config, cluster: cluster, precision: precision)
        let estimate = try Planner.estimate(config: config, layout: layout, cluster: cluster)
        let advice = try FitAdvice(config: config, layout: layout, cluster: cluster)
        print(json ? try PlanReport.json(estimate, trainTokens: trainTokens, advice: advice)
                   : PlanReport.text(estimate, config: config, layout: layout, cluster: cluster, trainTokens: trainTokens)
                     + (advice.map { "\n" + PlanReport.adviceText($0) } ?? ""))
    }

    func modelConfig() throws -> GPTConfig {
        let flags = [numLayers, hiddenSize, numAttentionHeads, seqLength]
        if let model {
            guard let preset = ModelPreset(rawValue: model) else {
                throw ValidationError("unknown --model \(model) (known: \(ModelPreset.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            var config = preset.config
            if let numLayers { config.numLayers = numLayers }
            if let hiddenSize { config.hiddenSize = hiddenSize }
            if let numAttentionHeads { config.numAttentionHeads = numAttentionHeads }
            if let seqLength { config.maxPositionEmbeddings = seqLength }
            if let vocabSize { config.vocabSize = vocabSize }
            try config.validate()
            return config
        }
        guard flags.allSatisfy({ $0 != nil }) else {
            throw ValidationError("give --model PRESET, or --num-layers, --hidden-size, --num-attention-heads and --seq-length")
        }
        let config = GPTConfig(numLayers: numLayers!, hiddenSize: hiddenSize!, numAttentionHeads: numAttentionHeads!,
                               maxPositionEmbeddings: seqLength!, vocabSize: vocabSize ?? 50257)
        try config.validate()
        return config
    }

    func clusterSpec() throws -> ClusterSpec {
        if cluster == "local" {  // as many rank threads as the layout has ranks, as `megatron train` starts
            let ranks = tensorModelParallelSize * pipelineModelParallelSize * (dataParallelSize ?? 1)
            let precision: ComputePrecision = bf16 ? .bf16 : fp16 ? .fp16 : .fp32
            let file = try kernelTimingsFile
                ?? Self.defaultTimingsFile(name: LocalCluster.timingsFileName(ranks: ranks, precision: precision))
            return try LocalCluster.measure(ranks: ranks, precision: precision, cacheFile: file) { printError("> " + $0) }
        }
        if let preset = ClusterSpec.presets[cluster] { return preset }
        guard cluster.hasSuffix(".json") else {
            throw ValidationError("unknown --cluster \(cluster) (presets: \(ClusterSpec.presets.keys.sorted().joined(separator: ", ")), local, or a .json file)")
        }
        let bytes = try MappedFile.read(path: cluster)
        return try ClusterSpec(json: String(decoding: bytes, as: UTF8.self), source: cluster)
    }

    /// `~/.cache/megatron-swift/NAME` (`$XDG_CACHE_HOME` when set), its folder created.
    static func defaultTimingsFile(name: String) throws -> String {
        func variable(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
        let cache = variable("XDG_CACHE_HOME") ?? ((variable("HOME") ?? ".") + "/.cache")
        let folder = cache + "/megatron-swift"
        try Directory.create(folder)
        return folder + "/" + name
    }

    func trainingLayout(config: GPTConfig, cluster: ClusterSpec,
                        precision: MemoryModel.Precision) throws -> TrainingLayout {
        var layout = TrainingLayout()
        layout.tensorParallel = tensorModelParallelSize
        layout.pipelineParallel = pipelineModelParallelSize
        guard tensorModelParallelSize >= 1, pipelineModelParallelSize >= 1 else {
            throw ValidationError("parallel sizes must be at least 1")
        }
        if let dataParallelSize {
            layout.dataParallel = dataParallelSize
        } else {
            let modelParallel = tensorModelParallelSize * pipelineModelParallelSize
            guard cluster.devices % modelParallel == 0 else {
                throw ValidationError("TP x PP = \(modelParallel) does not divide the cluster's \(cluster.devices) devices; give --data-parallel-size")
            }
            layout.dataParallel = cluster.devices / modelParallel
        }
        if let perVirtual = numLayersPerVirtualPipelineStage {
            let perStage = config.numLayers / pipelineModelParallelSize
            guard perVirtual >= 1, perStage % perVirtual == 0 else {
                throw ValidationError("--num-layers-per-virtual-pipeline-stage \(perVirtual) does not divide the \(perStage) layers of a stage")
            }
            layout.virtualStages = perStage / perVirtual
        }
        layout.microBatchSize = microBatchSize
        layout.globalBatchSize = globalBatchSize
        layout.sequenceParallel = sequenceParallel
        guard let recompute = CostModel.Recompute(rawValue: recomputeGranularity) else {
            throw ValidationError("--recompute-granularity must be none, selective or full")
        }
        layout.recompute = recompute
        layout.distributedOptimizer = useDistributedOptimizer
        layout.precision = precision
        software.apply(to: &layout)
        return layout
    }
}
