import ArgumentParser
import Distributed
import Kernels
import Training
#if canImport(Glibc)
import Glibc
#endif

/// Starts the ranks of a parallel layout. Under `mpirun` (or srun) this process is one rank of
/// an Open MPI world; otherwise a layout of several ranks runs as threads of this process. Either
/// way each rank gets an equal share of the cores for its kernels and GEMMs, so that ranks
/// compute side by side instead of taking turns on one thread pool.
enum RankLauncher {
    /// Runs `body` on every rank of this process with the world communicator (nil for a single
    /// rank). `worldSize` gets the MPI world's size (nil outside mpirun) and returns the number of
    /// ranks the layout needs; under mpirun the two must agree.
    static func run(worldSize: (Int?) throws -> Int, _ body: @escaping @Sendable (Communicator?) throws -> Void) throws {
        if MPICommunicator.isLaunchedByMPI {
            let world = try MPICommunicator.world()
            do {
                let needed = try worldSize(world.size)
                guard needed == world.size else {
                    throw LayoutError.invalid("mpirun started \(world.size) ranks but the layout needs \(needed)")
                }
            } catch {
                // Every rank finds the same problem: rank 0 reports it, the others exit quietly.
                if world.rank == 0 { throw error }
                throw ExitCode.failure
            }
            // A launcher that binds each rank to its cores already shared them out.
            let bound = ThreadPool.availableCores < ThreadPool.onlineCores
            let threads = bound ? ThreadPool.defaultThreadCount() : RankThreads.threadsPerRank(ranksOnThisMachine: localRankCount ?? 1)
            setBLASThreadCount(threads)
            do {
                try RankThreads.withOwnPool(threads: threads) { try body(world.size == 1 ? nil : world) }
                world.flushSends()
            } catch {
                // The other ranks may be waiting in a collective for this one: stop the job.
                printError("rank \(world.rank): \(error)")
                if world.size > 1 { world.abort(code: 1) }
                throw ExitCode.failure
            }
            return
        }
        let ranks = try worldSize(nil)
        guard ranks > 1 else {
            try body(nil)
            return
        }
        _ = try RankThreads.run(size: ranks) { world in try body(world) }
    }

    /// Whether this process holds global rank 0: always outside mpirun (rank threads share the
    /// process); under an MPI launcher judged from the rank it announces, before MPI starts.
    static var isGlobalRankZero: Bool {
        guard MPICommunicator.isLaunchedByMPI else { return true }
        let rank = ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"].lazy.compactMap { (name: String) in getenv(name) }.first
        return rank.map { String(cString: $0) == "0" } ?? true
    }

    /// Ranks of this job on this node, as Open MPI announces it.
    static var localRankCount: Int? {
        getenv("OMPI_COMM_WORLD_LOCAL_SIZE").flatMap { Int(String(cString: $0)) }
    }
}
