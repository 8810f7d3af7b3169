import Kernels
import Parameters

/// Times the causal attention core (`Attention.forward` and `.backward`) of one layer in fp32
/// and with bf16 GEMMs (`--bf16`), at a benchmark configuration's shape.
public struct AttentionBenchmark: Sendable {
    public let batch: Int, seqLength: Int, heads: Int, headDim: Int
    /// Timed calls per cell (after one untimed call).
    public let repeats: Int

    public init(batch: Int, seqLength: Int, heads: Int, headDim: Int, repeats: Int) {
        precondition(repeats >= 1, "AttentionBenchmark: at least one timed call per cell")
        self.batch = batch
        self.seqLength = seqLength
        self.heads = heads
        self.headDim = headDim
        self.repeats = repeats
    }

    /// One precision's times, in milliseconds (best and median of the repeats), and GFLOP/s of the
    /// best against the causal GEMM FLOPs.
    public struct Row: Codable, Sendable {
        public var precision: String
        public var forwardMilliseconds: Double, forwardMedianMilliseconds: Double, forwardGFLOPs: Double
        public var backwardMilliseconds: Double, backwardMedianMilliseconds: Double, backwardGFLOPs: Double
    }

    /// GEMM FLOPs over the causal half of the scores: the forward's `Q·Kᵀ` and `P·V` are
    /// `2 T² d` per head, the backward's five products (`Q·Kᵀ` again, `dO·Vᵀ`, `dS·K`, `dSᵀ·Q`,
    /// `Pᵀ·dO`) `5 T² d`.
    public var forwardFLOPs: Double { 2 * Double(batch * heads) * Double(seqLength * seqLength) * Double(headDim) }
    public var backwardFLOPs: Double { 2.5 * forwardFLOPs }

    /// Runs fp32, then bf16 GEMMs, on the same random Q, K, V and output gradient.
    public func run() -> [Row] {
        [false, true].map { bf16 in
            let core = AttentionCoreRun(batch: batch, seqLength: seqLength, heads: heads, headDim: headDim, bf16: bf16, seed: 3)
            let forward = times(core.forward)
            let backward = times(core.backward)
            return Row(precision: bf16 ? "bf16" : "fp32",
                       forwardMilliseconds: forward.min()!, forwardMedianMilliseconds: median(forward),
                       forwardGFLOPs: forwardFLOPs / forward.min()! / 1e6,
                       backwardMilliseconds: backward.min()!, backwardMedianMilliseconds: median(backward),
                       backwardGFLOPs: backwardFLOPs / backward.min()! / 1e6)
        }
    }

    private func times(_ body: () -> Void) -> [Double] {
        body()
        let clock = ContinuousClock()
        return (0..<repeats).map { _ in milliseconds(clock.measure(body)) }
    }
}
