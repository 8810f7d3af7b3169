import FileSupport
import Kernels
import Models
import Parameters
import Planner
#if canImport(Glibc)
import Glibc
#endif

/// `--cluster local`: this machine as one node of `ranks` devices, each a rank thread with its
/// share of the cores, of the GEMM peak in the run's precision, of the memory and of a measured
/// memory bandwidth, and with this machine's kernel timings for the time.
public enum LocalCluster {
    /// The cores each of `ranks` rank threads gets, as `megatron train` shares them.
    public static func threadsPerRank(_ ranks: Int) -> Int { max(1, ThreadPool.availableCores / max(1, ranks)) }

    /// The kernel-timings cache file's name for `ranks` rank threads computing in `precision`.
    public static func timingsFileName(ranks: Int, precision: ComputePrecision) -> String {
        "kernels-\(threadsPerRank(ranks))t-\(precision.rawValue).json"
    }

    /// The time comes from kernel timings (`measure(ranks:precision:cacheFile:)`), so no GEMM
    /// efficiency is set (1: the peak itself).
    static func measure(ranks: Int, peakOf precision: ComputePrecision) -> ClusterSpec {
        spec(ranks: ranks, machinePeak: GEMMPeak.measure(precision) * 1e9, machineBandwidth: measureCopyBandwidth())
    }

    /// This machine as `ranks` devices, each with its share of `machinePeak` FLOP/s and
    /// `machineBandwidth` bytes/s and of the memory.
    static func spec(ranks: Int, machinePeak: Double, machineBandwidth: Double) -> ClusterSpec {
        let share = Double(max(1, ranks))
        let peak = machinePeak / share
        let bandwidth = machineBandwidth / share
        let memory = SystemMemory.physicalBytes() / share
        var cluster = ClusterSpec(name: "local", peakFLOPs: peak, memoryBytes: memory, memoryBandwidth: bandwidth,
                                  devicesPerNode: max(1, ranks), nodes: 1, intraNodeBandwidth: bandwidth, intraNodeLatency: 1e-6,
                                  interNodeBandwidth: bandwidth, interNodeLatency: 1e-6, gemmEfficiency: 1)
        cluster.implementation = .megatronSwift
        return cluster
    }

    /// `measure`, with the iteration time added up from this machine's kernel timings for
    /// `precision` with each rank's share of the cores (`KernelCalibration`): read from
    /// `cacheFile` when it holds timings of this CPU, thread count and precision, else measured
    /// and written there. `log` hears when a measurement starts.
    public static func measure(ranks: Int, precision: ComputePrecision, cacheFile: String,
                               log: (String) -> Void = { _ in }) throws(PlanError) -> ClusterSpec {
        let baseline = Double(ProcessMemory.residentBytes())  // before anything is measured
        var cluster = measure(ranks: ranks, peakOf: precision)  // MFU against this precision's GEMM peak
        cluster.processBytes = baseline
        let threads = threadsPerRank(ranks)
        if let cached = cachedTimings(threads: threads, precision: precision, cacheFile: cacheFile) {
            cluster.kernelTimings = cached
            return cluster
        }
        try KernelTimings.checkReplaceable(cacheFile)
        log("measuring this machine's kernels (\(threads) thread\(threads == 1 ? "" : "s"), \(precision.rawValue)); cached in \(cacheFile)")
        let timings = KernelCalibration.measure(threads: threads, precision: precision)
        try timings.save(to: cacheFile)
        cluster.kernelTimings = timings
        return cluster
    }

    /// `measure` without measuring anything, for a process that must not disturb its own
    /// memory peak (`megatron train`'s prediction): the GEMM peak `machinePeak` it measured
    /// already, the copy bandwidth from the cached kernel timings (8 bytes per float copied);
    /// nil when `cacheFile` does not hold this machine's timings for `ranks` and `precision`.
    public static func cached(ranks: Int, precision: ComputePrecision, cacheFile: String, machinePeak: Double,
                              processBytes: Double) -> ClusterSpec? {
        let threads = threadsPerRank(ranks)
        guard let timings = cachedTimings(threads: threads, precision: precision, cacheFile: cacheFile),
              timings.perElement(.copy) > 0 else { return nil }
        // The timings' copy ran on one rank's threads: the whole machine copies `ranks` times that.
        var cluster = spec(ranks: ranks, machinePeak: machinePeak, machineBandwidth: 8 / timings.perElement(.copy) * Double(ranks))
        cluster.processBytes = processBytes
        cluster.kernelTimings = timings
        return cluster
    }

    /// The timings in `cacheFile` if they are of this CPU, thread count, precision and format.
    static func cachedTimings(threads: Int, precision: ComputePrecision, cacheFile: String) -> KernelTimings? {
        guard let cached = try? KernelTimings.load(from: cacheFile), cached.format == KernelTimings.currentFormat,
              cached.machine == KernelCalibration.machine, cached.threads == threads,
              cached.precision == precision.rawValue else { return nil }
        return cached
    }

    /// Bytes/s of reading plus writing a 256 MiB buffer (best of three copies).
    public static func measureCopyBandwidth() -> Double {
        let count = 64 << 20
        let source = FloatBuffer(count: count), destination = FloatBuffer(count: count)
        for i in stride(from: 0, to: count, by: 1024) { source.pointer[i] = 1 }
        let clock = ContinuousClock()
        var best = Double.infinity
        for _ in 0..<3 {
            let start = clock.now
            destination.pointer.update(from: source.pointer, count: count)
            best = min(best, milliseconds(clock.now - start) / 1000)
        }
        return 2 * Double(count * 4) / best
    }
}
