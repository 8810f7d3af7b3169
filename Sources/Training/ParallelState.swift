import Distributed

/// The communicators of one rank in a TP x DP layout (pipeline parallelism comes later): the
/// world, this rank's tensor-parallel group and its data-parallel group, built from Megatron's
/// rank order.
public struct ParallelState {
    public let world: Communicator?
    public let grid: RankGrid
    public let tensor: Communicator?
    public let data: Communicator?

    /// One rank, no communication.
    public static var single: ParallelState {
        ParallelState(world: nil, grid: try! RankGrid(world: 1, tensorParallel: 1, pipelineParallel: 1), tensor: nil, data: nil)
    }

    init(world: Communicator?, grid: RankGrid, tensor: Communicator?, data: Communicator?) {
        self.world = world
        self.grid = grid
        self.tensor = tensor
        self.data = data
    }

    /// Splits `world` into tensor- and data-parallel groups (collective over the world).
    public init(world: Communicator, tensorParallel: Int) throws(LayoutError) {
        grid = try RankGrid(world: world.size, tensorParallel: tensorParallel, pipelineParallel: 1)
        let c = grid.coordinates(of: world.rank)
        self.world = world
        tensor = world.split(color: c.dp + grid.dataParallel * c.pp, key: c.tp)
        data = world.split(color: c.tp + grid.tensorParallel * c.pp, key: c.dp)
    }

    public var tensorRank: Int { tensor?.rank ?? 0 }
    public var dataRank: Int { data?.rank ?? 0 }
    public var dataParallel: Int { grid.dataParallel }
    /// Whether this rank writes logs and shared files (global rank 0).
    public var isFirst: Bool { (world?.rank ?? 0) == 0 }
}
