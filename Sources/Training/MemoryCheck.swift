#if canImport(Glibc)
import Glibc
#endif
import Distributed
import FileSupport
import Kernels
import Models

/// What the memory check needs to know of a run beyond its model and layout (`train`'s flags,
/// or `finetune`'s).
public struct MemoryCheckRun: Sendable {
    /// Samples per micro-batch and per global batch (`--micro-batch-size`, `--global-batch-size`).
    public var microBatchSize: Int
    public var globalBatchSize: Int
    /// Sequences each sample puts in the model (a multiple-choice task: its choices).
    public var sequencesPerSample = 1
    public var seqLength: Int
    /// Whether the position embedding is sized by the sequence length (`train` without
    /// `--max-position-embeddings`), so that a shorter one also shrinks the model.
    public var positionsFollowSeqLength = false
    public var distributedOptimizer = false
    public var recomputation = ActivationRecomputation.none
    public var precision = ComputePrecision.fp32
    public var sequenceParallel = false
    /// Whether the weights come from a checkpoint read whole (`--load`) instead of the seed.
    public var loadsCheckpoint = false

    public init(microBatchSize: Int, globalBatchSize: Int, seqLength: Int) {
        self.microBatchSize = microBatchSize
        self.globalBatchSize = globalBatchSize
        self.seqLength = seqLength
    }
}

extension MemoryCheckRun {
    /// `train`'s run.
    init(training: TrainingConfig) {
        self.init(microBatchSize: training.microBatchSize, globalBatchSize: training.globalBatchSize, seqLength: training.seqLength)
        positionsFollowSeqLength = training.maxPositionEmbeddings == nil
        distributedOptimizer = training.useDistributedOptimizer
        recomputation = training.recomputation
        precision = training.precision
        sequenceParallel = training.usesSequenceParallel
        loadsCheckpoint = training.load != nil
    }
}

extension MemoryRequirement {
    /// Ranks that share this machine's memory: every rank thread of this process, or under
    /// mpirun the local rank count Open MPI, MPICH or Slurm tell (1 when none does).
    public static func ranksOnThisMachine(_ parallel: ParallelState) -> Int {
        if let world = parallel.world, world is ThreadCommunicator { return world.size }
        for name in ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"] {
            if let value = getenv(name), let count = Int(String(cString: value)), count > 0 { return count }
        }
        return 1
    }

    /// `check` for `train`'s run.
    @discardableResult
    static func check(config: GPTConfig, training: TrainingConfig, layout: RankGrid, parallel: ParallelState,
                      available: Double? = SystemMemory.availableBytes()) throws(TrainingError) -> [MemoryRequirement] {
        try check(config: config, run: MemoryCheckRun(training: training), layout: layout, parallel: parallel, available: available)
    }

    /// Refuses a run whose ranks on this machine need more memory than it has available,
    /// before anything large is allocated; the error gives the figures and what would fit.
    /// Returns each pipeline stage's requirement for the run as configured.
    ///
    /// Every rank of the world calls it, and the ranks decide together: a rank that finds the
    /// run does not fit refuses with the figures, and every other rank refuses with it, instead of
    /// going on to wait for it in a collective. No rank allocates before all have measured.
    @discardableResult
    public static func check(config: GPTConfig, run: MemoryCheckRun, layout: RankGrid, parallel: ParallelState,
                             available: Double? = SystemMemory.availableBytes()) throws(TrainingError) -> [MemoryRequirement] {
        let verdict: Result<[MemoryRequirement], TrainingError>
        do throws(TrainingError) {
            verdict = .success(try checkThisRank(config: config, run: run, layout: layout, parallel: parallel, available: available))
        } catch {
            verdict = .failure(error)
        }
        if let world = parallel.world, world.size > 1 {
            var refusals: Float = if case .failure = verdict { 1 } else { 0 }
            world.allReduce(&refusals, count: 1, operation: .sum)
            if refusals > 0, case .success = verdict {
                throw .memory("\(Int(refusals)) other rank(s) found that this run does not fit in memory (see their error)")
            }
        }
        return try verdict.get()
    }

    /// `check`'s measure and decision on this rank alone.
    private static func checkThisRank(config: GPTConfig, run: MemoryCheckRun, layout: RankGrid, parallel: ParallelState,
                                      available: Double?) throws(TrainingError) -> [MemoryRequirement] {
        let threads = ThreadPool.current.threadCount
        let sequences = run.sequencesPerSample
        func need(microBatch: Int, seqLength: Int) -> (total: Double, busiest: MemoryRequirement, stages: [MemoryRequirement]) {
            var config = config
            if run.positionsFollowSeqLength { config.maxPositionEmbeddings = seqLength }
            let stages = (0..<layout.pipelineParallel).map {
                MemoryRequirement(config: config, layout: layout, stage: $0, microBatchSize: microBatch * sequences,
                                  globalBatchSize: run.globalBatchSize * sequences, seqLength: seqLength,
                                  distributedOptimizer: run.distributedOptimizer, threads: threads, recomputation: run.recomputation,
                                  precision: run.precision, sequenceParallel: run.sequenceParallel, loadsCheckpoint: run.loadsCheckpoint)
            }
            let busiest = stages.max { $0.peak < $1.peak }!
            let ranks = ranksOnThisMachine(parallel)
            // Rank threads: every (TP, DP) copy of every stage lives here; processes: the busiest stage per rank.
            let total = ranks == layout.world && parallel.world is ThreadCommunicator
                ? Double(layout.tensorParallel * layout.dataParallel) * stages.reduce(0) { $0 + $1.peak }
                : Double(ranks) * busiest.peak
            return (total, busiest, stages)
        }
        let (total, busiest, stages) = need(microBatch: run.microBatchSize, seqLength: run.seqLength)
        guard let available, total > available else { return stages }
        var advice: String
        // The micro-batch sizes the global batch allows (it must stay a multiple of b x DP),
        // largest first. The need is not monotone in them (fewer micro-batches may be in flight),
        // so each is tried; there are few.
        let perReplica = max(1, run.globalBatchSize / layout.dataParallel)
        if run.microBatchSize > 1,
           let fitting = Self.divisors(of: perReplica).filter({ $0 < run.microBatchSize }).reversed()
               .first(where: { need(microBatch: $0, seqLength: run.seqLength).total <= available }) {
            advice = "--micro-batch-size \(fitting) would fit"
        } else if need(microBatch: 1, seqLength: 1).total <= available {
            // The need grows with the sequence length: the longest that fits with one sample.
            var fits = 1, tooLong = run.seqLength
            while tooLong - fits > 1 {
                let middle = fits + (tooLong - fits) / 2
                if need(microBatch: 1, seqLength: middle).total <= available { fits = middle } else { tooLong = middle }
            }
            advice = "even one sample per micro-batch does not fit; --seq-length \(fits) would"
        } else {
            advice = "even one sample per micro-batch does not fit: reduce the model (layers, hidden size, vocabulary) "
                + "or spread it over more tensor/pipeline-parallel ranks"
        }
        throw .memory("this run needs about \(SystemMemory.describe(total)) on this machine but \(SystemMemory.describe(available)) is available "
                      + "(busiest rank: \(busiest)); \(advice)")
    }
}
