import Accelerator
import Kernels
import Models
import Parameters

/// Measures the GEMM ceiling of this machine, the denominator of MFU: sgemm for fp32 (and the
/// emulated fp16), the bf16 GEMM for bf16.
public enum GEMMPeak {
    /// The peak of the GEMM `precision` trains with. Its operands (72 MB on a CPU) are freed
    /// after and do not count toward the process's peak memory (`ProcessMemory.excludingFromPeak`):
    /// `train` and `bench` report the run's peak, not the measurement's.
    public static func measure(_ precision: ComputePrecision, repeats: Int = 5) -> Double {
        ProcessMemory.excludingFromPeak {
            precision == .bf16 ? measureBF16(repeats: repeats) : measure(repeats: repeats)
        }
    }

    /// Best GFLOP/s of the same product on bf16 operands (`BF16Matmul`'s active backend).
    public static func measureBF16(repeats: Int = 5) -> Double {
        let (a, b, c) = operands()
        let a16 = BFloat16Buffer(rounding: a.pointer, count: a.count), b16 = BFloat16Buffer(rounding: b.pointer, count: b.count)
        return best(of: repeats, flops: 2 * Double(m * n * k)) {
            BF16Matmul.forward(out: c.pointer, inp: a16.pointer, weight: b16.pointer, bias: nil,
                               rows: m, inFeatures: k, outFeatures: n)
        }
    }

    /// The measured product's shape: 4096 x 3072 x 768 (the MLP's first GEMM at GPT-2 124M); on
    /// a GPU 8192 x 8192 x 8192, which fills it (the small one would time the launch).
    static var m: Int { GPU.active == nil ? 4096 : 8192 }
    static var n: Int { GPU.active == nil ? 3072 : 8192 }
    static var k: Int { GPU.active == nil ? 768 : 8192 }

    /// Random `A [m, k]`, `B [n, k]` and the output `C [m, n]`.
    static func operands() -> (a: FloatBuffer, b: FloatBuffer, c: FloatBuffer) {
        let a = FloatBuffer(count: m * k), b = FloatBuffer(count: n * k)
        var rng = RandomGenerator(seed: 1)
        rng.fillNormal(a.pointer, count: a.count, std: 1)
        rng.fillNormal(b.pointer, count: b.count, std: 1)
        return (a, b, FloatBuffer(count: m * n))
    }

    /// Best GFLOP/s of `repeats` runs of `body` doing `flops` each.
    static func best(of repeats: Int, flops: Double, _ body: () -> Void) -> Double {
        let clock = ContinuousClock()
        var best = 0.0
        for _ in 0..<repeats {
            let start = clock.now
            body()
            GPU.hostWillRead()  // time the GPU's work, not its queueing
            best = max(best, flops / (milliseconds(clock.now - start) / 1000) / 1e9)
        }
        return best
    }

    /// Best GFLOP/s of several transformer-shaped products (4096 x 3072 x 768, the MLP's first
    /// GEMM at GPT-2 124M) on all BLAS threads (on a GPU, see `m`).
    public static func measure(repeats: Int = 5) -> Double {
        let (a, b, c) = operands()
        return best(of: repeats, flops: 2 * Double(m * n * k)) {
            Matmul.forward(out: c.pointer, inp: a.pointer, weight: b.pointer, bias: nil,
                           rows: m, inFeatures: k, outFeatures: n)
        }
    }
}
