/// The communicators of one rank in a TP x DP x PP layout: the world, this rank's tensor-,
/// data- and pipeline-parallel groups and, on the first and last pipeline stage, the group that
/// sums the tied word embedding's gradients. Built from Megatron's rank order (`RankGrid`).
public struct ParallelState {
    public let world: Communicator?
    public let grid: RankGrid
    public let tensor: Communicator?
    public let data: Communicator?
    /// The stages of this rank's pipeline, in stage order (nil: one stage).
    public let pipeline: Communicator?
    /// The first and last stage of this rank's pipeline (nil on the other stages and with one stage).
    public let embedding: Communicator?

    /// One rank, no communication.
    public static var single: ParallelState {
        ParallelState(world: nil, grid: try! RankGrid(world: 1, tensorParallel: 1, pipelineParallel: 1),
                      tensor: nil, data: nil, pipeline: nil, embedding: nil)
    }

    init(world: Communicator?, grid: RankGrid, tensor: Communicator?, data: Communicator?,
         pipeline: Communicator?, embedding: Communicator?) {
        self.world = world
        self.grid = grid
        self.tensor = tensor
        self.data = data
        self.pipeline = pipeline
        self.embedding = embedding
    }

    /// Splits `world` into tensor-, data- and pipeline-parallel groups and the embedding group
    /// (collective over the world).
    public init(world: Communicator, tensorParallel: Int, pipelineParallel: Int = 1) throws(LayoutError) {
        grid = try RankGrid(world: world.size, tensorParallel: tensorParallel, pipelineParallel: pipelineParallel)
        let c = grid.coordinates(of: world.rank)
        let t = grid.tensorParallel, d = grid.dataParallel, p = grid.pipelineParallel
        self.world = world
        tensor = world.split(color: c.dp + d * c.pp, key: c.tp)
        data = world.split(color: c.tp + t * c.pp, key: c.dp)
        let pipelineGroup = world.split(color: c.tp + t * c.dp, key: c.pp)
        pipeline = p > 1 ? pipelineGroup : nil
        // Every rank takes part in the split; the middle stages get a group of their own and drop it.
        let holdsEmbedding = c.pp == 0 || c.pp == p - 1
        let embeddingGroup = world.split(color: holdsEmbedding ? c.tp + t * c.dp : t * d + world.rank, key: c.pp)
        embedding = p > 1 && holdsEmbedding ? embeddingGroup : nil
    }

    public var tensorRank: Int { tensor?.rank ?? 0 }
    public var dataRank: Int { data?.rank ?? 0 }
    public var pipelineRank: Int { pipeline?.rank ?? 0 }
    public var dataParallel: Int { grid.dataParallel }
    public var pipelineParallel: Int { grid.pipelineParallel }
    /// Whether this rank writes logs and shared files (global rank 0).
    public var isFirst: Bool { (world?.rank ?? 0) == 0 }
}
