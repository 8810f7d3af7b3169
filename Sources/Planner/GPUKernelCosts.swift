/// The cost of one kernel on a GPU of a `ClusterSpec`, from the device's datasheet figures and
/// published micro-benchmarks (never from end-to-end runs):
///
/// - a GEMM runs in waves of output tiles: `ceil(tiles / SMs)` waves, each as long as one tile's
///   main loop at the device's sustained GEMM rate per SM (`peak x gemmEfficiency / SMs`), so a
///   product whose tiles leave the last wave part-empty pays for the whole wave (NVIDIA's "tile
///   and wave quantization"; a product of fewer tiles than SMs is split along its inner dimension
///   and fills them); and no faster than its operands stream through memory (a roofline for
///   skinny or small products);
/// - a memory-bound kernel (LayerNorm, GELU, dropout, softmax, Adam) moves its bytes at the
///   device's sustained bandwidth (`memoryBandwidth x memoryEfficiency`).
public struct GPUKernelCosts: Sendable {
    /// The output tile whose waves are counted: 128 x 128, the tile cuBLAS's large-GEMM kernels
    /// use (a 256 x 128 tile quantises no better: two 128 x 128 tiles cover it in half the time).
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
        var compute = 2 * m * n * k * batch / sustainedFLOPs
        if let units = cluster.streamingMultiprocessors {
            let tile = Double(Self.tile)
            let tiles = (m / tile).rounded(.up) * (n / tile).rounded(.up) * batch
            // Fewer tiles than SMs: cuBLAS splits the inner dimension (split-K) to fill them.
            let waves = tiles >= Double(units) ? (tiles / Double(units)).rounded(.up) : tiles / Double(units)
            compute = waves * 2 * tile * tile * k / (sustainedFLOPs / Double(units))
        }
        let traffic = (m * k + k * n + m * n) * batch * elementBytes
        return max(compute, traffic / sustainedBandwidth)
    }

    /// Seconds to stream `bytes` through memory (read and written together).
    public func memory(bytes: Double) -> Double { bytes / sustainedBandwidth }
}
