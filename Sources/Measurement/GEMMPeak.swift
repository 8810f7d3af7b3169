import Kernels
import Parameters

/// Measures the sgemm ceiling of this machine, the denominator of MFU.
public enum GEMMPeak {
    /// Best GFLOP/s of several transformer-shaped products (4096 x 3072 x 768, the MLP's first
    /// GEMM at GPT-2 124M) on all BLAS threads.
    public static func measure(repeats: Int = 5) -> Double {
        let m = 4096, n = 3072, k = 768
        let a = FloatBuffer(count: m * k), b = FloatBuffer(count: n * k), c = FloatBuffer(count: m * n)
        var rng = RandomGenerator(seed: 1)
        rng.fillNormal(a.pointer, count: a.count, std: 1)
        rng.fillNormal(b.pointer, count: b.count, std: 1)
        let clock = ContinuousClock()
        var best = 0.0
        for _ in 0..<repeats {
            let start = clock.now
            Matmul.forward(out: c.pointer, inp: a.pointer, weight: b.pointer, bias: nil,
                           rows: m, inFeatures: k, outFeatures: n)
            let seconds = milliseconds(clock.now - start) / 1000
            best = max(best, 2 * Double(m * n * k) / seconds / 1e9)
        }
        return best
    }
}
