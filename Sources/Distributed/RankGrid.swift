/// Megatron's rank layout for `world = TP x DP x PP`, tensor-parallel ranks varying fastest:
/// `global = tp + TP * (dp + DP * pp)`. TP groups are consecutive ranks (inside a node), DP groups
/// stride by TP, PP groups by TP x DP.
public struct RankGrid: Sendable, Equatable {
    public let tensorParallel: Int
    public let dataParallel: Int
    public let pipelineParallel: Int

    /// Checks that the sizes are positive and multiply to `world`.
    public init(world: Int, tensorParallel: Int, pipelineParallel: Int) throws(LayoutError) {
        guard tensorParallel >= 1, pipelineParallel >= 1 else {
            throw .invalid("--tensor-model-parallel-size and --pipeline-model-parallel-size must be at least 1")
        }
        guard world % (tensorParallel * pipelineParallel) == 0 else {
            throw .invalid("the world of \(world) ranks is not divisible by TP \(tensorParallel) x PP \(pipelineParallel)")
        }
        self.tensorParallel = tensorParallel
        self.pipelineParallel = pipelineParallel
        dataParallel = world / (tensorParallel * pipelineParallel)
    }

    public var world: Int { tensorParallel * dataParallel * pipelineParallel }

    /// The (tp, dp, pp) coordinates of a global rank.
    public func coordinates(of rank: Int) -> (tp: Int, dp: Int, pp: Int) {
        (rank % tensorParallel, (rank / tensorParallel) % dataParallel, rank / (tensorParallel * dataParallel))
    }

    /// The global rank at coordinates.
    public func rank(tp: Int, dp: Int, pp: Int) -> Int {
        tp + tensorParallel * (dp + dataParallel * pp)
    }

    /// The tensor-parallel group of `rank` (same dp and pp), in tp order.
    public func tensorGroup(of rank: Int) -> [Int] {
        let c = coordinates(of: rank)
        return (0..<tensorParallel).map { self.rank(tp: $0, dp: c.dp, pp: c.pp) }
    }

    /// The data-parallel group of `rank` (same tp and pp), in dp order.
    public func dataGroup(of rank: Int) -> [Int] {
        let c = coordinates(of: rank)
        return (0..<dataParallel).map { self.rank(tp: c.tp, dp: $0, pp: c.pp) }
    }

    /// The pipeline group of `rank` (same tp and dp), in stage order.
    public func pipelineGroup(of rank: Int) -> [Int] {
        let c = coordinates(of: rank)
        return (0..<pipelineParallel).map { self.rank(tp: c.tp, dp: c.dp, pp: $0) }
    }

    /// The ranks that hold the tied word embedding: the first and last stage of `rank`'s
    /// pipeline (one rank when there is a single stage).
    public func embeddingGroup(of rank: Int) -> [Int] {
        let pipeline = pipelineGroup(of: rank)
        return pipeline.count == 1 ? pipeline : [pipeline.first!, pipeline.last!]
    }

    /// Checks that the model and batch divide over the layout (before any work starts).
    public func validate(heads: Int, hidden: Int, paddedVocabulary: Int, layers: Int,
                         globalBatchSize: Int, microBatchSize: Int) throws(LayoutError) {
        guard heads % tensorParallel == 0 else {
            throw .invalid("--tensor-model-parallel-size \(tensorParallel) does not divide --num-attention-heads \(heads)")
        }
        guard hidden % tensorParallel == 0 else {
            throw .invalid("--tensor-model-parallel-size \(tensorParallel) does not divide --hidden-size \(hidden)")
        }
        guard paddedVocabulary % tensorParallel == 0 else {
            throw .invalid("--tensor-model-parallel-size \(tensorParallel) does not divide the padded vocabulary \(paddedVocabulary)")
        }
        guard layers % pipelineParallel == 0 else {
            throw .invalid("--pipeline-model-parallel-size \(pipelineParallel) does not divide --num-layers \(layers)")
        }
        guard globalBatchSize % (microBatchSize * dataParallel) == 0 else {
            throw .invalid("--global-batch-size \(globalBatchSize) is not a multiple of --micro-batch-size \(microBatchSize) x data-parallel size \(dataParallel)")
        }
    }
}

/// A parallel layout that does not fit the world or the model.
public enum LayoutError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalid(String)
    public var description: String {
        switch self {
        case let .invalid(reason): reason
        }
    }
}
