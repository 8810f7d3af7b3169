import Kernels
import Parameters

/// Times the causal attention core (`Attention.forward` and `.backward`) of one layer in fp32
/// and with bf16 GEMMs (`--bf16`), at a benchmark configuration's shape.
public struct AttentionBenchmark: Sendable {
    public let batch: Int, seqLength: Int, heads: Int, headDim: Int
    /// Timed calls per cell (after one untimed call).
    public let repeats: Int

    public init(batch: Int, seqLength: Int, heads: Int, headDim: Int, repeats: Int) {
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
        let c = heads * headDim, n = batch * seqLength
        let qkv = FloatBuffer(count: n * 3 * c), out = FloatBuffer(count: n * c), dout = FloatBuffer(count: n * c)
        let dqkv = FloatBuffer(count: n * 3 * c), lse = FloatBuffer(count: batch * heads * seqLength)
        let scratch = FloatBuffer(count: Attention.scratchCount(seqLength: seqLength))
        var rng = RandomGenerator(seed: 3)
        rng.fillNormal(qkv.pointer, count: qkv.count, std: 1)
        rng.fillNormal(dout.pointer, count: dout.count, std: 1)
        BFloat16Conversion.roundInPlace(qkv.pointer, count: qkv.count)  // as the model hands them over in bf16
        return [false, true].map { bf16 in
            let forward = times {
                Attention.forward(out: out.pointer, logSumExp: lse.pointer, qkv: qkv.pointer, scratch: scratch.pointer,
                                  batch: batch, seqLength: seqLength, heads: heads, channels: c, bf16GEMMs: bf16)
            }
            let backward = times {
                Attention.backward(dqkv: dqkv.pointer, dout: dout.pointer, out: out.pointer, logSumExp: lse.pointer,
                                   qkv: qkv.pointer, scratch: scratch.pointer, batch: batch, seqLength: seqLength,
                                   heads: heads, channels: c, bf16GEMMs: bf16)
            }
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
