import Kernels

/// Where a column-parallel GEMM after a LayerNorm (QKV, fc1, the output layer) finds its input
/// for the weight gradient. Without sequence parallelism the LayerNorm output it multiplied is
/// kept whole (in bf16 as the GEMM's rounded operand itself). With it each rank keeps only its
/// own tokens' rows, as Megatron does, and the backward gathers them again, so the saved
/// LayerNorm outputs shrink by `t` like the rest of the residual region.
extension TensorParallelRegion {
    /// In bf16, the buffer the GEMM should keep its rounded input in: `saved` itself (all rows),
    /// or with sequence parallelism none (the GEMM rounds the gathered rows into its operand
    /// scratch), `saved` instead receiving this rank's rows of `layerNorm` rounded, which is what
    /// the gathered operand holds for them. nil in fp32 and fp16 (`saved` nil).
    func keptGEMMInput(_ saved: UnsafeMutablePointer<BFloat16>?, layerNorm: UnsafePointer<Float>,
                       rows: Int, channels: Int) -> UnsafeMutablePointer<BFloat16>? {
        guard let saved, sequenceParallel else { return saved }
        BFloat16Conversion.round(out: saved, inp: layerNorm, count: localRows(rows) * channels)
        return nil
    }

    /// The GEMM's input for the backward, as `LinearGEMM.backward` takes it (`input`, or in bf16
    /// the kept operand `saved`): the kept `layerNorm` output (or its bf16 copy) as it is; with
    /// sequence parallelism this rank's rows (widened from `saved` into `layerNorm` when kept in
    /// bf16) all-gathered again into `gathered`.
    func gemmInputForBackward(layerNorm: UnsafeMutablePointer<Float>, saved: UnsafeMutablePointer<BFloat16>?,
                              gatheringInto gathered: UnsafeMutablePointer<Float>?, rows: Int, channels: Int)
        -> (input: UnsafePointer<Float>, saved: UnsafePointer<BFloat16>?) {
        guard sequenceParallel else { return (UnsafePointer(layerNorm), saved.map { UnsafePointer($0) }) }
        if let saved { BFloat16Conversion.widen(out: layerNorm, inp: saved, count: localRows(rows) * channels) }
        return (enterRegion(layerNorm, gatheringInto: gathered, rows: rows, channels: channels), nil)
    }
}
