/// The parallel layout of a run, `world = TP x DP x PP` (with `v` model chunks per pipeline
/// stage for the interleaved schedule), and Megatron's rank order over it, tensor-parallel ranks
/// varying fastest: `global = tp + TP * (dp + DP * pp)`. TP groups are consecutive ranks (inside
/// a node), DP groups stride by TP, PP groups by TP x DP.
///
/// The one source of the layout's rules: training (`ParallelState` builds its communicators from
/// the group functions here), the model, checkpoint conversion and the planner all validate a
/// layout through `validate(model:)` and `validate(batch:)`.
public struct RankGrid: Sendable, Equatable {
    public let tensorParallel: Int
    public let dataParallel: Int
    public let pipelineParallel: Int
    /// Model chunks per pipeline stage (`v`, interleaved 1F1B); 1 without interleaving.
    public let virtualStages: Int

    /// Checks that the sizes are positive and multiply to `world`.
    public init(world: Int, tensorParallel: Int, pipelineParallel: Int, virtualStages: Int = 1) throws(LayoutError) {
        guard tensorParallel >= 1, pipelineParallel >= 1 else {
            throw .invalid("--tensor-model-parallel-size and --pipeline-model-parallel-size must be at least 1")
        }
        guard world % (tensorParallel * pipelineParallel) == 0 else {
            throw .invalid("the world of \(world) ranks is not divisible by TP \(tensorParallel) x PP \(pipelineParallel)")
        }
        try self.init(tensorParallel: tensorParallel, dataParallel: world / (tensorParallel * pipelineParallel),
                      pipelineParallel: pipelineParallel, virtualStages: virtualStages)
    }

    /// A layout from its three sizes; each must be at least 1.
    public init(tensorParallel: Int, dataParallel: Int, pipelineParallel: Int, virtualStages: Int = 1) throws(LayoutError) {
        guard tensorParallel >= 1, dataParallel >= 1, pipelineParallel >= 1, virtualStages >= 1 else {
            throw .invalid("parallel sizes must be at least 1 (TP \(tensorParallel), DP \(dataParallel), PP \(pipelineParallel), v \(virtualStages))")
        }
        guard virtualStages == 1 || pipelineParallel > 1 else {
            throw .invalid("--num-layers-per-virtual-pipeline-stage needs --pipeline-model-parallel-size of at least 2")
        }
        self.tensorParallel = tensorParallel
        self.dataParallel = dataParallel
        self.pipelineParallel = pipelineParallel
        self.virtualStages = virtualStages
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

    /// Checks that a model of this shape divides over the layout: TP divides the heads, the
    /// hidden size and the padded vocabulary; PP x v divides the layers.
    public func validate(heads: Int, hidden: Int, paddedVocabulary: Int?, layers: Int) throws(LayoutError) {
        let t = tensorParallel, p = pipelineParallel, v = virtualStages
        guard heads % t == 0 else {
            throw .invalid("--tensor-model-parallel-size \(t) does not divide --num-attention-heads \(heads)")
        }
        guard hidden % t == 0 else {
            throw .invalid("--tensor-model-parallel-size \(t) does not divide --hidden-size \(hidden)")
        }
        if let paddedVocabulary, paddedVocabulary % t != 0 {
            throw .invalid("--tensor-model-parallel-size \(t) does not divide the padded vocabulary \(paddedVocabulary)")
        }
        guard layers % p == 0 else {
            throw .invalid("--pipeline-model-parallel-size \(p) does not divide --num-layers \(layers)")
        }
        guard layers % (p * v) == 0 else {
            throw .invalid("--num-layers \(layers) does not divide into \(p) pipeline stages x \(v) model chunks")
        }
    }

    /// Checks that a global batch divides into micro-batches over the data-parallel ranks (and,
    /// for the interleaved schedule, that the micro-batch count is a multiple of the stages).
    public func validate(globalBatchSize: Int, microBatchSize: Int) throws(LayoutError) {
        guard microBatchSize >= 1, globalBatchSize >= 1, globalBatchSize % (microBatchSize * dataParallel) == 0 else {
            throw .invalid("--global-batch-size \(globalBatchSize) is not a multiple of --micro-batch-size \(microBatchSize) x data-parallel size \(dataParallel)")
        }
        let microBatches = globalBatchSize / (microBatchSize * dataParallel)
        guard virtualStages == 1 || microBatches % pipelineParallel == 0 else {
            throw .invalid("the interleaved schedule needs the micro-batch count \(microBatches) (global batch \(globalBatchSize)) to be a multiple of --pipeline-model-parallel-size \(pipelineParallel)")
        }
    }

    /// Both checks above.
    public func validate(heads: Int, hidden: Int, paddedVocabulary: Int?, layers: Int,
                         globalBatchSize: Int, microBatchSize: Int) throws(LayoutError) {
        try validate(heads: heads, hidden: hidden, paddedVocabulary: paddedVocabulary, layers: layers)
        try validate(globalBatchSize: globalBatchSize, microBatchSize: microBatchSize)
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
