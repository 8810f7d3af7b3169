import CBLAS
import Accelerator

/// The bidirectional attention of BERT (`Attention.Mask.padding`): every query of sequence `b`
/// attends to the keys `0..<keyLengths[b]`, i.e. all tokens but the padding at the end. The
/// same layout, scaling, log-sum-exp bookkeeping and dropout streams as the causal path; each
/// head is three plain GEMMs over the `[T, L]` score block (under `--bf16` the bf16 core of
/// `AttentionBF16.swift`, with every row reading the sequence's keys).
extension Attention {
    static func paddedForward(out: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>,
                              qkv: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                              batch: Int, seqLength: Int, heads: Int, channels: Int,
                              keyLengths: UnsafePointer<Int32>, dropout: DropoutStream?, bf16GEMMs: Bool) {
        GPU.hostWillRead()
        let shape = Shape(batch: batch, t: seqLength, heads: heads, channels: channels, blockRows: seqLength)
        if bf16GEMMs {
            return forwardBF16(out: out, logSumExp: logSumExp, qkv: qkv, scratch: scratch, shape: shape,
                               keys: { BF16Keys(blocks: shape.blocks, padded: keyCount(keyLengths[$0], shape)) }, dropout: dropout)
        }
        forEachHead(shape) { b, h, rows, worker in
            let q = qkv + shape.qkvOffset(b, h)
            paddedForwardHead(out: out + shape.outOffset(b, h), logSumExp: logSumExp + (b * heads + h) * seqLength,
                              q: q, k: q + shape.hd, v: q + 2 * shape.hd, keys: keyCount(keyLengths[b], shape),
                              probabilities: scratch + worker * seqLength * seqLength, shape: shape, rows: rows,
                              dropout: dropout?.mask(b, h))
        }
    }

    static func paddedBackward(dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                               out: UnsafePointer<Float>, logSumExp: UnsafePointer<Float>,
                               qkv: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                               batch: Int, seqLength: Int, heads: Int, channels: Int,
                               keyLengths: UnsafePointer<Int32>, dropout: DropoutStream?, bf16GEMMs: Bool) {
        GPU.hostWillRead()
        let shape = Shape(batch: batch, t: seqLength, heads: heads, channels: channels, blockRows: seqLength)
        if bf16GEMMs {
            return backwardBF16(dqkv: dqkv, dout: dout, out: out, logSumExp: logSumExp, qkv: qkv, scratch: scratch, shape: shape,
                                keys: { BF16Keys(blocks: shape.blocks, padded: keyCount(keyLengths[$0], shape)) }, dropout: dropout)
        }
        forEachHead(shape) { b, h, rows, worker in
            let q = qkv + shape.qkvOffset(b, h)
            let dq = dqkv + shape.qkvOffset(b, h)
            let workerScratch = scratch + worker * 2 * seqLength * seqLength
            paddedBackwardHead(dq: dq, dk: dq + shape.hd, dv: dq + 2 * shape.hd, dO: dout + shape.outOffset(b, h),
                               o: out + shape.outOffset(b, h), lse: logSumExp + (b * heads + h) * seqLength,
                               q: q, k: q + shape.hd, v: q + 2 * shape.hd, keys: keyCount(keyLengths[b], shape),
                               probabilities: workerScratch, dscores: workerScratch + seqLength * seqLength,
                               shape: shape, rows: rows, dropout: dropout?.mask(b, h))
        }
    }

    private static func keyCount(_ length: Int32, _ shape: Shape) -> Int {
        precondition(length >= 1 && Int(length) <= shape.t, "Attention: a key length must be in 1...\(shape.t), got \(length)")
        return Int(length)
    }

    /// `S = scale · Q Kᵀ` over the `keys` valid keys, softmax per row (log-sum-exp kept), `O = P V`.
    private static func paddedForwardHead(out o: UnsafeMutablePointer<Float>, logSumExp lse: UnsafeMutablePointer<Float>,
                                          q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                          keys: Int, probabilities: UnsafeMutablePointer<Float>, shape: Shape,
                                          rows: RowRunner, dropout: DropoutMask?) {
        let t = shape.t, ld = shape.ld, hd = shape.hd
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(t), Int32(keys), Int32(hd),
                    shape.scale, q, Int32(ld), k, Int32(ld), 0, probabilities, Int32(t))
        rows(t) { range in
            for i in range {
                let row = probabilities + i * t
                lse[i] = softmaxInPlace(row, count: keys)
                dropout?.apply(row, count: keys, firstCounter: UInt32(truncatingIfNeeded: i * t))
            }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(t), Int32(hd), Int32(keys),
                    1, probabilities, Int32(t), v, Int32(ld), 0, o, Int32(shape.channels))
    }

    /// Recomputes `P` from the log-sum-exp; `dS = P ∘ (dO Vᵀ - rowsum(dO ∘ O))`, then
    /// `dQ = scale · dS K`, `dK = scale · dSᵀ Q` and `dV = Pᵀ dO` for the valid keys, zero for
    /// the padding keys (nothing attends to them).
    private static func paddedBackwardHead(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                                           dv: UnsafeMutablePointer<Float>, dO: UnsafePointer<Float>,
                                           o: UnsafePointer<Float>, lse: UnsafePointer<Float>,
                                           q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                           keys: Int, probabilities: UnsafeMutablePointer<Float>,
                                           dscores: UnsafeMutablePointer<Float>, shape: Shape, rows: RowRunner,
                                           dropout: DropoutMask?) {
        let t = shape.t, hd = shape.hd, ld = shape.ld, channels = shape.channels, scale = shape.scale
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(t), Int32(keys), Int32(hd),
                    scale, q, Int32(ld), k, Int32(ld), 0, probabilities, Int32(t))
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(t), Int32(keys), Int32(hd),
                    1, dO, Int32(channels), v, Int32(ld), 0, dscores, Int32(t))
        rows(t) { range in
            for i in range {
                let p = probabilities + i * t, ds = dscores + i * t
                let d = vectorDot(dO + i * channels, o + i * channels, hd)
                if let dropout {
                    droppedBackwardRow(i, keys: keys, p: p, ds: ds, d: d, lse: lse[i], t: t, mask: dropout)
                } else {
                    backwardRow(keys: keys, p: p, ds: ds, d: d, lse: lse[i])
                }
            }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(t), Int32(hd), Int32(keys),
                    scale, dscores, Int32(t), k, Int32(ld), 0, dq, Int32(ld))
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(keys), Int32(hd), Int32(t),
                    scale, dscores, Int32(t), q, Int32(ld), 0, dk, Int32(ld))
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(keys), Int32(hd), Int32(t),
                    1, probabilities, Int32(t), dO, Int32(channels), 0, dv, Int32(ld))
        for row in keys..<t {
            (dk + row * ld).update(repeating: 0, count: hd)
            (dv + row * ld).update(repeating: 0, count: hd)
        }
    }
}
