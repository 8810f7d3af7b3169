import Foundation
import Kernels
import Testing
import TestSupport

/// The causal attention core with `bf16GEMMs` (`--bf16`) against a scalar model of Megatron's
/// bf16 core attention: every value the kernel rounds to bf16 (Q, K, V, dO, the scaled scores,
/// the probabilities, dP, dS, and with dropout the dropped probabilities and the undropped dP) is
/// rounded at the same point in the model, with sums in Float64. Only summation order and `exp`
/// differ, so the kernel tracks the model far closer than the fp32 core (which rounds none of
/// them) does.
@Suite struct AttentionBF16Tests {
    /// Norm-wise. A sum that lands on the other side of a bf16 rounding boundary than the model's
    /// moves one score or probability by a bf16 step, which costs up to ~1e-4 here; the fp32 core
    /// is more than 2e-3 from the model (checked below).
    static let tolerance = 3e-4

    /// Several row blocks and one; heads over threads and one head with row-parallel rows; with
    /// and without attention dropout; causal, and BERT's padding mask (the padding keys of each
    /// sequence read by no query; the third sequence reads a single key).
    @Test(arguments: [(16, 2, 3, 0, false), (256, 2, 3, 0, false), (16, 1, 1, 0, false), (16, 2, 2, 0.3, false),
                      (256, 1, 1, 0.3, false), (37, 2, 3, 0, true), (37, 1, 1, 0, true), (37, 2, 2, 0.3, true),
                      (37, 3, 2, 0, true)]
          as [(Int, Int, Int, Float, Bool)])
    func matchesTheRoundingModel(blockRows: Int, batch: Int, heads: Int, dropoutProbability: Float, padded: Bool) {
        let t = 37, d = 24, c = d * heads
        let keyLengths: [Int32]? = padded ? Array([30, 37, 1].prefix(batch)) : nil
        let stream = dropoutProbability > 0
            ? Attention.DropoutStream(probability: dropoutProbability, key: 5, firstSequence: 3, firstHead: 1) : nil
        let qkv = randomFloats(batch * t * 3 * c, seed: 31)
        let dout = randomFloats(batch * t * c, seed: 32)
        func run(bf16: Bool) -> (out: [Float], lse: [Float], dqkv: [Float]) {
            var out = [Float](repeating: 0, count: batch * t * c)
            var lse = [Float](repeating: 0, count: batch * heads * t)
            var dqkv = [Float](repeating: 7, count: qkv.count)
            var scratch = [Float](repeating: 0, count: Attention.scratchCount(seqLength: t))
            let lengths = keyLengths ?? []
            lengths.withUnsafeBufferPointer { lengths in
                let mask = padded ? Attention.Mask.padding(keyLengths: lengths.baseAddress!) : .causal
                Attention.forward(out: &out, logSumExp: &lse, qkv: qkv, scratch: &scratch, batch: batch, seqLength: t,
                                  heads: heads, channels: c, mask: mask, dropout: stream, bf16GEMMs: bf16,
                                  blockRows: blockRows)
                Attention.backward(dqkv: &dqkv, dout: dout, out: out, logSumExp: lse, qkv: qkv, scratch: &scratch,
                                   batch: batch, seqLength: t, heads: heads, channels: c, mask: mask, dropout: stream,
                                   bf16GEMMs: bf16, blockRows: blockRows)
            }
            return (out, lse, dqkv)
        }
        let model = BF16AttentionModel(qkv: qkv, dout: dout, batch: batch, t: t, heads: heads, channels: c, keyLengths: keyLengths,
                                       dropout: stream.map { s in { b, h in
                                           DropoutMask(probability: s.probability,
                                                       key: DropoutMask.key(seed: s.key, s.firstSequence + b, s.firstHead + h))
                                       } })
        let bf16 = run(bf16: true), fp32 = run(bf16: false)
        #expect(relativeError(bf16.out, model.out) < Self.tolerance)
        #expect(relativeError(bf16.lse, model.lse) < Self.tolerance)
        #expect(relativeError(bf16.dqkv, model.dqkv) < Self.tolerance)
        // The model is not the fp32 core: the check above sees the rounding.
        #expect(relativeError(fp32.out, model.out) > 2e-3)
        #expect(relativeError(fp32.dqkv, model.dqkv) > 2e-3)
        // And bf16 stays an approximation of fp32 attention.
        #expect(relativeError(bf16.out, fp32.out) < 2e-2)
        #expect(relativeError(bf16.dqkv, fp32.dqkv) < 2e-2)
    }
}

/// Scalar attention with Megatron's bf16 rounding points (see `AttentionBF16Tests`): causal, or
/// with `keyLengths` every query of sequence `b` over keys `0..<keyLengths[b]`.
private struct BF16AttentionModel {
    var out: [Double], lse: [Double], dqkv: [Double]

    init(qkv: [Float], dout: [Float], batch: Int, t: Int, heads: Int, channels c: Int, keyLengths: [Int32]?,
         dropout: ((Int, Int) -> DropoutMask)?) {
        let d = c / heads, ld = 3 * c
        let scale = 1 / Double(d).squareRoot()
        func bf16(_ x: Double) -> Double { Double(BFloat16(Float(x)).float) }
        out = [Double](repeating: 0, count: batch * t * c)
        lse = [Double](repeating: 0, count: batch * heads * t)
        dqkv = [Double](repeating: 0, count: batch * t * ld)
        for b in 0..<batch {
            for h in 0..<heads {
                func at(_ token: Int, _ section: Int, _ j: Int) -> Int { (b * t + token) * ld + h * 3 * d + section * d + j }
                func outAt(_ token: Int, _ j: Int) -> Int { (b * t + token) * c + h * d + j }
                let q = { (i: Int, j: Int) in bf16(Double(qkv[at(i, 0, j)])) }
                let k = { (i: Int, j: Int) in bf16(Double(qkv[at(i, 1, j)])) }
                let v = { (i: Int, j: Int) in bf16(Double(qkv[at(i, 2, j)])) }
                let dO16 = { (i: Int, j: Int) in bf16(Double(dout[outAt(i, j)])) }
                let factor = { (i: Int, j: Int) in dropout.map { Double($0(b, h).factor(UInt32(i * t + j))) } }
                let keys = { (i: Int) in keyLengths.map { 0..<Int($0[b]) } ?? 0..<(i + 1) }
                var s = [[Double]](repeating: [], count: t)
                for i in 0..<t {
                    s[i] = keys(i).map { j in bf16(scale * (0..<d).reduce(0.0) { $0 + q(i, $1) * k(j, $1) }) }
                    let m = s[i].max()!, total = s[i].reduce(0.0) { $0 + exp($1 - m) }
                    lse[(b * heads + h) * t + i] = m + log(total)
                    let p = s[i].enumerated().map { j, sj -> Double in
                        let p = bf16(exp(sj - m) / total)
                        return factor(i, j).map { bf16(p * $0) } ?? p
                    }
                    for e in 0..<d { out[outAt(i, e)] = keys(i).reduce(0.0) { $0 + p[$1] * v($1, e) } }
                }
                for i in 0..<t {
                    let delta = (0..<d).reduce(0.0) { $0 + Double(dout[outAt(i, $1)]) * out[outAt(i, $1)] }
                    for j in keys(i) {
                        let p = bf16(exp(s[i][j] - lse[(b * heads + h) * t + i]))
                        var dp = bf16((0..<d).reduce(0.0) { $0 + dO16(i, $1) * v(j, $1) })
                        var pv = p
                        if let z = factor(i, j) { dp = bf16(dp * z); pv = bf16(p * z) }
                        let ds = bf16(p * (dp - delta))
                        for e in 0..<d {
                            dqkv[at(i, 0, e)] += scale * ds * k(j, e)
                            dqkv[at(j, 1, e)] += scale * ds * q(i, e)
                            dqkv[at(j, 2, e)] += pv * dO16(i, e)
                        }
                    }
                }
            }
        }
    }
}
