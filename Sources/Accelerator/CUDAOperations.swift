/// The kernels' GPU versions: the same arguments and results as the Swift kernels of the same
/// names in the Kernels module (see their documentation), row-major, fp32 unless said otherwise.
extension CUDAAccelerator {
    /// `C[m, n] = alpha op(A) op(B) + beta C` in fp32 (no TF32).
    public func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let s = Staging(self, "sgemm"); defer { s.finish() }
        let (aCount, bCount, cCount) = Self.extents(transposeA, transposeB, m, n, k, lda, ldb, ldc)
        check(library.sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha,
                            s.input(a, aCount), Int32(lda), s.input(b, bCount), Int32(ldb), beta,
                            s.output(c, cCount), Int32(ldc)), "sgemm")
    }

    /// The same with bf16 `A` and `B` (bit patterns), fp32 accumulation into fp32 `C`.
    public func gemmBF16(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                         a: UnsafePointer<UInt16>, lda: Int, b: UnsafePointer<UInt16>, ldb: Int,
                         beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let s = Staging(self, "bf16 gemm"); defer { s.finish() }
        let (aCount, bCount, cCount) = Self.extents(transposeA, transposeB, m, n, k, lda, ldb, ldc)
        check(library.gemmBF16(transposeA ? 1 : 0, transposeB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha,
                               s.input(a, aCount), Int32(lda), s.input(b, bCount), Int32(ldb), beta,
                               s.output(c, cCount), Int32(ldc)), "bf16 gemm")
    }

    /// Elements from the first to the last one each operand of a row-major GEMM touches.
    static func extents(_ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ lda: Int, _ ldb: Int,
                        _ ldc: Int) -> (a: Int, b: Int, c: Int) {
        func span(_ rows: Int, _ columns: Int, _ ld: Int) -> Int { rows == 0 || columns == 0 ? 0 : (rows - 1) * ld + columns }
        return (transposeA ? span(k, m, lda) : span(m, k, lda), transposeB ? span(n, k, ldb) : span(k, n, ldb), span(m, n, ldc))
    }

    /// `dbias[cols] += Σ_rows a[rows, cols]` (the bias gradient).
    public func addColumnSums(_ dbias: UnsafeMutablePointer<Float>, of a: UnsafePointer<Float>, ones: UnsafePointer<Float>,
                              rows: Int, cols: Int) {
        let s = Staging(self, "sgemv"); defer { s.finish() }
        check(library.sgemv(1, Int32(rows), Int32(cols), 1, s.input(a, rows * cols), Int32(cols), s.input(ones, rows), 1,
                            s.output(dbias, cols)), "sgemv")
    }

    /// Sets every row of `out` (`[rows, n]`) to `row`, or to zeros when nil.
    public func fillRows(_ out: UnsafeMutablePointer<Float>, with row: UnsafePointer<Float>?, rows: Int, n: Int) {
        let s = Staging(self, "fill rows"); defer { s.finish() }
        check(library.fillRows(s.output(out, rows * n), s.input(row, n), Int32(rows), Int32(n)), "fill rows")
    }

    public func layerNormForward(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                                 rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                 bias: UnsafePointer<Float>, rows: Int, channels c: Int, eps: Float) {
        let s = Staging(self, "layernorm forward"); defer { s.finish() }
        check(library.layerNormForward(s.output(out, rows * c), s.output(mean, rows), s.output(rstd, rows),
                                       s.input(inp, rows * c), s.input(weight, c), s.input(bias, c),
                                       Int32(rows), Int32(c), eps), "layernorm forward")
    }

    public func layerNormBackward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>,
                                  dbias: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                                  weight: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                  rows: Int, channels c: Int) {
        let s = Staging(self, "layernorm backward"); defer { s.finish() }
        check(library.layerNormBackward(s.output(dinp, rows * c), s.output(dweight, c), s.output(dbias, c),
                                        s.input(dout, rows * c), s.input(inp, rows * c), s.input(weight, c),
                                        s.input(mean, rows), s.input(rstd, rows), Int32(rows), Int32(c)),
              "layernorm backward")
    }

    public func geluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int, exact: Bool) {
        let s = Staging(self, "gelu forward"); defer { s.finish() }
        check(library.geluForward(s.output(out, count), s.input(inp, count), count, exact ? 1 : 0), "gelu forward")
    }

    public func geluBackward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, dout: UnsafePointer<Float>,
                             count: Int, exact: Bool) {
        let s = Staging(self, "gelu backward"); defer { s.finish() }
        check(library.geluBackward(s.output(dinp, count), s.input(inp, count), s.input(dout, count), count, exact ? 1 : 0),
              "gelu backward")
    }

    public func addInPlace(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count: Int) {
        let s = Staging(self, "residual add"); defer { s.finish() }
        check(library.addInPlace(s.output(out, count), s.input(inp, count), count), "residual add")
    }

    public func bf16Round(out: UnsafeMutablePointer<UInt16>, inp: UnsafePointer<Float>, count: Int) {
        let s = Staging(self, "bf16 round"); defer { s.finish() }
        check(library.bf16Round(s.output(out, count), s.input(inp, count), count), "bf16 round")
    }

    public func bf16Widen(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<UInt16>, count: Int) {
        let s = Staging(self, "bf16 widen"); defer { s.finish() }
        check(library.bf16Widen(s.output(out, count), s.input(inp, count), count), "bf16 widen")
    }

    public func bf16RoundInPlace(_ values: UnsafeMutablePointer<Float>, count: Int) {
        let s = Staging(self, "bf16 round in place"); defer { s.finish() }
        check(library.bf16RoundInPlace(s.output(values, count), count), "bf16 round in place")
    }

    /// The table (`wte` / `dwte`) must be this GPU's memory: its size is not known here.
    public func embeddingForward(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>, wte: UnsafePointer<Float>,
                                 wpe: UnsafePointer<Float>?, batch: Int, seqLength: Int, channels c: Int,
                                 vocabStart: Int, vocabCount: Int) {
        let s = Staging(self, "embedding forward"); defer { s.finish() }
        let n = batch * seqLength
        check(library.embeddingForward(s.output(out, n * c), s.input(tokens, n), s.input(wte, 0),
                                       s.input(wpe, seqLength * c), Int32(batch), Int32(seqLength), Int32(c),
                                       vocabStart, vocabCount), "embedding forward")
    }

    public func embeddingBackward(dwte: UnsafeMutablePointer<Float>, dwpe: UnsafeMutablePointer<Float>,
                                  dout: UnsafePointer<Float>, tokens: UnsafePointer<Int32>, batch: Int, seqLength: Int,
                                  channels c: Int, vocabStart: Int, vocabCount: Int) {
        let s = Staging(self, "embedding backward"); defer { s.finish() }
        let n = batch * seqLength
        check(library.embeddingBackward(s.output(dwte, 0), s.output(dwpe, seqLength * c),
                                        s.input(dout, n * c), s.input(tokens, n), Int32(batch), Int32(seqLength),
                                        Int32(c), vocabStart, vocabCount), "embedding backward")
    }

    public func crossEntropyForward(losses: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>,
                                    logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, rows: Int, vocab: Int,
                                    validColumns: Int, ignoreIndex: Int32) {
        let s = Staging(self, "cross-entropy forward"); defer { s.finish() }
        check(library.crossEntropyForward(s.output(losses, rows), s.output(logSumExp, rows), s.input(logits, rows * vocab),
                                          s.input(targets, rows), Int32(rows), Int32(vocab), Int32(validColumns),
                                          ignoreIndex), "cross-entropy forward")
    }

    public func crossEntropyBackward(logits: UnsafeMutablePointer<Float>, logSumExp: UnsafePointer<Float>,
                                     targets: UnsafePointer<Int32>, lossMask: UnsafePointer<Float>?, scale: Float,
                                     rows: Int, vocab: Int, vocabStart: Int, validColumns: Int, ignoreIndex: Int32) {
        let s = Staging(self, "cross-entropy backward"); defer { s.finish() }
        check(library.crossEntropyBackward(s.output(logits, rows * vocab), s.input(logSumExp, rows), s.input(targets, rows),
                                           s.input(lossMask, rows), scale, Int32(rows), Int32(vocab), vocabStart,
                                           Int32(validColumns), ignoreIndex), "cross-entropy backward")
    }

    /// `bf16GEMMs`: the core's GEMMs take bf16 operands with fp32 accumulation (`--bf16`).
    public func attentionForward(out: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>,
                                 qkv: UnsafePointer<Float>, batch: Int, seqLength t: Int, heads: Int, channels c: Int,
                                 bf16GEMMs: Bool = false) {
        let s = Staging(self, bf16GEMMs ? "attention forward bf16" : "attention forward"); defer { s.finish() }
        let n = batch * t
        let call = bf16GEMMs ? library.attentionForwardBF16 : library.attentionForward
        check(call(s.output(out, n * c), s.output(logSumExp, batch * heads * t), s.input(qkv, n * 3 * c),
                   Int32(batch), Int32(t), Int32(heads), Int32(c)), "attention forward")
    }

    public func attentionBackward(dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, out: UnsafePointer<Float>,
                                  logSumExp: UnsafePointer<Float>, qkv: UnsafePointer<Float>, batch: Int,
                                  seqLength t: Int, heads: Int, channels c: Int, bf16GEMMs: Bool = false) {
        let s = Staging(self, bf16GEMMs ? "attention backward bf16" : "attention backward"); defer { s.finish() }
        let n = batch * t
        let call = bf16GEMMs ? library.attentionBackwardBF16 : library.attentionBackward
        check(call(s.output(dqkv, n * 3 * c), s.input(dout, n * c), s.input(out, n * c),
                   s.input(logSumExp, batch * heads * t), s.input(qkv, n * 3 * c),
                   Int32(batch), Int32(t), Int32(heads), Int32(c)), "attention backward")
    }

    /// One AdamW step; the bias corrections and decay factor come from the caller (as the CPU kernel computes them).
    public func adamW(params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
                      v: UnsafeMutablePointer<Float>, count: Int, beta1: Float, beta2: Float, epsilon: Float,
                      stepSize: Float, inverseSqrtCorrection2: Float, shrink: Float, gradScale: Float) {
        let s = Staging(self, "adamw"); defer { s.finish() }
        check(library.adamW(s.output(params, count), s.input(grads, count), s.output(m, count), s.output(v, count), count,
                            beta1, beta2, epsilon, stepSize, inverseSqrtCorrection2, shrink, gradScale), "adamw")
    }

    /// `Σ x²` accumulated in Float64.
    public func sumOfSquares(_ values: UnsafePointer<Float>, count: Int) -> Double {
        let s = Staging(self, "sum of squares"); defer { s.finish() }
        var result = 0.0
        check(library.sumOfSquares(s.input(values, count), count, &result), "sum of squares")
        return result
    }
}
