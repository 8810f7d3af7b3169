import Models

/// Enumerates layouts of a model on a cluster and ranks those that fit by predicted time.
///
/// Candidates: TP dividing heads and hidden size and at most a node; PP dividing the layers;
/// DP the remaining devices (all of them are used); micro-batch sizes dividing the per-replica
/// batch; recomputation none, selective and full; sequence parallelism on whenever TP > 1;
/// interleaving (v = 2) when the stage's layers and micro-batches allow it; the distributed
/// optimizer as requested, or both ways when `distributedOptimizer` is nil; the software as given.
public struct LayoutSearch: Sendable {
    public struct Candidate: Sendable {
        public var layout: TrainingLayout
        public var estimate: PlanEstimate
    }

    /// Layouts that fit, fastest first.
    public var ranked: [Candidate] = []
    /// Layouts rejected for memory, fastest first.
    public var tooLarge: [Candidate] = []
    /// Number of layouts considered.
    public var considered = 0

    public init(config: GPTConfig, cluster: ClusterSpec, globalBatchSize: Int,
                precision: MemoryModel.Precision, distributedOptimizer: Bool?, software: SoftwareOptions = SoftwareOptions()) {
        let devices = cluster.devices
        let tensorSizes = (1...cluster.devicesPerNode).filter {
            config.numAttentionHeads % $0 == 0 && config.hiddenSize % $0 == 0 && devices % $0 == 0
        }
        for t in tensorSizes {
            for p in (1...config.numLayers) where config.numLayers % p == 0 && devices % (t * p) == 0 {
                let dp = devices / (t * p)
                guard globalBatchSize % dp == 0 else { continue }
                let perReplica = globalBatchSize / dp
                for b in (1...min(perReplica, 64)) where perReplica % b == 0 {
                    for recompute in CostModel.Recompute.allCases {
                        for zero in distributedOptimizer.map({ [$0] }) ?? [false, true] {
                            for v in [1, 2] {
                                var layout = TrainingLayout()
                                layout.tensorParallel = t
                                layout.pipelineParallel = p
                                layout.dataParallel = dp
                                layout.virtualStages = v
                                layout.microBatchSize = b
                                layout.globalBatchSize = globalBatchSize
                                layout.sequenceParallel = t > 1
                                layout.recompute = recompute
                                layout.distributedOptimizer = zero && dp > 1
                                layout.precision = precision
                                layout.software = software
                                if zero && dp == 1 && distributedOptimizer == nil { continue }
                                guard let estimate = try? Planner.estimate(config: config, layout: layout,
                                                                           cluster: cluster) else { continue }
                                considered += 1
                                let candidate = Candidate(layout: layout, estimate: estimate)
                                if estimate.fits { ranked.append(candidate) } else { tooLarge.append(candidate) }
                            }
                        }
                    }
                }
            }
        }
        ranked.sort(by: Self.faster)
        tooLarge.sort(by: Self.faster)
    }

    /// Faster first; layouts within 0.01% of each other in time: less memory first.
    static func faster(_ a: Candidate, _ b: Candidate) -> Bool {
        let ta = a.estimate.iterationSeconds, tb = b.estimate.iterationSeconds
        if abs(ta - tb) > 1e-4 * min(ta, tb) { return ta < tb }
        return a.estimate.memoryPerDeviceBytes < b.estimate.memoryPerDeviceBytes
    }

    /// Why `candidate` is slower than `best`: the parts of the iteration that grew most.
    public static func reasons(_ candidate: PlanEstimate, comparedTo best: PlanEstimate) -> String {
        let parts: [(String, Double)] = [
            ("compute/recomputation", candidate.computeSeconds - best.computeSeconds),
            ("pipeline bubble", candidate.bubbleSeconds - best.bubbleSeconds),
            ("TP communication", candidate.tensorParallelSeconds - best.tensorParallelSeconds),
            ("PP communication", candidate.pipelineParallelSeconds - best.pipelineParallelSeconds),
            ("DP communication", candidate.dataParallelSeconds - best.dataParallelSeconds),
            ("optimizer", candidate.optimizerSeconds - best.optimizerSeconds),
        ]
        let grown = parts.filter { $0.1 > 1e-4 * best.iterationSeconds }.sorted { $0.1 > $1.1 }.prefix(2)
        if grown.isEmpty {
            return candidate.memoryPerDeviceBytes > best.memoryPerDeviceBytes ? "as fast, more memory" : "as fast"
        }
        return grown.map { "\($0.0) +\(format($0.1)) s" }.joined(separator: ", ")
    }

    static func format(_ x: Double) -> String {
        let digits = x >= 10 ? 1 : x >= 1 ? 2 : 3
        let scale = [1.0, 10, 100, 1000][digits]
        return String((x * scale).rounded() / scale)
    }
}
