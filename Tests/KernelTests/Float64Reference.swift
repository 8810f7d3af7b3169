import Kernels
import Foundation

/// Straightforward Float64 implementations of each kernel's forward, the ground truth for the
/// finite-difference checks.
enum Float64Reference {
    static func linear(_ x: [Double], _ w: [Double], _ b: [Double]?, rows: Int, inFeatures: Int, outFeatures: Int) -> [Double] {
        var y = [Double](repeating: 0, count: rows * outFeatures)
        for r in 0..<rows {
            for o in 0..<outFeatures {
                var acc = b?[o] ?? 0
                for i in 0..<inFeatures { acc += x[r * inFeatures + i] * w[o * inFeatures + i] }
                y[r * outFeatures + o] = acc
            }
        }
        return y
    }

    static func layerNorm(_ x: [Double], _ w: [Double], _ b: [Double], rows: Int, channels c: Int, eps: Double = 1e-5) -> [Double] {
        var y = [Double](repeating: 0, count: rows * c)
        for r in 0..<rows {
            let row = x[(r * c)..<((r + 1) * c)]
            let mean = row.reduce(0, +) / Double(c)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(c)
            let rstd = 1 / (variance + eps).squareRoot()
            for i in 0..<c { y[r * c + i] = (x[r * c + i] - mean) * rstd * w[i] + b[i] }
        }
        return y
    }

    static func exactGELU(_ x: [Double]) -> [Double] {
        x.map { 0.5 * $0 * (1 + erf($0 / 2.squareRoot())) }
    }

    static func gelu(_ x: [Double]) -> [Double] {
        x.map { 0.5 * $0 * (1 + tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) }
    }

    /// Causal attention over the per-head interleaved QKV layout.
    /// Causal attention, or with `keyLengths` every query of sequence `b` over keys
    /// `0..<keyLengths[b]`; with `dropout`, probability `(i, j)` of sequence `b`, head `h` is
    /// multiplied by `dropout(b, h).factor(i * t + j)` after the softmax.
    static func attention(_ qkv: [Double], batch: Int, seqLength t: Int, heads: Int, channels c: Int,
                          keyLengths: [Int32]? = nil, dropout: ((Int, Int) -> DropoutMask)? = nil) -> [Double] {
        let d = c / heads
        var out = [Double](repeating: 0, count: batch * t * c)
        for b in 0..<batch {
            for h in 0..<heads {
                func at(_ token: Int, _ section: Int, _ j: Int) -> Double {
                    qkv[(b * t + token) * 3 * c + h * 3 * d + section * d + j]
                }
                for i in 0..<t {
                    let keys = keyLengths.map { Int($0[b]) } ?? i + 1
                    var scores = (0..<keys).map { j in
                        (0..<d).reduce(0.0) { $0 + at(i, 0, $1) * at(j, 1, $1) } / Double(d).squareRoot()
                    }
                    let m = scores.max()!
                    scores = scores.map { exp($0 - m) }
                    let total = scores.reduce(0, +)
                    for k in 0..<d {
                        var acc = 0.0
                        for j in 0..<keys {
                            let kept = dropout.map { Double($0(b, h).factor(UInt32(i * t + j))) } ?? 1
                            acc += scores[j] / total * kept * at(j, 2, k)
                        }
                        out[(b * t + i) * c + h * d + k] = acc
                    }
                }
            }
        }
        return out
    }

    static func embedding(_ tokens: [Int32], _ wte: [Double], _ wpe: [Double], batch: Int, seqLength t: Int, channels c: Int) -> [Double] {
        var out = [Double](repeating: 0, count: batch * t * c)
        for n in 0..<(batch * t) {
            for i in 0..<c { out[n * c + i] = wte[Int(tokens[n]) * c + i] + wpe[(n % t) * c + i] }
        }
        return out
    }

    /// Masked mean cross-entropy (ignored targets and mask zeros weigh nothing).
    static func crossEntropy(_ logits: [Double], _ targets: [Int32], _ mask: [Float]?, rows: Int, vocab: Int) -> Double {
        var loss = 0.0, weight = 0.0
        for r in 0..<rows where targets[r] != -100 {
            let row = logits[(r * vocab)..<((r + 1) * vocab)]
            let m = row.max()!
            let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
            let w = Double(mask?[r] ?? 1)
            loss += w * (lse - logits[r * vocab + Int(targets[r])])
            weight += w
        }
        return loss / weight
    }
}
