#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The attention core under `--bf16` on the CPU (causal, and BERT's padding mask), computed as Megatron's core attention
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
    /// rows of the block `r0..<r1` start at `r0 * T`, each as long as the keys it reads (see `BF16Keys`), so
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

    /// `C (+)= op(A) · op(B)` on packed bf16 operands, fp32 `C`, on the CPU (also in a GPU run).
    @inline(__always)
    private static func gemm(m: Int, n: Int, k: Int, _ a: UnsafePointer<BFloat16>, transposeA: Bool = false,
                             _ b: UnsafePointer<BFloat16>, transposeB: Bool = false,
                             _ c: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        BF16Matmul.hostGEMM(OneDNNMatmul.Shape(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB,
                                               type: .bfloat16, accumulate: accumulate),
                            a: a, b: b, bias: nil, c: c, backend: BF16Matmul.active)
    }

    /// `x · Yᵀ` of every block's rows of `x` against the block's keys in `y` (both `[T, headDim]`),
    /// into the block-packed fp32 `out`: the unscaled scores (`Q·Kᵀ`) or `dP` (`dO·Vᵀ`).
    private static func blockProducts(into out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<BFloat16>,
                                      _ y: UnsafePointer<BFloat16>, keys: BF16Keys, shape: Shape) {
        keys.forEachBlock { r0, r1, columns in
            gemm(m: r1 - r0, n: columns, k: shape.hd, x + r0 * shape.hd, y, transposeB: true, out + r0 * shape.t)
        }
    }

    /// The bf16 core's forward over every head, sequence `b`'s queries reading the keys `keys(b)`.
    static func forwardBF16(out: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>,
                            qkv: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>, shape: Shape,
                            keys: (Int) -> BF16Keys, dropout: DropoutStream?) {
        let t = shape.t
        withBF16Scratch(shape) { operands in
            forEachHead(shape) { b, h, rows, worker in
                forwardHeadBF16(out: out + shape.outOffset(b, h), logSumExp: logSumExp + (b * shape.heads + h) * t,
                                qkv: qkv + shape.qkvOffset(b, h), scores: scratch + worker * t * t, operands: operands(worker),
                                keys: keys(b), shape: shape, rows: rows, dropout: dropout?.mask(b, h))
            }
        }
    }

    /// The bf16 core's backward over every head (`keys` as in `forwardBF16`).
    static func backwardBF16(dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, out: UnsafePointer<Float>,
                             logSumExp: UnsafePointer<Float>, qkv: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                             shape: Shape, keys: (Int) -> BF16Keys, dropout: DropoutStream?) {
        let t = shape.t
        withBF16Scratch(shape) { operands in
            forEachHead(shape) { b, h, rows, worker in
                let workerScratch = scratch + worker * 2 * t * t
                backwardHeadBF16(dq: dqkv + shape.qkvOffset(b, h), dO: dout + shape.outOffset(b, h), o: out + shape.outOffset(b, h),
                                 lse: logSumExp + (b * shape.heads + h) * t, qkv: qkv + shape.qkvOffset(b, h),
                                 scores: workerScratch, dprobabilities: workerScratch + t * t, operands: operands(worker),
                                 keys: keys(b), shape: shape, rows: rows, dropout: dropout?.mask(b, h))
            }
        }
    }

    private static func forwardHeadBF16(out o: UnsafeMutablePointer<Float>, logSumExp lse: UnsafeMutablePointer<Float>,
                                qkv: UnsafePointer<Float>, scores: UnsafeMutablePointer<Float>, operands x: BF16HeadOperands,
                                keys: BF16Keys, shape: Shape, rows: RowRunner, dropout: DropoutMask?) {
        let t = shape.t, hd = shape.hd
        x.load(qkv: qkv, shape: shape)
        blockProducts(into: scores, x.q, x.k, keys: keys, shape: shape)
        rows(t) { range in
            for i in range {
                let row = keys.row(i)
                lse[i] = softmaxRowBF16(scores + row.offset, into: x.p + row.offset, count: row.count, scale: shape.scale,
                                        dropout: dropout, firstCounter: UInt32(truncatingIfNeeded: i * t))
                zero(x.p + row.offset + row.count, count: row.length - row.count)
            }
        }
        keys.forEachBlock { r0, r1, columns in
            gemm(m: r1 - r0, n: hd, k: columns, x.p + r0 * t, x.v, x.products + r0 * hd)
        }
        for i in 0..<t { (o + i * shape.channels).update(from: x.products + i * hd, count: hd) }
    }

    private static func backwardHeadBF16(dq: UnsafeMutablePointer<Float>, dO: UnsafePointer<Float>, o: UnsafePointer<Float>,
                                 lse: UnsafePointer<Float>, qkv: UnsafePointer<Float>, scores: UnsafeMutablePointer<Float>,
                                 dprobabilities: UnsafeMutablePointer<Float>, operands x: BF16HeadOperands,
                                 keys: BF16Keys, shape: Shape, rows: RowRunner, dropout: DropoutMask?) {
        let t = shape.t, hd = shape.hd, ld = shape.ld, channels = shape.channels
        x.load(qkv: qkv, shape: shape)
        for i in 0..<t {
            BFloat16Conversion.roundSerial(out: x.dO + i * hd, inp: dO + i * channels, count: hd)
        }
        // S again, and dP = dO · Vᵀ.
        blockProducts(into: scores, x.q, x.k, keys: keys, shape: shape)
        blockProducts(into: dprobabilities, x.dO, x.v, keys: keys, shape: shape)
        // P = bf16(exp(S - lse)); dS = bf16(P ∘ (dP - D)), with dropout's factors where it ran.
        rows(t) { range in
            for i in range {
                let row = keys.row(i)
                let d = vectorDot(dO + i * channels, o + i * channels, hd)
                backwardRowBF16(scores: scores + row.offset, dp: dprobabilities + row.offset, p: x.p + row.offset,
                                ds: x.ds + row.offset, keys: row.count, scale: shape.scale, d: d, lse: lse[i],
                                dropout: dropout, firstCounter: UInt32(truncatingIfNeeded: i * t))
                zero(x.p + row.offset + row.count, count: row.length - row.count)
                zero(x.ds + row.offset + row.count, count: row.length - row.count)
            }
        }
        // dQ = scale · dS · K; dK = scale · dSᵀ · Q; dV = Pᵀ · dO. The scale multiplies the fp32 sums.
        let dqSum = x.products, dkSum = dqSum + t * hd, dvSum = dkSum + t * hd
        keys.forEachBlock { r0, r1, columns in
            gemm(m: r1 - r0, n: hd, k: columns, x.ds + r0 * t, x.k, dqSum + r0 * hd)
        }
        // Block r (stored [r1 - r0, columns]) contributes to key rows 0..<columns; the last block
        // reads the most keys (causal: all) and goes first.
        var first = true
        keys.forEachBlock(reversed: true) { r0, r1, columns in
            gemm(m: columns, n: hd, k: r1 - r0, x.ds + r0 * t, transposeA: true, x.q + r0 * hd, dkSum, accumulate: !first)
            gemm(m: columns, n: hd, k: r1 - r0, x.p + r0 * t, transposeA: true, x.dO + r0 * hd, dvSum, accumulate: !first)
            first = false
        }
        let dk = dq + hd, dv = dq + 2 * hd, read = keys.keysRead
        let scale = FloatVector(repeating: shape.scale)
        for i in 0..<t {
            var e = 0
            while e + 16 <= hd {
                storeVector(loadVector(dqSum + i * hd + e) * scale, dq + i * ld + e)
                storeVector(i < read ? loadVector(dkSum + i * hd + e) * scale : FloatVector(), dk + i * ld + e)
                e += 16
            }
            while e < hd {
                dq[i * ld + e] = dqSum[i * hd + e] * shape.scale
                dk[i * ld + e] = i < read ? dkSum[i * hd + e] * shape.scale : 0
                e += 1
            }
            if i < read {
                (dv + i * ld).update(from: dvSum + i * hd, count: hd)
            } else {  // a padding key: nothing attends to it
                (dv + i * ld).update(repeating: 0, count: hd)
            }
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

extension Attention {
    /// The keys each query row of a head reads in the bf16 core, and where its row of the
    /// block-packed `[T, T]` matrices lies: causal (row `i` reads keys `0...i`; block `r0..<r1`
    /// stores `r1` columns per row) or padded (every row reads the sequence's `keys` keys, one
    /// block of all rows, `keys` rounded up to a multiple of 32 columns each, so that the GEMMs
    /// see a few shapes rather than one per sequence length: oneDNN creates a primitive per shape,
    /// which costs milliseconds; the extra columns get zero probabilities and gradients).
    struct BF16Keys {
        let blocks: Blocks
        /// The padded mask's key count; nil for the causal mask.
        let padded: Int?

        /// Keys any row reads: the rows of dK and dV that get a gradient.
        var keysRead: Int { padded ?? blocks.t }

        /// Stored columns of a padded row.
        private var paddedColumns: Int? { padded.map { min(blocks.t, ($0 + 31) / 32 * 32) } }

        /// Calls `body(r0, r1, columns)` for each block of query rows and the keys it reads.
        @inline(__always)
        func forEachBlock(reversed: Bool = false, _ body: (Int, Int, Int) -> Void) {
            blocks.forEach(reversed: reversed) { r0, r1 in body(r0, r1, paddedColumns ?? r1) }
        }

        /// Row `i`: its offset in a block-packed matrix, its stored length and how many keys it reads.
        @inline(__always)
        func row(_ i: Int) -> (offset: Int, length: Int, count: Int) {
            let r0 = i / blocks.rows * blocks.rows, columns = paddedColumns ?? min(r0 + blocks.rows, blocks.t)
            return (r0 * blocks.t + (i - r0) * columns, columns, padded ?? i + 1)
        }
    }
}
