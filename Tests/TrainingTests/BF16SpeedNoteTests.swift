import Kernels
import Measurement
import Testing

/// A bf16 run says when its GEMM is slower than sgemm on the machine (fp32 then trains faster),
/// and what to try where the slow one is oneDNN's.
@Suite struct BF16SpeedNoteTests {
    @Test func aSlowBF16GEMMIsNamed() {
        let native = BF16SpeedNote.text(bf16Peak: 140.4, sgemmPeak: 230, backend: .oneDNN)
        #expect(native == "oneDNN's bf16 GEMM runs at 140 GFLOP/s on this CPU, sgemm at 230: fp32 trains faster here; "
                    + "MEGATRON_BF16_GEMM=sgemm computes the same bf16 operands on sgemm instead (fp32 sums, another order)")
        let emulated = BF16SpeedNote.text(bf16Peak: 180, sgemmPeak: 230, backend: .widenedSGEMM)
        #expect(emulated?.hasSuffix("sgemm at 230: fp32 trains faster here") == true)
        #expect(emulated?.contains("MEGATRON_BF16_GEMM") == false, "the emulation is what the variable would select")
    }

    @Test func aFastOrCloseBF16GEMMIsNotNoted() {
        #expect(BF16SpeedNote.text(bf16Peak: 400, sgemmPeak: 210, backend: .oneDNN) == nil)
        #expect(BF16SpeedNote.text(bf16Peak: 208, sgemmPeak: 230, backend: .oneDNN) == nil, "within 10%")
    }
}
