#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The causal attention core under `--bf16` on the CPU, computed as Megatron's core attention
/// computes it in bf16 (and as `cuda/attention_bf16.cu` does on a GPU): Q, K, V and the output
/// gradient dO are rounded to bf16; the scaled scores `S`, the probabilities `P`, the probability
/// gradient `dP` and the score gradient `dS` are bf16 values; every GEMM multiplies bf16 operands
/// (`BF16Matmul.gemm`: oneDNN's `vdpbf16ps` where the CPU has it) and accumulates in fp32; the
/// softmax, its log-sum-exp and `D = rowsum(dO ∘ O)` compute in fp32 on those values. The outputs
/// (`out`, `logSumExp`, `dqkv`) are fp32.
///
/// With attention dropout the dropped probabilities `bf16(P ∘ Z)` feed `P·V` (Megatron drops the
/// bf16 probabilities), and the backward's `dP` of the undropped probabilities is `bf16(dP ∘ Z)`.
///
/// The blocks of query rows, the per-thread `[T, T]` fp32 scratch and the head scheduling are
/// the fp32 path's (`Attention.forward`); the bf16 operands of each head take per-thread scratch
/// from `ScratchPool`.
extension Attention {
    /// The operands of one head in one thread's scratch. `P` (or the dropped `P ∘ Z`) and `dS`
    /// are bf16 and *block-packed*, as are the fp32 scores and `dP` in the `[T, T]` scratch: the
    /// rows of the block `r0..<r1` start at `r0 * T`, each `r1` long (see `Blocks.packedRow`), so
    /// every GEMM reads and writes packed matrices (oneDNN's brgemm needs them; with leading
    /// dimensions it falls back to a slower GEMM). The fp32 products `P·V`, `dS·K`, `dSᵀ·Q` and
    /// `Pᵀ·dO` go to packed `[T, headDim]` buffers and are then copied into the strided outputs.
    struct BF16HeadOperands {
        let p: UnsafeMutablePointer<BFloat16>, ds: UnsafeMutablePointer<BFloat16>
        let q: UnsafeMutablePointer<BFloat16>, k: UnsafeMutablePointer<BFloat16>
        let v: UnsafeMutablePointer<BFloat16>, dO: UnsafeMutablePointer<BFloat16>
        /// fp32 `[T, headDim]` products: the forward's output, or the backward's dQ, dK, dV.
        let products: UnsafeMutablePointer<Float>

        /// Bytes of one thread's operands (a multiple of 64).
        static func bytes(t: Int, headDim: Int) -> Int {
            (2 * (2 * t * t + 4 * t * headDim) + 4 * 3 * t * headDim + 63) / 64 * 64
        }

        init(_ base: UnsafeMutableRawPointer, t: Int, headDim: Int) {
            let products = base.bindMemory(to: Float.self, capacity: 3 * t * headDim)
            let halves = (base + 4 * 3 * t * headDim).bindMemory(to: BFloat16.self, capacity: 2 * t * t + 4 * t * headDim)
            self.products = products
            p = halves
            ds = p + t * t
            q = ds + t * t
            k = q + t * headDim
            v = k + t * headDim
            dO = v + t * headDim
        }

        /// Rounds the head's Q, K and V (rows of `ld` elements in the fused QKV) into `q`, `k`, `v`.
        func load(qkv q32: UnsafePointer<Float>, shape: Shape) {
            for i in 0..<shape.t {
                let row = q32 + i * shape.ld
                BFloat16Conversion.roundSerial(out: q + i * shape.hd, inp: row, count: shape.hd)
                BFloat16Conversion.roundSerial(out: k + i * shape.hd, inp: row + shape.hd, count: shape.hd)
                BFloat16Conversion.roundSerial(out: v + i * shape.hd, inp: row + 2 * shape.hd, count: shape.hd)
            }
        }
    }

    /// Runs `body` with the per-thread bf16 operand scratch of `shape` (one slot per pool thread).
    static func withBF16Scratch(_ shape: Shape, _ body: (_ operands: (Int) -> BF16HeadOperands) -> Void) {
        let slot = BF16HeadOperands.bytes(t: shape.t, headDim: shape.hd)
        ScratchPool.withBytes(slot * ThreadPool.current.threadCount) { raw in
            body { worker in BF16HeadOperands(raw + worker * slot, t: shape.t, headDim: shape.hd) }
        }
    }

    /// `C (+)= op(A) · op(B)` on packed bf16 operands, fp32 `C`.
    @inline(__always)
    private static func gemm(m: Int, n: Int, k: Int, _ a: UnsafePointer<BFloat16>, transposeA: Bool = false,
                             _ b: UnsafePointer<BFloat16>, transposeB: Bool = false,
                             _ c: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        BF16Matmul.gemm(OneDNNMatmul.Shape(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB,
                                           type: .bfloat16, accumulate: accumulate),
                        a: a, b: b, bias: nil, c: c, backend: BF16Matmul.active)
    }

    /// `x · Yᵀ` of every block's rows of `x` against rows `0..<r1` of `y` (both `[T, headDim]`),
    /// into the block-packed fp32 `out`: the unscaled scores (`Q·Kᵀ`) or `dP` (`dO·Vᵀ`).
    private static func blockProducts(into out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<BFloat16>,
                                      _ y: UnsafePointer<BFloat16>, shape: Shape) {
        shape.blocks.forEach { r0, r1 in
            gemm(m: r1 - r0, n: r1, k: shape.hd, x + r0 * shape.hd, y, transposeB: true, out + r0 * shape.t)
        }
    }

    static func forwardHeadBF16(out o: UnsafeMutablePointer<Float>, logSumExp lse: UnsafeMutablePointer<Float>,
                                qkv: UnsafePointer<Float>, scores: UnsafeMutablePointer<Float>, operands x: BF16HeadOperands,
                                shape: Shape, rows: RowRunner, dropout: DropoutMask?) {
        let t = shape.t, hd = shape.hd, blocks = shape.blocks
        x.load(qkv: qkv, shape: shape)
        blockProducts(into: scores, x.q, x.k, shape: shape)
        rows(t) { range in
            for i in range {
                let (offset, length) = blocks.packedRow(i)
                lse[i] = softmaxRowBF16(scores + offset, into: x.p + offset, count: i + 1, scale: shape.scale,
                                        dropout: dropout, firstCounter: UInt32(truncatingIfNeeded: i * t))
                zero(x.p + offset + i + 1, count: length - i - 1)
            }
        }
        blocks.forEach { r0, r1 in
            gemm(m: r1 - r0, n: hd, k: r1, x.p + r0 * t, x.v, x.products + r0 * hd)
        }
        for i in 0..<t { (o + i * shape.channels).update(from: x.products + i * hd, count: hd) }
    }

    static func backwardHeadBF16(dq: UnsafeMutablePointer<Float>, dO: UnsafePointer<Float>, o: UnsafePointer<Float>,
                                 lse: UnsafePointer<Float>, qkv: UnsafePointer<Float>, scores: UnsafeMutablePointer<Float>,
                                 dprobabilities: UnsafeMutablePointer<Float>, operands x: BF16HeadOperands,
                                 shape: Shape, rows: RowRunner, dropout: DropoutMask?) {
        let t = shape.t, hd = shape.hd, ld = shape.ld, channels = shape.channels, blocks = shape.blocks
        x.load(qkv: qkv, shape: shape)
        for i in 0..<t {
            BFloat16Conversion.roundSerial(out: x.dO + i * hd, inp: dO + i * channels, count: hd)
        }
        // S again, and dP = dO · Vᵀ.
        blockProducts(into: scores, x.q, x.k, shape: shape)
        blockProducts(into: dprobabilities, x.dO, x.v, shape: shape)
        // P = bf16(exp(S - lse)); dS = bf16(P ∘ (dP - D)), with dropout's factors where it ran.
        rows(t) { range in
            for i in range {
                let (offset, length) = blocks.packedRow(i)
                let d = vectorDot(dO + i * channels, o + i * channels, hd)
                backwardRowBF16(scores: scores + offset, dp: dprobabilities + offset, p: x.p + offset, ds: x.ds + offset,
                                keys: i + 1, scale: shape.scale, d: d, lse: lse[i], dropout: dropout,
                                firstCounter: UInt32(truncatingIfNeeded: i * t))
                zero(x.p + offset + i + 1, count: length - i - 1)
                zero(x.ds + offset + i + 1, count: length - i - 1)
            }
        }
        // dQ = scale · dS · K; dK = scale · dSᵀ · Q; dV = Pᵀ · dO. The scale multiplies the fp32 sums.
        let dqSum = x.products, dkSum = dqSum + t * hd, dvSum = dkSum + t * hd
        blocks.forEach { r0, r1 in
            gemm(m: r1 - r0, n: hd, k: r1, x.ds + r0 * t, x.k, dqSum + r0 * hd)
        }
        // Block r (stored [r1 - r0, r1]) contributes to key rows 0..<r1: the last block (all rows) goes first.
        blocks.forEach(reversed: true) { r0, r1 in
            gemm(m: r1, n: hd, k: r1 - r0, x.ds + r0 * t, transposeA: true, x.q + r0 * hd, dkSum, accumulate: r1 != t)
            gemm(m: r1, n: hd, k: r1 - r0, x.p + r0 * t, transposeA: true, x.dO + r0 * hd, dvSum, accumulate: r1 != t)
        }
        let dk = dq + hd, dv = dq + 2 * hd
        let scale = FloatVector(repeating: shape.scale)
        for i in 0..<t {
            var e = 0
            while e + 16 <= hd {
                storeVector(loadVector(dqSum + i * hd + e) * scale, dq + i * ld + e)
                storeVector(loadVector(dkSum + i * hd + e) * scale, dk + i * ld + e)
                e += 16
            }
            while e < hd {
                dq[i * ld + e] = dqSum[i * hd + e] * shape.scale
                dk[i * ld + e] = dkSum[i * hd + e] * shape.scale
                e += 1
            }
            (dv + i * ld).update(from: dvSum + i * hd, count: hd)
        }
    }

    /// One softmax row on bf16 values: from the first `count` unscaled scores in `row` (overwritten
    /// on the way), `S = bf16(scale · row)`; `p` receives `bf16(exp(S - max) / sum)` (with dropout
    /// `bf16(that · Z)`); returns the log-sum-exp of `S`.
    @inline(__always)
    static func softmaxRowBF16(_ row: UnsafeMutablePointer<Float>, into p: UnsafeMutablePointer<BFloat16>, count: Int,
                               scale: Float, dropout: DropoutMask?, firstCounter: UInt32) -> Float {
        let scaleVector = FloatVector(repeating: scale)
        var maxVector = FloatVector(repeating: -.infinity)
        var m = -Float.infinity
        var j = 0
        while j + 16 <= count {
            let sj = BFloat16Conversion.roundTrip(loadVector(row + j) * scaleVector)
            storeVector(sj, row + j)
            maxVector = vectorMax(maxVector, sj)
            j += 16
        }
        while j < count {
            row[j] = BFloat16(row[j] * scale).float
            m = max(m, row[j])
            j += 1
        }
        m = max(m, maxVector.max())
        let mVector = FloatVector(repeating: m)
        var sumVector = FloatVector(repeating: 0)
        var sum: Float = 0
        j = 0
        while j + 16 <= count {
            let e = fastExp(loadVector(row + j) - mVector)
            storeVector(e, row + j)
            sumVector += e
            j += 16
        }
        while j < count {
            row[j] = fastExp(row[j] - m)
            sum += row[j]
            j += 1
        }
        sum += sumVector.sum()
        let inverse = 1 / sum, inverseVector = FloatVector(repeating: inverse)
        j = 0
        while j + 16 <= count {
            var pj = BFloat16Conversion.roundTrip(loadVector(row + j) * inverseVector)
            if let dropout { pj *= dropout.factors(firstCounter &+ UInt32(j)) }
            storeVector(pj, row + j)
            j += 16
        }
        while j < count {
            var pj = BFloat16(row[j] * inverse).float
            if let dropout { pj *= dropout.factor(firstCounter &+ UInt32(j)) }
            row[j] = pj
            j += 1
        }
        BFloat16Conversion.roundSerial(out: p, inp: row, count: count)
        return m + logf(sum)
    }

    /// One backward row on bf16 values, over its first `keys` columns: from the unscaled scores
    /// and `dP` (fp32 GEMM outputs), `S = bf16(scale · score)`, `P = bf16(exp(S - lse))` and the
    /// bf16 `dP`; writes `ds = bf16(P ∘ (dP - D))` and the `P` that `dV = Pᵀ dO` reads (both rows of
    /// fp32 inputs are overwritten on the way). With dropout `dP` becomes `bf16(dP ∘ Z)` first and
    /// `p` receives the dropped `bf16(P ∘ Z)`.
    @inline(__always)
    static func backwardRowBF16(scores: UnsafeMutablePointer<Float>, dp: UnsafeMutablePointer<Float>, p: UnsafeMutablePointer<BFloat16>,
                                ds: UnsafeMutablePointer<BFloat16>, keys: Int, scale: Float, d: Float, lse: Float,
                                dropout: DropoutMask?, firstCounter: UInt32) {
        let scaleVector = FloatVector(repeating: scale)
        let lseVector = FloatVector(repeating: lse), dVector = FloatVector(repeating: d)
        var j = 0
        while j + 16 <= keys {
            let sj = BFloat16Conversion.roundTrip(loadVector(scores + j) * scaleVector)
            let pj = BFloat16Conversion.roundTrip(fastExp(sj - lseVector))
            var dpj = BFloat16Conversion.roundTrip(loadVector(dp + j))
            var kept = pj
            if let dropout {
                let z = dropout.factors(firstCounter &+ UInt32(j))
                dpj = BFloat16Conversion.roundTrip(dpj * z)
                kept = pj * z
            }
            storeVector(pj * (dpj - dVector), dp + j)
            storeVector(kept, scores + j)
            j += 16
        }
        while j < keys {
            let sj = BFloat16(scores[j] * scale).float
            let pj = BFloat16(fastExp(sj - lse)).float
            var dpj = BFloat16(dp[j]).float
            var kept = pj
            if let dropout {
                let z = dropout.factor(firstCounter &+ UInt32(j))
                dpj = BFloat16(dpj * z).float
                kept = pj * z
            }
            dp[j] = pj * (dpj - d)
            scores[j] = kept
            j += 1
        }
        BFloat16Conversion.roundSerial(out: ds, inp: dp, count: keys)
        BFloat16Conversion.roundSerial(out: p, inp: scores, count: keys)
    }

    /// Zeroes `count` bf16 values (a row's masked entries up to its block's end, which the
    /// block's GEMMs read).
    @inline(__always)
    static func zero(_ p: UnsafeMutablePointer<BFloat16>, count: Int) {
        if count > 0 { UnsafeMutableRawPointer(p).initializeMemory(as: UInt16.self, repeating: 0, count: count) }
    }
}

extension Attention.Blocks {
    /// Where query row `i` of a block-packed `[T, T]` matrix starts, and its length: block
    /// `r0..<r1`'s rows are stored from `r0 * T` on, `r1` apart (its columns `0..<r1`).
    @inline(__always)
    func packedRow(_ i: Int) -> (offset: Int, length: Int) {
        let r0 = i / rows * rows, r1 = min(r0 + rows, t)
        return (r0 * t + (i - r0) * r1, r1)
    }
}
