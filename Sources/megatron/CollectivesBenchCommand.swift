import ArgumentParser
import Distributed
import Measurement
import Training
#if canImport(Glibc)
import Glibc
#endif

/// `megatron bench collectives`: checks every communicator operation against its definition,
/// then times all-reduce (sum of Float32) over message sizes. Runs the thread backend with
/// `--ranks N`, or the Open MPI backend when started by `mpirun -np N`.
struct CollectivesBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collectives",
        abstract: "Check the communication backend and time all-reduce over 1-64 MB.",
        discussion: """
        Reports, as nccl-tests does, algorithm bandwidth (bytes / time) and bus bandwidth
        (algorithm bandwidth x 2 (n - 1) / n, what each rank's link carries in a ring all-reduce).
        Under mpirun the world is the launcher's; otherwise --ranks threads share this process.
        """)

    @Option(name: .long, help: "Rank threads (outside mpirun).")
    var ranks = 2

    @Option(name: .long, parsing: .upToNextOption, help: "Message sizes in MiB.")
    var sizes: [Double] = [1, 4, 16, 64]

    @Option(name: .long, help: "Timed all-reduces per size (after 2 untimed ones).")
    var iterations = 10

    @Flag(name: .long, help: "Only run the correctness check.")
    var checkOnly = false

    func validate() throws {
        guard (1...RankThreads.maximumRanks).contains(ranks) else {
            throw ValidationError("--ranks must be in 1...\(RankThreads.maximumRanks), got \(ranks)")
        }
        guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1, got \(iterations)") }
        for size in sizes { try ValueRange.positive.check(size, flag: "--sizes") }
        // Every rank thread holds its own message (under mpirun a process holds one, and --ranks is not used).
        if !checkOnly {
            let here = MPICommunicator.isLaunchedByMPI ? 1 : ranks
            try BenchMemory.check(bytes: (sizes.max() ?? 0) * 1_048_576 * Double(here), what: "--sizes on \(here) rank(s) of this process")
        }
    }

    func run() throws {
        let sizes = sizes, iterations = iterations, checkOnly = checkOnly
        let threadRanks = ranks
        try RankLauncher.run(worldSize: { mpiWorld in mpiWorld ?? threadRanks }) { world in
            guard let world else { throw ValidationError("collectives need at least 2 ranks") }
            let backend = world is MPICommunicator ? "open-mpi" : "threads"
            let failures = CommunicatorCheck.run(world)
            guard failures.isEmpty else {
                throw ValidationError("the \(backend) backend gave wrong results:\n" + failures.joined(separator: "\n"))
            }
            if world.rank == 0 { print("check: all operations of the \(backend) backend match their definitions on \(world.size) ranks") }
            if checkOnly { return }
            if world.rank == 0 { print("backend   ranks  size_MiB  time_ms  algbw_GB/s  busbw_GB/s") }
            for mebibytes in sizes {
                let seconds = Self.timeAllReduce(world, count: Int(mebibytes * 262_144), iterations: iterations)
                let bytes = mebibytes * 1_048_576
                let algorithm = bytes / seconds / 1e9
                let bus = algorithm * 2 * Double(world.size - 1) / Double(world.size)
                if world.rank == 0 {
                    print("\(backend.padding(to: 9)) \(String(world.size).padding(to: 6)) \(fixed(mebibytes, 1).padding(to: 9)) "
                        + "\(fixed(seconds * 1000, 3).padding(to: 8)) \(fixed(algorithm, 2).padding(to: 11)) \(fixed(bus, 2))")
                }
            }
        }
    }

    /// Mean seconds per all-reduce of `count` floats, the slowest rank's (all ranks return it).
    static func timeAllReduce(_ world: Communicator, count: Int, iterations: Int) -> Double {
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: Float(world.rank), count: count)
        for _ in 0..<2 { world.allReduce(buffer, count: count, operation: .sum) }
        world.barrier()
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<iterations { world.allReduce(buffer, count: count, operation: .sum) }
        let elapsed = milliseconds(clock.now - start) / 1000 / Double(iterations)
        return world.allReduce([elapsed], operation: .max)[0]
    }
}

extension String {
    /// The string left-aligned in `width` columns (longer strings are kept whole).
    func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
