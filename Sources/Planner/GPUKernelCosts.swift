/// The cost of one kernel on a GPU of a `ClusterSpec`, from the device's datasheet figures and
/// published micro-benchmarks (never from end-to-end runs):
///
/// - a GEMM runs as 128 x 128 output tiles spread over the SMs. Each tile's main loop runs at the
///   device's sustained rate per SM (`peak x gemmEfficiency / SMs`) over its `k` inner elements
///   plus `gemmTileOverhead` elements' worth of prologue and epilogue. A product of fewer tiles
///   than SMs still takes a whole wave (the other SMs idle); beyond one wave the tiles are
///   balanced over the SMs (cuBLAS's split and stream-K kernels: the measured sweeps show no
///   wave sawtooth). No GEMM is faster than its operands stream through memory (a roofline for
///   skinny or small products). With the A100's figures this reproduces Azure's cuBLASLt sweep
///   (1024^3 to 16384^3, 119 to 257 TFLOP/s) within 5%;
/// - a memory-bound kernel (LayerNorm, GELU, dropout, softmax, Adam) moves its bytes at the
///   device's sustained bandwidth (`memoryBandwidth x memoryEfficiency`).
public struct GPUKernelCosts: Sendable {
    /// The output tile counted: 128 x 128, the smallest of the tiles cuBLAS's large-GEMM kernels use.
    public static let tile = 128

    public let cluster: ClusterSpec
    /// FLOP/s of one device's GEMMs in the training precision at full occupancy.
    public let sustainedFLOPs: Double
    /// Bytes/s a streaming kernel sustains.
    public let sustainedBandwidth: Double

    public init(cluster: ClusterSpec, precision: MemoryModel.Precision) {
        self.cluster = cluster
        let peak = precision == .fp32 ? cluster.fp32PeakFLOPs : cluster.peakFLOPs
        sustainedFLOPs = peak * cluster.gemmEfficiency
        sustainedBandwidth = cluster.memoryBandwidth * cluster.memoryEfficiency
    }

    /// Seconds of `batch` independent `m x n` products over an inner dimension `k`, operands and
    /// result of `elementBytes` each.
    public func gemm(m: Int, n: Int, k: Int, batch: Int = 1, elementBytes: Double) -> Double {
        let (m, n, k, batch) = (Double(m), Double(n), Double(k), Double(batch))
        let inner = k + cluster.gemmTileOverhead
        var compute = 2 * m * n * inner * batch / sustainedFLOPs
        if let units = cluster.streamingMultiprocessors {
            let tile = Double(Self.tile)
            let tiles = (m / tile).rounded(.up) * (n / tile).rounded(.up) * batch
            let waves = max(1, tiles / Double(units))
            compute = waves * 2 * tile * tile * inner / (sustainedFLOPs / Double(units))
        }
        let traffic = (m * k + k * n + m * n) * batch * elementBytes
        return max(compute, traffic / sustainedBandwidth)
    }

    /// Seconds to stream `bytes` through memory (read and written together).
    public func memory(bytes: Double) -> Double { bytes / sustainedBandwidth }
}
