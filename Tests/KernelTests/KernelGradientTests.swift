import Foundation
import Kernels
import Testing
import TestSupport

/// Each kernel's forward against a Float64 implementation, and its backward against central
/// finite differences of that implementation, on small odd shapes (tails of the SIMD loops and
/// several attention blocks are exercised).
@Suite struct KernelGradientTests {
    static let forwardTolerance = 1e-5
    static let gradientTolerance = 1e-4

    @Test func matmulForwardAndBackward() {
        let rows = 7, inF = 13, outF = 11
        let x = randomFloats(rows * inF, seed: 1), w = randomFloats(outF * inF, seed: 2), b = randomFloats(outF, seed: 3)
        let r = randomFloats(rows * outF, seed: 4)
        var y = [Float](repeating: 0, count: rows * outF)
        var dx = [Float](repeating: 0, count: rows * inF)
        var dw = [Float](repeating: 0.5, count: outF * inF)  // backward accumulates into these
        var db = [Float](repeating: 0.25, count: outF)
        let ones = [Float](repeating: 1, count: rows)
        Matmul.forward(out: &y, inp: x, weight: w, bias: b, rows: rows, inFeatures: inF, outFeatures: outF)
        Matmul.backward(dinp: &dx, dweight: &dw, dbias: &db, dout: r, inp: x, weight: w, ones: ones,
                        rows: rows, inFeatures: inF, outFeatures: outF)
        let xd = x.map(Double.init), wd = w.map(Double.init), bd = b.map(Double.init)
        #expect(relativeError(y, Float64Reference.linear(xd, wd, bd, rows: rows, inFeatures: inF, outFeatures: outF)) < Self.forwardTolerance)
        let gx = numericGradient(at: xd) { projected(Float64Reference.linear($0, wd, bd, rows: rows, inFeatures: inF, outFeatures: outF), r) }
        let gw = numericGradient(at: wd) { projected(Float64Reference.linear(xd, $0, bd, rows: rows, inFeatures: inF, outFeatures: outF), r) }
        let gb = numericGradient(at: bd) { projected(Float64Reference.linear(xd, wd, $0, rows: rows, inFeatures: inF, outFeatures: outF), r) }
        #expect(relativeError(dx, gx) < Self.gradientTolerance)
        #expect(relativeError(dw.map { $0 - 0.5 }, gw) < Self.gradientTolerance)
        #expect(relativeError(db.map { $0 - 0.25 }, gb) < Self.gradientTolerance)
    }

    @Test func layerNormForwardAndBackward() {
        let rows = 5, c = 37
        let x = randomFloats(rows * c, seed: 5).map { $0 * 2 + 0.3 }
        let w = randomFloats(c, seed: 6).map { 1 + 0.2 * $0 }, b = randomFloats(c, seed: 7, std: 0.2)
        let r = randomFloats(rows * c, seed: 8)
        var y = [Float](repeating: 0, count: rows * c), mean = [Float](repeating: 0, count: rows), rstd = mean
        var dx = [Float](repeating: 1, count: rows * c)  // backward adds to dinp
        var dw = [Float](repeating: 0, count: c), db = [Float](repeating: 0, count: c)
        LayerNorm.forward(out: &y, mean: &mean, rstd: &rstd, inp: x, weight: w, bias: b, rows: rows, channels: c)
        LayerNorm.backward(dinp: &dx, dweight: &dw, dbias: &db, dout: r, inp: x, weight: w, mean: mean, rstd: rstd,
                           rows: rows, channels: c)
        let xd = x.map(Double.init), wd = w.map(Double.init), bd = b.map(Double.init)
        #expect(relativeError(y, Float64Reference.layerNorm(xd, wd, bd, rows: rows, channels: c)) < Self.forwardTolerance)
        let gx = numericGradient(at: xd) { projected(Float64Reference.layerNorm($0, wd, bd, rows: rows, channels: c), r) }
        let gw = numericGradient(at: wd) { projected(Float64Reference.layerNorm(xd, $0, bd, rows: rows, channels: c), r) }
        let gb = numericGradient(at: bd) { projected(Float64Reference.layerNorm(xd, wd, $0, rows: rows, channels: c), r) }
        #expect(relativeError(dx.map { $0 - 1 }, gx) < Self.gradientTolerance)
        #expect(relativeError(dw, gw) < Self.gradientTolerance)
        #expect(relativeError(db, gb) < Self.gradientTolerance)
    }

    /// Both forms: the tanh approximation and the exact erf GELU.
    @Test(arguments: [false, true])
    func geluForwardAndBackward(exact: Bool) {
        let count = 53
        let x = randomFloats(count, seed: 9, std: 3)
        let r = randomFloats(count, seed: 10)
        var y = [Float](repeating: 0, count: count), dx = y
        GELU.forward(out: &y, inp: x, count: count, exact: exact)
        GELU.backward(dinp: &dx, inp: x, dout: r, count: count, exact: exact)
        let xd = x.map(Double.init)
        let reference = exact ? Float64Reference.exactGELU : Float64Reference.gelu
        #expect(relativeError(y, reference(xd)) < Self.forwardTolerance)
        let gx = numericGradient(at: xd) { projected(reference($0), r) }
        #expect(relativeError(dx, gx) < Self.gradientTolerance)
    }

    /// The vector erf against libm's over [-6, 6] (absolute error).
    @Test func erfMatchesLibm() {
        var worst = 0.0
        for i in 0...12000 {
            let x = -6 + Double(i) * 0.001
            worst = max(worst, abs(Double(fastErf(FloatVector(repeating: Float(x)))[0]) - erf(Double(Float(x)))))
        }
        #expect(worst < 4e-7, "\(worst)")
    }

    /// Several row blocks and one; heads spread over threads (batch x heads >= threads) and one
    /// head with row-parallel softmax.
    @Test(arguments: [(4, 2, 3), (256, 2, 3), (4, 1, 1)])
    func attentionForwardAndBackward(blockRows: Int, batch: Int, heads: Int) {
        let t = 11, c = 5 * heads
        let qkv = randomFloats(batch * t * 3 * c, seed: 11)
        let r = randomFloats(batch * t * c, seed: 12)
        var out = [Float](repeating: 0, count: batch * t * c)
        var lse = [Float](repeating: 0, count: batch * heads * t)
        var dqkv = [Float](repeating: 7, count: qkv.count)  // backward overwrites
        var scratch = [Float](repeating: 0, count: Attention.scratchCount(seqLength: t))
        Attention.forward(out: &out, logSumExp: &lse, qkv: qkv, scratch: &scratch, batch: batch, seqLength: t,
                          heads: heads, channels: c, blockRows: blockRows)
        Attention.backward(dqkv: &dqkv, dout: r, out: out, logSumExp: lse, qkv: qkv, scratch: &scratch,
                           batch: batch, seqLength: t, heads: heads, channels: c, blockRows: blockRows)
        let qd = qkv.map(Double.init)
        #expect(relativeError(out, Float64Reference.attention(qd, batch: batch, seqLength: t, heads: heads, channels: c)) < Self.forwardTolerance)
        let g = numericGradient(at: qd) { projected(Float64Reference.attention($0, batch: batch, seqLength: t, heads: heads, channels: c), r) }
        #expect(relativeError(dqkv, g) < Self.gradientTolerance)
    }

    /// Dropout on the probabilities: the mask regenerated in the backward is the forward's (the
    /// gradient matches finite differences of the forward with that mask); about p of them drop.
    @Test(arguments: [(4, 1, 2), (256, 2, 1)])
    func attentionWithDropoutForwardAndBackward(blockRows: Int, batch: Int, heads: Int) {
        let t = 19, c = 5 * heads
        let stream = Attention.DropoutStream(probability: 0.3, key: 99, firstSequence: 5, firstHead: 2)
        let qkv = randomFloats(batch * t * 3 * c, seed: 21)
        let r = randomFloats(batch * t * c, seed: 22)
        var out = [Float](repeating: 0, count: batch * t * c)
        var lse = [Float](repeating: 0, count: batch * heads * t)
        var dqkv = [Float](repeating: 7, count: qkv.count)
        var scratch = [Float](repeating: 0, count: Attention.scratchCount(seqLength: t))
        Attention.forward(out: &out, logSumExp: &lse, qkv: qkv, scratch: &scratch, batch: batch, seqLength: t,
                          heads: heads, channels: c, dropout: stream, blockRows: blockRows)
        Attention.backward(dqkv: &dqkv, dout: r, out: out, logSumExp: lse, qkv: qkv, scratch: &scratch,
                           batch: batch, seqLength: t, heads: heads, channels: c, dropout: stream, blockRows: blockRows)
        let mask = { (b: Int, h: Int) in
            DropoutMask(probability: 0.3, key: DropoutMask.key(seed: 99, 5 + b, 2 + h))
        }
        let qd = qkv.map(Double.init)
        let reference = Float64Reference.attention(qd, batch: batch, seqLength: t, heads: heads, channels: c, dropout: mask)
        #expect(relativeError(out, reference) < Self.forwardTolerance)
        #expect(relativeError(out, Float64Reference.attention(qd, batch: batch, seqLength: t, heads: heads, channels: c)) > 0.05)
        let g = numericGradient(at: qd) {
            projected(Float64Reference.attention($0, batch: batch, seqLength: t, heads: heads, channels: c, dropout: mask), r)
        }
        #expect(relativeError(dqkv, g) < Self.gradientTolerance)
    }

    /// BERT's bidirectional attention over each sequence's keys before its padding, with and
    /// without dropout: the padding keys get no gradient, padding queries attend like the others.
    @Test(arguments: [0, 0.3])
    func paddedAttentionForwardAndBackward(dropoutProbability: Float) {
        let t = 13, heads = 2, c = 5 * heads, batch = 3
        let lengths: [Int32] = [13, 6, 1]
        let stream = dropoutProbability > 0
            ? Attention.DropoutStream(probability: dropoutProbability, key: 7, firstSequence: 1, firstHead: 0) : nil
        let mask = stream.map { stream in { (b: Int, h: Int) in
            DropoutMask(probability: stream.probability, key: DropoutMask.key(seed: 7, 1 + b, h))
        } }
        let qkv = randomFloats(batch * t * 3 * c, seed: 31)
        let r = randomFloats(batch * t * c, seed: 32)
        var out = [Float](repeating: 0, count: batch * t * c)
        var lse = [Float](repeating: 0, count: batch * heads * t)
        var dqkv = [Float](repeating: 7, count: qkv.count)
        var scratch = [Float](repeating: 0, count: Attention.scratchCount(seqLength: t))
        lengths.withUnsafeBufferPointer { keyLengths in
            let padding = Attention.Mask.padding(keyLengths: keyLengths.baseAddress!)
            Attention.forward(out: &out, logSumExp: &lse, qkv: qkv, scratch: &scratch, batch: batch, seqLength: t,
                              heads: heads, channels: c, mask: padding, dropout: stream)
            Attention.backward(dqkv: &dqkv, dout: r, out: out, logSumExp: lse, qkv: qkv, scratch: &scratch,
                               batch: batch, seqLength: t, heads: heads, channels: c, mask: padding, dropout: stream)
        }
        let qd = qkv.map(Double.init)
        let reference = { (x: [Double]) in
            Float64Reference.attention(x, batch: batch, seqLength: t, heads: heads, channels: c, keyLengths: lengths, dropout: mask)
        }
        #expect(relativeError(out, reference(qd)) < Self.forwardTolerance)
        #expect(relativeError(out, Float64Reference.attention(qd, batch: batch, seqLength: t, heads: heads, channels: c)) > 0.05)
        let g = numericGradient(at: qd) { projected(reference($0), r) }
        #expect(relativeError(dqkv, g) < Self.gradientTolerance)
        // Sequence 1's keys and values past its 6 tokens have no gradient.
        let padded = (6..<t).flatMap { token in (0..<heads).flatMap { h in (5..<15).map { ((t + token) * 3 * c) + h * 15 + $0 } } }
        #expect(padded.allSatisfy { dqkv[$0] == 0 })
    }

    /// The mask keeps about 1 - p of the elements, scales them by 1/(1-p), is the same from the
    /// vector and the scalar path, and differs between streams.
    @Test func dropoutMaskStatistics() {
        let count = 100_003
        var values = [Float](repeating: 1, count: count)
        let mask = DropoutMask(probability: 0.1, key: DropoutMask.key(seed: 1234, 3, 7))
        mask.apply(&values, count: count, firstCounter: 5)
        let kept = values.filter { $0 != 0 }
        #expect(abs(Double(kept.count) / Double(count) - 0.9) < 0.003)
        #expect(kept.allSatisfy { $0 == Float(1) / Float(0.9) })
        #expect((0..<count).allSatisfy { (values[$0] != 0) == mask.keeps(UInt32(5 + $0)) })
        var shifted = [Float](repeating: 1, count: 64)
        mask.apply(&shifted, count: 64, firstCounter: 6)
        #expect(Array(shifted[0..<63]) == Array(values[1..<64]))
        var other = [Float](repeating: 1, count: count)
        DropoutMask(probability: 0.1, key: DropoutMask.key(seed: 1234, 3, 8)).apply(&other, count: count, firstCounter: 5)
        let agreement = zip(values, other).filter { ($0 == 0) == ($1 == 0) }.count
        #expect(Double(agreement) / Double(count) < 0.83)  // independent: 0.9^2 + 0.1^2 = 0.82
    }

    /// The vector path's keep test (a borrow, not a comparison) agrees with the scalar `keeps`
    /// at every probability, including those whose threshold has the top bit set.
    @Test func dropoutVectorAndScalarPathsAgreeAtEveryProbability() {
        let count = 4_099
        for probability: Float in [0, 1e-6, 0.1, 0.25, 0.4999, 0.5, 0.5001, 0.75, 0.9, 0.999_9] {
            let mask = DropoutMask(probability: probability, key: DropoutMask.key(seed: 77, 1, 2))
            var values = [Float](repeating: 1, count: count)
            mask.apply(&values, count: count, firstCounter: 0xFFFF_F000)  // the counter wraps past 2^32
            let mismatches = (0..<count).filter { (values[$0] != 0) != mask.keeps(0xFFFF_F000 &+ UInt32($0)) }
            #expect(mismatches.isEmpty, "p = \(probability): \(mismatches.count) elements differ")
            #expect(values.allSatisfy { $0 == 0 || $0 == mask.scale })
        }
    }

    @Test func embeddingForwardAndBackward() {
        let batch = 2, t = 5, vocab = 11, c = 19
        let tokens: [Int32] = [3, 7, 3, 0, 10, 7, 7, 1, 2, 3]  // repeats accumulate
        let wte = randomFloats(vocab * c, seed: 13), wpe = randomFloats(t * c, seed: 14)
        let r = randomFloats(batch * t * c, seed: 15)
        var out = [Float](repeating: 0, count: batch * t * c)
        var dwte = [Float](repeating: 0, count: wte.count), dwpe = [Float](repeating: 0, count: wpe.count)
        Embedding.forward(out: &out, tokens: tokens, wte: wte, wpe: wpe, batch: batch, seqLength: t, channels: c)
        Embedding.backward(dwte: &dwte, dwpe: &dwpe, dout: r, tokens: tokens, batch: batch, seqLength: t, channels: c)
        let ted = wte.map(Double.init), ped = wpe.map(Double.init)
        #expect(relativeError(out, Float64Reference.embedding(tokens, ted, ped, batch: batch, seqLength: t, channels: c)) < Self.forwardTolerance)
        let gte = numericGradient(at: ted) { projected(Float64Reference.embedding(tokens, $0, ped, batch: batch, seqLength: t, channels: c), r) }
        let gpe = numericGradient(at: ped) { projected(Float64Reference.embedding(tokens, ted, $0, batch: batch, seqLength: t, channels: c), r) }
        #expect(relativeError(dwte, gte) < Self.gradientTolerance)
        #expect(relativeError(dwpe, gpe) < Self.gradientTolerance)
    }

    @Test func crossEntropyWithIgnoreIndexAndLossMask() {
        let rows = 6, vocab = 37
        let logits = randomFloats(rows * vocab, seed: 16, std: 2)
        let targets: [Int32] = [5, CrossEntropy.ignoreIndex, 36, 0, 12, 5]
        let mask: [Float] = [1, 1, 0.5, 0, 1, 2]
        var losses = [Float](repeating: 0, count: rows), lse = losses
        let totals = CrossEntropy.forward(losses: &losses, logSumExp: &lse, logits: logits, targets: targets,
                                          lossMask: mask, rows: rows, vocab: vocab)
        let ld = logits.map(Double.init)
        let expected = Float64Reference.crossEntropy(ld, targets, mask, rows: rows, vocab: vocab)
        #expect(abs(totals.mean - expected) / expected < Self.forwardTolerance)
        #expect(totals.weight == 4.5)
        var gradient = logits
        CrossEntropy.backward(logitsToGradient: &gradient, logSumExp: lse, targets: targets, lossMask: mask,
                              scale: Float(1 / totals.weight), rows: rows, vocab: vocab)
        let g = numericGradient(at: ld) { Float64Reference.crossEntropy($0, targets, mask, rows: rows, vocab: vocab) }
        #expect(relativeError(gradient, g) < Self.gradientTolerance)
        #expect(gradient[vocab..<(2 * vocab)].allSatisfy { $0 == 0 })  // the ignored row
    }

    /// With `validColumns` (an imported model's true vocabulary), the padded columns are outside
    /// the softmax: the loss and gradient equal those over the first columns alone, and the
    /// padded columns' gradient is zero.
    @Test func crossEntropyBoundedByTheTrueVocabulary() {
        let rows = 4, vocab = 48, valid = 37
        var logits = randomFloats(rows * vocab, seed: 19, std: 2)
        for row in 0..<rows { for i in valid..<vocab { logits[row * vocab + i] = 3 } }  // padding that would dominate
        let targets: [Int32] = [5, 36, 0, 12]
        let mask: [Float] = [1, 1, 1, 1]
        var losses = [Float](repeating: 0, count: rows), lse = losses
        let totals = CrossEntropy.forward(losses: &losses, logSumExp: &lse, logits: logits, targets: targets,
                                          lossMask: mask, rows: rows, vocab: vocab, validColumns: valid)
        let truncated = (0..<rows).flatMap { row in logits[(row * vocab)..<(row * vocab + valid)].map(Double.init) }
        let expected = Float64Reference.crossEntropy(truncated, targets, mask, rows: rows, vocab: valid)
        #expect(abs(totals.mean - expected) / expected < Self.forwardTolerance)
        var gradient = logits
        CrossEntropy.backward(logitsToGradient: &gradient, logSumExp: lse, targets: targets, lossMask: mask,
                              scale: Float(1 / totals.weight), rows: rows, vocab: vocab, validColumns: valid)
        let g = numericGradient(at: truncated) { Float64Reference.crossEntropy($0, targets, mask, rows: rows, vocab: valid) }
        let ours = (0..<rows).flatMap { row in gradient[(row * vocab)..<(row * vocab + valid)] }
        #expect(relativeError(ours, g) < Self.gradientTolerance)
        for row in 0..<rows { #expect(gradient[(row * vocab + valid)..<((row + 1) * vocab)].allSatisfy { $0 == 0 }) }
    }

    @Test func residualAddsInPlace() {
        var a = randomFloats(45, seed: 17)
        let b = randomFloats(45, seed: 18)
        let expected = zip(a, b).map { $0 + $1 }
        Residual.addInPlace(&a, b, count: 45)
        #expect(a == expected)
    }
}
