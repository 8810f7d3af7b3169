import Models

/// For a layout that does not fit in device memory: by how much, and which changes of the layout
/// would make it fit: single changes, or where none does the pairs, then the triples of them
/// (each re-planned, fastest first).
public struct FitAdvice: Sendable {
    /// Bytes per device beyond the device's memory.
    public var excessBytes: Double
    /// The changes that fit: the flags to change, and the plan with them (fastest first).
    public var alternatives: [(change: String, estimate: PlanEstimate)]

    /// Nil when the layout fits.
    public init?(config: GPTConfig, layout: TrainingLayout, cluster: ClusterSpec) throws(PlanError) {
        let estimate = try Planner.estimate(config: config, layout: layout, cluster: cluster)
        guard !estimate.fits else { return nil }
        excessBytes = estimate.memoryPerDeviceBytes - cluster.memoryBytes
        // Single changes of the layout; where none fits, pairs of them, then triples.
        var edits: [(change: String, edit: (inout TrainingLayout) -> Void)] = []
        for recompute in [CostModel.Recompute.selective, .full] where recompute != layout.recompute {
            edits.append(("--recompute-granularity \(recompute.rawValue)", { $0.recompute = recompute }))
        }
        if layout.dataParallel > 1 && !layout.distributedOptimizer {
            edits.append(("--use-distributed-optimizer", { $0.distributedOptimizer = true }))
        }
        if layout.tensorParallel > 1 && !layout.sequenceParallel {
            edits.append(("--sequence-parallel", { $0.sequenceParallel = true }))
        }
        var micro = layout.microBatchSize / 2
        while micro >= 1 {
            let size = micro
            edits.append(("--micro-batch-size \(size)", { $0.microBatchSize = size }))
            micro /= 2
        }
        // More model parallelism over the same devices (TP within a node, as the search keeps
        // it): data parallelism gives way.
        if layout.dataParallel % 2 == 0 && 2 * layout.tensorParallel <= cluster.devicesPerNode {
            edits.append(("--tensor-model-parallel-size \(2 * layout.tensorParallel)", {
                $0.tensorParallel *= 2
                $0.dataParallel /= 2
            }))
        }
        if layout.dataParallel % 2 == 0 {
            edits.append(("--pipeline-model-parallel-size \(2 * layout.pipelineParallel)", {
                $0.pipelineParallel *= 2
                $0.dataParallel /= 2
            }))
        }
        /// The index sets of `size` edits that touch different settings (increasing indices).
        func combinations(_ size: Int, from start: Int = 0) -> [[Int]] {
            guard size > 0 else { return [[]] }
            return (start..<edits.count).flatMap { first in combinations(size - 1, from: first + 1).map { [first] + $0 } }
        }
        alternatives = []
        for size in 1...3 where alternatives.isEmpty {
            for combination in combinations(size) {
                let flags = combination.map { edits[$0].change }
                // One value per flag (not two micro-batch sizes at once).
                guard Set(flags.map { $0.split(separator: " ")[0] }).count == flags.count else { continue }
                var changed = layout
                for index in combination { edits[index].edit(&changed) }
                guard let plan = try? Planner.estimate(config: config, layout: changed, cluster: cluster), plan.fits else { continue }
                alternatives.append((flags.joined(separator: " "), plan))
            }
        }
        alternatives.sort { $0.estimate.iterationSeconds < $1.estimate.iterationSeconds }
    }
}
