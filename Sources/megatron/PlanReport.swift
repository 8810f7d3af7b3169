import Models
import Planner
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What `megatron plan` prints.
enum PlanReport {
    static func gib(_ bytes: Double) -> String { fixed(bytes / 1_073_741_824, 1) + " GiB" }

    static func layoutLine(_ layout: TrainingLayout) -> String {
        "TP \(layout.tensorParallel) x PP \(layout.pipelineParallel)"
            + (layout.virtualStages > 1 ? " (v \(layout.virtualStages))" : "")
            + " x DP \(layout.dataParallel), micro-batch \(layout.microBatchSize), recompute \(layout.recompute.rawValue)"
            + (layout.sequenceParallel ? ", SP" : "") + (layout.distributedOptimizer ? ", dist-opt" : "")
    }

    /// The software the time is predicted for: this binary's measured kernels on `--cluster
    /// local`, else Megatron-LM's flags that differ from its defaults.
    static func softwareLine(_ layout: TrainingLayout, cluster: ClusterSpec) -> String {
        if cluster.kernelTimings != nil { return "this binary's kernels, as measured on this machine" }
        let flags = layout.software.flags
        return flags.isEmpty ? "Megatron-LM's defaults (fused kernels, gradient-accumulation fusion, pipeline scatter-gather, no DP overlap)"
                             : flags.joined(separator: " ")
    }

    static func text(_ e: PlanEstimate, config: GPTConfig, layout: TrainingLayout, cluster: ClusterSpec,
                     trainTokens: Double) -> String {
        let stages = layout.isUneven ? (try? layout.stageLayers(config)).map {
            "\n             layers per stage: first \($0.first), middle \($0.middle), last \($0.last)"
        } ?? "" : ""
        return """
        model        \(fixed(e.parameters / 1e9, 2))B parameters (\(config.numLayers) layers, hidden \(config.hiddenSize), \(config.numAttentionHeads) heads, seq \(config.maxPositionEmbeddings), vocab \(config.paddedVocabSize))
        layout       \(layoutLine(layout)), \(layout.precision.rawValue)
                     \(e.devices) devices on \(cluster.name) x \(cluster.nodes) nodes; global batch \(layout.globalBatchSize) = \(e.microBatches) micro-batches per pipeline\(stages)
        software     \(softwareLine(layout, cluster: cluster))
        memory       \(gib(e.memoryPerDeviceBytes)) per device (weights \(gib(e.weightBytesPerDevice)), gradients \(gib(e.gradientBytesPerDevice)), optimizer \(gib(e.optimizerBytesPerDevice)), activations \(gib(e.activationBytesPerDevice))) of \(gib(cluster.memoryBytes)): \(e.fits ? "fits" : "DOES NOT FIT")\(e.processBytes > 0 ? ", plus \(gib(e.processBytes)) per process" : "")
        FLOPs        \(scientific(e.modelFLOPsPerIteration)) model, \(scientific(e.hardwareFLOPsPerIteration)) hardware per iteration
        bubble       \(fixed(e.bubbleFraction * 100, 1))% ((p-1)/(v m))
        iteration    \(fixed(e.iterationSeconds, 3)) s = compute \(fixed(e.computeSeconds, 3)) + bubble \(fixed(e.bubbleSeconds, 3)) + TP \(fixed(e.tensorParallelSeconds, 3)) + PP \(fixed(e.pipelineParallelSeconds, 3)) + DP \(fixed(e.dataParallelSeconds, 3)) + optimizer \(fixed(e.optimizerSeconds, 3))
        throughput   \(fixed(e.flopsPerDevice / 1e12, 1)) TFLOP/s per device, MFU \(fixed(e.mfu * 100, 1))%, \(fixed(e.tokensPerSecond, 0)) tokens/s
        train        \(fixed(e.daysToTrain(tokens: trainTokens), 1)) days for \(scientific(trainTokens)) tokens
        """
    }

    struct Entry: Codable {
        var params: Double
        var params_per_device: Double
        var memory_per_device_bytes: Double
        var process_bytes: Double
        var state_bytes_per_device: Double
        var weight_bytes_per_device: Double
        var gradient_bytes_per_device: Double
        var optimizer_bytes_per_device: Double
        var activation_bytes_per_device: Double
        var fits: Bool
        /// When it does not fit: bytes per device beyond the device's memory, and the changes
        /// that would fit (fastest first).
        var excess_bytes: Double?
        var fits_with: [String]?
        var flops_per_iteration: Double
        var model_flops_per_iteration: Double
        var micro_batches: Int
        var bubble_fraction: Double
        var iteration_time_s: Double
        var compute_s: Double
        var bubble_s: Double
        var tp_communication_s: Double
        var pp_communication_s: Double
        var dp_communication_s: Double
        var optimizer_s: Double
        var tflops_per_device: Double
        var mfu: Double
        var tokens_per_s: Double
        var days_to_train: Double

        init(_ e: PlanEstimate, trainTokens: Double) {
            params = e.parameters
            params_per_device = e.parametersPerDevice
            memory_per_device_bytes = e.memoryPerDeviceBytes
            process_bytes = e.processBytes
            state_bytes_per_device = e.stateBytesPerDevice
            weight_bytes_per_device = e.weightBytesPerDevice
            gradient_bytes_per_device = e.gradientBytesPerDevice
            optimizer_bytes_per_device = e.optimizerBytesPerDevice
            activation_bytes_per_device = e.activationBytesPerDevice
            fits = e.fits
            flops_per_iteration = e.hardwareFLOPsPerIteration
            model_flops_per_iteration = e.modelFLOPsPerIteration
            micro_batches = e.microBatches
            bubble_fraction = e.bubbleFraction
            iteration_time_s = e.iterationSeconds
            compute_s = e.computeSeconds
            bubble_s = e.bubbleSeconds
            tp_communication_s = e.tensorParallelSeconds
            pp_communication_s = e.pipelineParallelSeconds
            dp_communication_s = e.dataParallelSeconds
            optimizer_s = e.optimizerSeconds
            tflops_per_device = e.flopsPerDevice / 1e12
            mfu = e.mfu
            tokens_per_s = e.tokensPerSecond
            days_to_train = e.daysToTrain(tokens: trainTokens)
        }
    }

    static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func json(_ e: PlanEstimate, trainTokens: Double, advice: FitAdvice? = nil) throws -> String {
        var entry = Entry(e, trainTokens: trainTokens)
        entry.excess_bytes = advice?.excessBytes
        entry.fits_with = advice?.alternatives.map(\.change)
        return try encode(entry)
    }

    /// For a layout that does not fit: by how much, and the changes that would fit (the five fastest).
    static func adviceText(_ advice: FitAdvice) -> String {
        var lines = ["does not fit by \(gib(advice.excessBytes)) per device"]
        if advice.alternatives.isEmpty {
            lines.append("no change of up to three of recomputation, distributed optimizer, SP, micro-batch, TP and PP "
                         + "fits; try `--search` or more nodes")
        }
        for (change, plan) in advice.alternatives.prefix(5) {
            lines.append("  fits with \(change): \(gib(plan.memoryPerDeviceBytes)) per device, \(fixed(plan.iterationSeconds, 3)) s/iter")
        }
        return lines.joined(separator: "\n")
    }

    struct SearchEntry: Codable {
        var tensor_model_parallel_size: Int
        var pipeline_model_parallel_size: Int
        var virtual_stages: Int
        var data_parallel_size: Int
        var micro_batch_size: Int
        var recompute_granularity: String
        var sequence_parallel: Bool
        var use_distributed_optimizer: Bool
        var iteration_time_s: Double
        var compute_s: Double
        var bubble_s: Double
        var tp_communication_s: Double
        var pp_communication_s: Double
        var dp_communication_s: Double
        var optimizer_s: Double
        var memory_per_device_bytes: Double
        var weight_bytes_per_device: Double
        var gradient_bytes_per_device: Double
        var optimizer_bytes_per_device: Double
        var activation_bytes_per_device: Double
        var mfu: Double
    }

    static func searchJSON(_ result: LayoutSearch, top: Int) throws -> String {
        try encode(result.ranked.prefix(top).map { c in
            SearchEntry(tensor_model_parallel_size: c.layout.tensorParallel,
                        pipeline_model_parallel_size: c.layout.pipelineParallel,
                        virtual_stages: c.layout.virtualStages, data_parallel_size: c.layout.dataParallel,
                        micro_batch_size: c.layout.microBatchSize, recompute_granularity: c.layout.recompute.rawValue,
                        sequence_parallel: c.layout.sequenceParallel,
                        use_distributed_optimizer: c.layout.distributedOptimizer,
                        iteration_time_s: c.estimate.iterationSeconds, compute_s: c.estimate.computeSeconds,
                        bubble_s: c.estimate.bubbleSeconds, tp_communication_s: c.estimate.tensorParallelSeconds,
                        pp_communication_s: c.estimate.pipelineParallelSeconds,
                        dp_communication_s: c.estimate.dataParallelSeconds, optimizer_s: c.estimate.optimizerSeconds,
                        memory_per_device_bytes: c.estimate.memoryPerDeviceBytes,
                        weight_bytes_per_device: c.estimate.weightBytesPerDevice,
                        gradient_bytes_per_device: c.estimate.gradientBytesPerDevice,
                        optimizer_bytes_per_device: c.estimate.optimizerBytesPerDevice,
                        activation_bytes_per_device: c.estimate.activationBytesPerDevice, mfu: c.estimate.mfu)
        })
    }

    static func searchText(_ result: LayoutSearch, top: Int, config: GPTConfig, cluster: ClusterSpec) -> String {
        var lines = ["\(result.considered) layouts of \(fixed(CostModel.parameters(config) / 1e9, 2))B parameters on "
                     + "\(cluster.devices) devices (\(cluster.name) x \(cluster.nodes)): \(result.ranked.count) fit, "
                     + "\(result.tooLarge.count) need more than \(gib(cluster.memoryBytes)) per device"]
        guard let best = result.ranked.first else {
            if let smallest = result.tooLarge.min(by: { $0.estimate.memoryPerDeviceBytes < $1.estimate.memoryPerDeviceBytes }) {
                lines.append("nothing fits; the smallest needs \(gib(smallest.estimate.memoryPerDeviceBytes)): \(layoutLine(smallest.layout))")
            }
            return lines.joined(separator: "\n")
        }
        for (rank, candidate) in result.ranked.prefix(top).enumerated() {
            let e = candidate.estimate
            let why = rank == 0 ? "best" : "slower: " + LayoutSearch.reasons(e, comparedTo: best.estimate)
            lines.append("\(rank + 1). \(fixed(e.iterationSeconds, 3)) s/iter, MFU \(fixed(e.mfu * 100, 1))%, "
                         + "\(gib(e.memoryPerDeviceBytes)): \(layoutLine(candidate.layout)) [\(why)]")
        }
        lines.append(breakdown(result.ranked.prefix(top).map(\.estimate)))
        if let fastest = result.tooLarge.first, fastest.estimate.iterationSeconds < best.estimate.iterationSeconds {
            lines.append("faster but too large: \(fixed(fastest.estimate.iterationSeconds, 3)) s/iter needs "
                         + "\(gib(fastest.estimate.memoryPerDeviceBytes)): \(layoutLine(fastest.layout))")
        }
        return lines.joined(separator: "\n")
    }

    /// The parts of the layouts' iterations and memory side by side, a column per layout.
    static func breakdown(_ estimates: [PlanEstimate]) -> String {
        let rows: [(String, (PlanEstimate) -> String)] = [
            ("compute s", { fixed($0.computeSeconds, 3) }), ("bubble s", { fixed($0.bubbleSeconds, 3) }),
            ("TP s", { fixed($0.tensorParallelSeconds, 3) }), ("PP s", { fixed($0.pipelineParallelSeconds, 3) }),
            ("DP s", { fixed($0.dataParallelSeconds, 3) }), ("optimizer s", { fixed($0.optimizerSeconds, 3) }),
            ("iteration s", { fixed($0.iterationSeconds, 3) }),
            ("weights GiB", { fixed($0.weightBytesPerDevice / 1_073_741_824, 2) }),
            ("gradients GiB", { fixed($0.gradientBytesPerDevice / 1_073_741_824, 2) }),
            ("optimizer GiB", { fixed($0.optimizerBytesPerDevice / 1_073_741_824, 2) }),
            ("activations GiB", { fixed($0.activationBytesPerDevice / 1_073_741_824, 2) }),
            ("memory GiB", { fixed($0.memoryPerDeviceBytes / 1_073_741_824, 2) }),
        ]
        let header = ["breakdown"] + estimates.indices.map { "#\($0 + 1)" }
        let table = [header] + rows.map { name, value in [name] + estimates.map(value) }
        let widths = (0..<header.count).map { column in table.map { $0[column].count }.max() ?? 0 }
        return table.map { row in
            row.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return column == 0 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
