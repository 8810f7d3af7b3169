import Accelerator
import Kernels

/// The line a bf16 run prints where its GEMM is slower than sgemm on this CPU: then fp32 trains
/// faster. The emulated bf16 GEMM (a CPU without native bf16) always is; oneDNN 2.6's native one
/// was too on a 2-core Emerald Rapids with no AMX visible (136-146 GFLOP/s against sgemm's
/// 215-268), where the emulation (177-217) beat it.
public enum BF16SpeedNote {
    /// The note for measured peaks (GFLOP/s) of the bf16 GEMM on `backend` and of sgemm; nil when
    /// the bf16 GEMM is within 10% of sgemm or faster.
    public static func text(bf16Peak: Double, sgemmPeak: Double, backend: BF16Matmul.Backend) -> String? {
        guard bf16Peak < 0.9 * sgemmPeak else { return nil }
        let gflops = { (value: Double) in String(Int(value.rounded())) }
        let kind = backend == .oneDNN ? "oneDNN's bf16 GEMM" : "the emulated bf16 GEMM (bf16 widened, then sgemm)"
        let advice = backend == .oneDNN
            ? "; MEGATRON_BF16_GEMM=sgemm computes the same bf16 operands on sgemm instead (fp32 sums, another order)" : ""
        return "\(kind) runs at \(gflops(bf16Peak)) GFLOP/s on this CPU, sgemm at \(gflops(sgemmPeak)): "
            + "fp32 trains faster here\(advice)"
    }

    /// The note for this CPU, given the bf16 GEMM's measured peak (sgemm is measured now; nil on
    /// a GPU).
    public static func measure(bf16Peak: Double) -> String? {
        guard GPU.active == nil else { return nil }
        return text(bf16Peak: bf16Peak, sgemmPeak: GEMMPeak.measure(.fp32), backend: BF16Matmul.active)
    }
}
