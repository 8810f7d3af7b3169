#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CBLAS
import Accelerator

/// Multi-head self-attention over a fused QKV activation: causal (GPT), or bidirectional over
/// each sequence's keys before its padding (BERT, `Mask.padding`, in `PaddedAttention.swift`).
///
/// `qkv` is `[batch, seqLength, 3 * channels]`; within a token's row, head `h` owns the
/// `3 * headDim` values starting at `h * 3 * headDim`, ordered query, key, value (Megatron's
/// per-head interleaved layout, so a tensor-parallel rank's heads are one contiguous slice).
/// The output is `[batch, seqLength, channels]` with head `h` at columns `h * headDim`.
///
/// Scores are `q·k / sqrt(headDim)` for keys at or before the query (causal), softmax-normalized.
/// The forward keeps only each row's log-sum-exp; the backward recomputes the probabilities, so
/// no `[T, T]` matrix per head is stored between passes (one `[T, T]` scratch per thread).
/// Products are `cblas_sgemm` calls over row blocks that skip the masked upper triangle.
///
/// With `dropout` the probabilities are dropped out after the softmax (Megatron's
/// `--attention-dropout`): the output is `(P ∘ Z / (1-p)) V`, the log-sum-exp is the undropped
/// one, and the backward regenerates the mask `Z` (`DropoutMask`, element `(i, j)` of a head at
/// counter `i * T + j`) instead of reading it from memory.
public enum Attention {
    /// Dropout on the attention probabilities: sequence `b` of the call, head `h` of the call
    /// draws the mask keyed by the global sequence `firstSequence + b` and global head
    /// `firstHead + h`, so a tensor-parallel rank's heads draw what they would on one rank.
    public struct DropoutStream: Sendable, Equatable {
        public var probability: Float
        /// The layer's attention-dropout stream (a `DropoutMask.key`).
        public var key: UInt64
        public var firstSequence: Int
        public var firstHead: Int

        public init(probability: Float, key: UInt64, firstSequence: Int, firstHead: Int) {
            self.probability = probability
            self.key = key
            self.firstSequence = firstSequence
            self.firstHead = firstHead
        }

        /// The mask of sequence `b`, head `h` of the call.
        func mask(_ b: Int, _ h: Int) -> DropoutMask {
            DropoutMask(probability: probability, key: DropoutMask.key(seed: key, firstSequence + b, firstHead + h))
        }
    }

    /// Default rows per GEMM block; blocks above the diagonal are never computed.
    public static let defaultBlockRows = 256

    /// Scratch floats `forward` and `backward` need: two `[T, T]` matrices per pool thread
    /// (the forward uses the first).
    public static func scratchCount(seqLength: Int) -> Int {
        2 * ThreadPool.current.threadCount * seqLength * seqLength
    }

    /// Which keys a query attends to.
    public enum Mask {
        /// Keys at or before the query (GPT).
        case causal
        /// Every key of sequence `b` before `keyLengths[b]` (BERT's padding mask, bidirectional:
        /// the keys of padding tokens are left out; `1 <= keyLengths[b] <= seqLength`). Queries
        /// at padding positions attend to the same keys, as Hugging Face's BERT computes them.
        case padding(keyLengths: UnsafePointer<Int32>)
    }

    /// Writes the attention output into `out` and each query row's log-sum-exp of scaled scores
    /// into `logSumExp` (`[batch, heads, seqLength]`).
    ///
    /// `bf16GEMMs` (the model's `--bf16`): the causal core computes as Megatron's core attention
    /// under `--bf16`, on the CPU (`AttentionBF16.swift`) as on a GPU: Q, K, V, the scores, the
    /// probabilities and, in the backward, the output gradient and the gradients of the
    /// probabilities and scores are bf16, the GEMMs accumulate in fp32 and the softmax computes in
    /// fp32; likewise under the padding mask (BERT).
    public static func forward(out: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>,
                               qkv: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                               batch: Int, seqLength: Int, heads: Int, channels: Int, mask: Mask = .causal,
                               dropout: DropoutStream? = nil, bf16GEMMs: Bool = false,
                               blockRows: Int = defaultBlockRows) {
        if case .padding(let keyLengths) = mask {
            return paddedForward(out: out, logSumExp: logSumExp, qkv: qkv, scratch: scratch, batch: batch,
                                 seqLength: seqLength, heads: heads, channels: channels, keyLengths: keyLengths,
                                 dropout: dropout, bf16GEMMs: bf16GEMMs)
        }
        if let gpu = GPU.active, dropout == nil {  // with attention dropout the CPU path runs (on managed memory)
            return gpu.attentionForward(out: out, logSumExp: logSumExp, qkv: qkv, batch: batch, seqLength: seqLength,
                                        heads: heads, channels: channels, bf16GEMMs: bf16GEMMs)
        }
        GPU.hostWillRead()  // this CPU path may read GPU results (managed memory)
        let shape = Shape(batch: batch, t: seqLength, heads: heads, channels: channels, blockRows: blockRows)
        if bf16GEMMs {
            return forwardBF16(out: out, logSumExp: logSumExp, qkv: qkv, scratch: scratch, shape: shape,
                               keys: { _ in BF16Keys(blocks: shape.blocks, padded: nil) }, dropout: dropout)
        }
        forEachHead(shape) { b, h, rows, worker in
            let q = qkv + shape.qkvOffset(b, h)
            forwardHead(out: out + shape.outOffset(b, h), logSumExp: logSumExp + (b * heads + h) * seqLength,
                        q: q, k: q + shape.hd, v: q + 2 * shape.hd,
                        probabilities: scratch + worker * seqLength * seqLength, shape: shape, rows: rows,
                        dropout: dropout?.mask(b, h))
        }
    }

    /// Backward of `forward`: overwrites `dqkv` with the gradient of the queries, keys and values.
    /// `out` and `logSumExp` are the forward's results for the same `qkv` (and `dropout`).
    public static func backward(dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                out: UnsafePointer<Float>, logSumExp: UnsafePointer<Float>,
                                qkv: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                                batch: Int, seqLength: Int, heads: Int, channels: Int, mask: Mask = .causal,
                                dropout: DropoutStream? = nil, bf16GEMMs: Bool = false,
                                blockRows: Int = defaultBlockRows) {
        if case .padding(let keyLengths) = mask {
            return paddedBackward(dqkv: dqkv, dout: dout, out: out, logSumExp: logSumExp, qkv: qkv, scratch: scratch,
                                  batch: batch, seqLength: seqLength, heads: heads, channels: channels,
                                  keyLengths: keyLengths, dropout: dropout, bf16GEMMs: bf16GEMMs)
        }
        if let gpu = GPU.active, dropout == nil {
            return gpu.attentionBackward(dqkv: dqkv, dout: dout, out: out, logSumExp: logSumExp, qkv: qkv, batch: batch,
                                         seqLength: seqLength, heads: heads, channels: channels, bf16GEMMs: bf16GEMMs)
        }
        GPU.hostWillRead()
        let shape = Shape(batch: batch, t: seqLength, heads: heads, channels: channels, blockRows: blockRows)
        if bf16GEMMs {
            return backwardBF16(dqkv: dqkv, dout: dout, out: out, logSumExp: logSumExp, qkv: qkv, scratch: scratch, shape: shape,
                                keys: { _ in BF16Keys(blocks: shape.blocks, padded: nil) }, dropout: dropout)
        }
        forEachHead(shape) { b, h, rows, worker in
            let q = qkv + shape.qkvOffset(b, h)
            let dq = dqkv + shape.qkvOffset(b, h)
            let workerScratch = scratch + worker * 2 * seqLength * seqLength
            backwardHead(dq: dq, dk: dq + shape.hd, dv: dq + 2 * shape.hd, dO: dout + shape.outOffset(b, h),
                         o: out + shape.outOffset(b, h), lse: logSumExp + (b * heads + h) * seqLength,
                         q: q, k: q + shape.hd, v: q + 2 * shape.hd,
                         probabilities: workerScratch, dscores: workerScratch + seqLength * seqLength,
                         shape: shape, rows: rows, dropout: dropout?.mask(b, h))
        }
    }

    /// Sizes and strides of one attention call.
    struct Shape {
        let batch: Int, t: Int, heads: Int, channels: Int
        let hd: Int, ld: Int, scale: Float
        let blocks: Blocks

        init(batch: Int, t: Int, heads: Int, channels: Int, blockRows: Int) {
            self.batch = batch
            self.t = t
            self.heads = heads
            self.channels = channels
            hd = channels / heads
            ld = 3 * channels
            scale = 1 / Float(hd).squareRoot()
            blocks = Blocks(t: t, rows: blockRows)
        }

        func qkvOffset(_ b: Int, _ h: Int) -> Int { b * t * ld + h * 3 * hd }
        func outOffset(_ b: Int, _ h: Int) -> Int { b * t * channels + h * hd }
    }

    /// Runs the row-wise loops of one head: in parallel on the pool, or inline.
    typealias RowRunner = (Int, (Range<Int>) -> Void) -> Void

    /// Calls `body(b, h, rows, worker)` for every head. With several pool threads and at least as
    /// many heads, the threads take whole heads with single-threaded GEMMs (the small attention
    /// GEMMs scale poorly inside OpenBLAS); otherwise, or while other ranks share this process's
    /// OpenBLAS (`SharedBLASThreads`), heads run in turn with threaded GEMMs and row-parallel softmax.
    static func forEachHead(_ shape: Shape, _ body: (Int, Int, RowRunner, Int) -> Void) {
        let pool = ThreadPool.current
        let pairs = shape.batch * shape.heads
        if pool.threadCount > 1 && pairs >= pool.threadCount && SharedBLASThreads.maySwitch {
            let inline: RowRunner = { count, rowBody in rowBody(0..<count) }
            withSingleThreadedBLAS {
                pool.run(chunks: pool.threadCount) { worker in
                    for pair in (pairs * worker / pool.threadCount)..<(pairs * (worker + 1) / pool.threadCount) {
                        body(pair / shape.heads, pair % shape.heads, inline, worker)
                    }
                }
            }
        } else {
            let parallel: RowRunner = { count, rowBody in
                pool.parallelFor(count, minimumPerThread: max(1, 8192 / shape.t), rowBody)
            }
            for pair in 0..<pairs {
                body(pair / shape.heads, pair % shape.heads, parallel, 0)
            }
        }
    }

    private static func forwardHead(out o: UnsafeMutablePointer<Float>, logSumExp lse: UnsafeMutablePointer<Float>,
                                    q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                    probabilities: UnsafeMutablePointer<Float>, shape: Shape, rows: RowRunner,
                                    dropout: DropoutMask?) {
        let t = shape.t
        let blocks = shape.blocks
        scores(into: probabilities, q: q, k: k, ld: shape.ld, scale: shape.scale, blocks: blocks, hd: shape.hd)
        rows(t) { range in
            for i in range {
                let row = probabilities + i * t
                lse[i] = softmaxInPlace(row, count: i + 1)
                dropout?.apply(row, count: i + 1, firstCounter: UInt32(truncatingIfNeeded: i * t))
                blocks.zeroMasked(row, row: i)
            }
        }
        blocks.forEach { r0, r1 in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                        Int32(r1 - r0), Int32(shape.hd), Int32(r1),
                        1, probabilities + r0 * t, Int32(t), v, Int32(shape.ld),
                        0, o + r0 * shape.channels, Int32(shape.channels))
        }
    }

    private static func backwardHead(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                                     dv: UnsafeMutablePointer<Float>, dO: UnsafePointer<Float>,
                                     o: UnsafePointer<Float>, lse: UnsafePointer<Float>,
                                     q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                     probabilities: UnsafeMutablePointer<Float>, dscores: UnsafeMutablePointer<Float>,
                                     shape: Shape, rows: RowRunner, dropout: DropoutMask?) {
        let t = shape.t, hd = shape.hd, ld = shape.ld, channels = shape.channels, scale = shape.scale
        let blocks = shape.blocks
        // Recompute P, and dP = dO · Vᵀ.
        scores(into: probabilities, q: q, k: k, ld: ld, scale: scale, blocks: blocks, hd: hd)
        blocks.forEach { r0, r1 in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                        Int32(r1 - r0), Int32(r1), Int32(hd),
                        1, dO + r0 * channels, Int32(channels), v, Int32(ld),
                        0, dscores + r0 * t, Int32(t))
        }
        // P = exp(S - lse); dS = P * (dP - rowsum(dO * O)).
        if let dropout {
            rows(t) { range in
                for i in range {
                    droppedBackwardRow(i, keys: i + 1, p: probabilities + i * t, ds: dscores + i * t,
                                       d: vectorDot(dO + i * channels, o + i * channels, hd), lse: lse[i], t: t, mask: dropout)
                    blocks.zeroMasked(probabilities + i * t, row: i)
                    blocks.zeroMasked(dscores + i * t, row: i)
                }
            }
        } else {
            rows(t) { range in
                for i in range {
                    let p = probabilities + i * t
                    let ds = dscores + i * t
                    backwardRow(keys: i + 1, p: p, ds: ds, d: vectorDot(dO + i * channels, o + i * channels, hd), lse: lse[i])
                    blocks.zeroMasked(p, row: i)
                    blocks.zeroMasked(ds, row: i)
                }
            }
        }
        // dQ = scale · dS · K; dK = scale · dSᵀ · Q; dV = Pᵀ · dO.
        blocks.forEach { r0, r1 in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                        Int32(r1 - r0), Int32(hd), Int32(r1),
                        scale, dscores + r0 * t, Int32(t), k, Int32(ld),
                        0, dq + r0 * ld, Int32(ld))
        }
        // Block r contributes to key rows 0..<r1: the last block (all rows) goes first.
        blocks.forEach(reversed: true) { r0, r1 in
            let beta: Float = r1 == t ? 0 : 1
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                        Int32(r1), Int32(hd), Int32(r1 - r0),
                        scale, dscores + r0 * t, Int32(t), q + r0 * ld, Int32(ld),
                        beta, dk, Int32(ld))
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                        Int32(r1), Int32(hd), Int32(r1 - r0),
                        1, probabilities + r0 * t, Int32(t), dO + r0 * channels, Int32(channels),
                        beta, dv, Int32(ld))
        }
    }

    /// Turns the first `count` scores of `row` into their softmax in place and returns their
    /// log-sum-exp.
    @inline(__always)
    static func softmaxInPlace(_ row: UnsafeMutablePointer<Float>, count: Int) -> Float {
        let m = vectorMax(row, count)
        let mVector = FloatVector(repeating: m)
        var acc = FloatVector(repeating: 0)
        var j = 0
        while j + 16 <= count {
            let e = fastExp(loadVector(row + j) - mVector)
            storeVector(e, row + j)
            acc += e
            j += 16
        }
        var sum = acc.sum()
        while j < count {
            row[j] = fastExp(row[j] - m)
            sum += row[j]
            j += 1
        }
        scaleInPlace(row, count: count, by: 1 / sum)
        return m + logf(sum)
    }

    /// One row of the backward without dropout, over its first `keys` columns: the scores in `p`
    /// become the probabilities `P = exp(S - lse)` and `ds` (holding `dP`) becomes
    /// `dS = P ∘ (dP - D)` (`D` = `dO_i · O_i`).
    @inline(__always)
    static func backwardRow(keys: Int, p: UnsafeMutablePointer<Float>, ds: UnsafeMutablePointer<Float>, d: Float, lse: Float) {
        let lseVector = FloatVector(repeating: lse), dVector = FloatVector(repeating: d)
        var j = 0
        while j + 16 <= keys {
            let pj = fastExp(loadVector(p + j) - lseVector)
            storeVector(pj, p + j)
            storeVector(pj * (loadVector(ds + j) - dVector), ds + j)
            j += 16
        }
        while j < keys {
            p[j] = fastExp(p[j] - lse)
            ds[j] = p[j] * (ds[j] - d)
            j += 1
        }
    }

    /// Row `i` of the backward with dropout, over its first `keys` columns: with `Z` the mask times
    /// `1/(1-p)`, the gradient of the undropped probabilities is `dP ∘ Z`, so
    /// `dS = P ∘ (dP ∘ Z - D)` (`D` = `dO_i · O_i`, `O` the dropped output), and `p` becomes the
    /// dropped `P ∘ Z` that `dV = (P ∘ Z)ᵀ dO` reads.
    @inline(__always)
    static func droppedBackwardRow(_ i: Int, keys: Int, p: UnsafeMutablePointer<Float>, ds: UnsafeMutablePointer<Float>,
                                   d: Float, lse: Float, t: Int, mask: DropoutMask) {
        let lseVector = FloatVector(repeating: lse), dVector = FloatVector(repeating: d)
        let first = UInt32(truncatingIfNeeded: i * t)
        var j = 0
        while j + 16 <= keys {
            let pj = fastExp(loadVector(p + j) - lseVector)
            let z = mask.factors(first &+ UInt32(j))
            storeVector(pj * (loadVector(ds + j) * z - dVector), ds + j)
            storeVector(pj * z, p + j)
            j += 16
        }
        while j < keys {
            let pj = fastExp(p[j] - lse)
            let z = mask.factor(first &+ UInt32(j))
            ds[j] = pj * (ds[j] * z - d)
            p[j] = pj * z
            j += 1
        }
    }

    /// Scaled scores `S[i, j] = scale * q_i · k_j` for every block's columns `0..<r1`
    /// (entries above the diagonal inside a block are computed but unused).
    private static func scores(into s: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
                               k: UnsafePointer<Float>, ld: Int, scale: Float, blocks: Blocks, hd: Int) {
        let t = blocks.t
        blocks.forEach { r0, r1 in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                        Int32(r1 - r0), Int32(r1), Int32(hd),
                        scale, q + r0 * ld, Int32(ld), k, Int32(ld),
                        0, s + r0 * t, Int32(t))
        }
    }

    /// The split of `t` query rows into blocks of `rows`.
    struct Blocks {
        let t: Int
        let rows: Int

        /// Calls `body(r0, r1)` for each block of query rows.
        @inline(__always)
        func forEach(reversed: Bool = false, _ body: (Int, Int) -> Void) {
            let count = (t + rows - 1) / rows
            for index in 0..<count {
                let block = reversed ? count - 1 - index : index
                let r0 = block * rows
                body(r0, min(r0 + rows, t))
            }
        }

        /// Zeroes row `row`'s masked entries up to the end of its block (the columns that the
        /// block's GEMMs read).
        @inline(__always)
        func zeroMasked(_ p: UnsafeMutablePointer<Float>, row: Int) {
            let blockEnd = min((row / rows + 1) * rows, t)
            if blockEnd > row + 1 {
                (p + row + 1).update(repeating: 0, count: blockEnd - row - 1)
            }
        }
    }

    @inline(__always)
    static func scaleInPlace(_ x: UnsafeMutablePointer<Float>, count: Int, by factor: Float) {
        let f = FloatVector(repeating: factor)
        var j = 0
        while j + 16 <= count {
            storeVector(loadVector(x + j) * f, x + j)
            j += 16
        }
        while j < count {
            x[j] *= factor
            j += 1
        }
    }
}
