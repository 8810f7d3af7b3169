import Dashboard
import Distributed
import FileSupport
import Kernels
import Measurement
import Models
import Planner
import Training
#if canImport(Glibc)
import Glibc
#endif

/// What `megatron train` gives the dashboard: the metrics file's header record (written when a
/// run starts or resumes) and, with `--dashboard-port`, the page served from global rank 0.
enum TrainingDashboard {
    /// The header record: the settings as given, the model, the parallel layout (which rank
    /// holds which layers) and the planner's prediction for this run on this machine
    /// (`processBytes`: the process's resident memory before the run allocated anything;
    /// `peakFLOPs`: the GEMM peak the log measured).
    static func header(trainer: Trainer, processBytes: Double, peakFLOPs: Double) -> [(key: String, value: JSONValue)] {
        let config = trainer.config, model = trainer.model.config
        return [
            ("record", .string("header")), ("started_at", .string(isoTime())),
            ("start_iteration", .number(Double(trainer.iteration))),
            ("model", .object([("type", .string(config.modelType.rawValue)),
                               ("parameters", .number(Double(trainer.model.layout.totalCount))),
                               ("layers", .number(Double(model.numLayers))), ("hidden_size", .number(Double(model.hiddenSize))),
                               ("heads", .number(Double(model.numAttentionHeads))), ("precision", .string(config.precision.rawValue)),
                               ("device", .string(config.device.rawValue))])),
            ("settings", config.arguments),
            ("layout", layout(config: config, grid: trainer.parallel.grid)),
            ("prediction", prediction(config: config, model: model, dataParallel: trainer.parallel.dataParallel,
                                      processBytes: processBytes, peakFLOPs: peakFLOPs)),
        ]
    }

    /// `{"tensor_parallel", "pipeline_parallel", "data_parallel", "virtual_stages", "num_layers",
    /// "ranks": [{"rank", "tp", "pp", "dp", "layers"}]}`, layers as ranges ("0-1, 4-5").
    static func layout(config: TrainingConfig, grid: RankGrid) -> JSONValue {
        let chunks = config.virtualPipelineChunks
        let ranks: [JSONValue] = (0..<grid.world).map { rank in
            let c = grid.coordinates(of: rank)
            let part = try? GPTPipelinePart(numLayers: config.numLayers, stages: grid.pipelineParallel, stage: c.pp, chunks: chunks)
            let layers = part?.chunkLayers.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound - 1)" }
                .joined(separator: ", ") ?? "?"
            return .object([("rank", .number(Double(rank))), ("tp", .number(Double(c.tp))), ("pp", .number(Double(c.pp))),
                            ("dp", .number(Double(c.dp))), ("layers", .string(layers))])
        }
        return .object([("tensor_parallel", .number(Double(grid.tensorParallel))),
                        ("pipeline_parallel", .number(Double(grid.pipelineParallel))),
                        ("data_parallel", .number(Double(grid.dataParallel))), ("virtual_stages", .number(Double(chunks))),
                        ("num_layers", .number(Double(config.numLayers))), ("ranks", .array(ranks))])
    }

    /// `megatron plan --cluster local`'s time per iteration and the process's peak memory for
    /// this run, from this machine's cached kernel timings; without them (no `plan --cluster
    /// local` run here yet) only a note saying so: calibrating would delay the run by a minute.
    static func prediction(config: TrainingConfig, model: GPTConfig, dataParallel: Int, processBytes: Double,
                           peakFLOPs: Double) -> JSONValue {
        let ranks = config.tensorModelParallelSize * config.pipelineModelParallelSize * dataParallel
        let name = LocalCluster.timingsFileName(ranks: ranks, precision: config.precision)
        guard config.device == .cpu, let file = try? PlanCommand.defaultTimingsFile(name: name),
              let cluster = LocalCluster.cached(ranks: ranks, precision: config.precision, cacheFile: file,
                                                machinePeak: peakFLOPs, processBytes: processBytes) else {
            let reason = config.device == .cpu ? "no kernel timings of this machine cached yet: run `megatron plan --cluster local` once"
                                               : "the planner models this machine's CPU, not a GPU"
            return .object([("source", .string("no prediction (\(reason))"))])
        }
        var planned = model
        planned.maxPositionEmbeddings = config.seqLength  // the planner's sequence length
        var layout = TrainingLayout()
        layout.tensorParallel = config.tensorModelParallelSize
        layout.pipelineParallel = config.pipelineModelParallelSize
        layout.dataParallel = dataParallel
        layout.virtualStages = config.virtualPipelineChunks
        layout.microBatchSize = config.microBatchSize
        layout.globalBatchSize = config.globalBatchSize
        layout.sequenceParallel = config.usesSequenceParallel
        layout.recompute = CostModel.Recompute(rawValue: config.recomputation.granularity.rawValue) ?? .none
        layout.distributedOptimizer = config.useDistributedOptimizer
        layout.precision = MemoryModel.Precision(rawValue: config.precision.rawValue) ?? .fp32
        guard let estimate = try? Planner.estimate(config: planned, layout: layout, cluster: cluster) else {
            return .object([("source", .string("no prediction (the planner does not model this layout)"))])
        }
        return .object([
            ("ms_per_iter", .number(estimate.iterationSeconds * 1000)),
            ("global_batch_size", .number(Double(config.globalBatchSize))),
            ("memory_bytes", .number(Double(ranks) * estimate.memoryPerDeviceBytes + estimate.processBytes)),
            ("source", .string("megatron plan --cluster local, kernel timings from \(file)")),
        ])
    }

    /// Serves the dashboard of `metricsFile` from this process (global rank 0) while it trains;
    /// returns the page's address. `status` tells the page where the run is.
    static func start(config: TrainingConfig, metricsFile: String, status: @escaping @Sendable () -> String) throws -> String {
        let server = DashboardServer(runs: DashboardRuns(paths: [metricsFile], title: "megatron train: \(metricsFile)"),
                                     status: status)
        return try DashboardService.start(server, host: config.dashboardHost, port: config.dashboardPort ?? 0)
    }

    private static func isoTime() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
