import Accelerator

/// Layer normalization over the last dimension: `out = (x - mean) * rstd * weight + bias`,
/// with `rstd = 1 / sqrt(var + eps)` (biased variance, as PyTorch).
public enum LayerNorm {
    /// Normalizes each of `rows` rows of `channels` values; saves `mean` and `rstd` (`[rows]`)
    /// for the backward pass.
    public static func forward(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                               rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                               rows: Int, channels: Int, eps: Float = 1e-5) {
        if let gpu = GPU.active {
            return gpu.layerNormForward(out: out, mean: mean, rstd: rstd, inp: inp, weight: weight, bias: bias, rows: rows,
                                        channels: channels, eps: eps)
        }
        let c = channels
        ThreadPool.current.parallelFor(rows, minimumPerThread: max(1, 16384 / c)) { range in
            for row in range {
                let x = inp + row * c
                let y = out + row * c
                let mu = vectorSum(x, c) / Float(c)
                // Two-pass variance for accuracy.
                var acc = FloatVector(repeating: 0)
                let muVector = FloatVector(repeating: mu)
                var i = 0
                while i + 16 <= c {
                    let d = loadVector(x + i) - muVector
                    acc = acc.addingProduct(d, d)
                    i += 16
                }
                var variance = acc.sum()
                while i < c {
                    let d = x[i] - mu
                    variance += d * d
                    i += 1
                }
                variance /= Float(c)
                let s = 1 / (variance + eps).squareRoot()
                let sVector = FloatVector(repeating: s)
                i = 0
                while i + 16 <= c {
                    let normalized = (loadVector(x + i) - muVector) * sVector
                    storeVector(loadVector(bias + i).addingProduct(normalized, loadVector(weight + i)), y + i)
                    i += 16
                }
                while i < c {
                    y[i] = (x[i] - mu) * s * weight[i] + bias[i]
                    i += 1
                }
                mean[row] = mu
                rstd[row] = s
            }
        }
    }

    /// Backward of `forward`. Adds the input gradient to `dinp` and the parameter gradients to
    /// `dweight` and `dbias`.
    public static func backward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>,
                                dbias: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                rows: Int, channels: Int) {
        if let gpu = GPU.active {
            return gpu.layerNormBackward(dinp: dinp, dweight: dweight, dbias: dbias, dout: dout, inp: inp, weight: weight,
                                         mean: mean, rstd: rstd, rows: rows, channels: channels)
        }
        let c = channels
        let pool = ThreadPool.current
        let chunks = min(pool.threadCount, max(1, rows * c / 16384))
        // Each chunk accumulates its parameter gradients privately; they are summed at the end.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: chunks * 2 * c) { scratch in
            let partial = scratch.baseAddress!
            partial.initialize(repeating: 0, count: chunks * 2 * c)
            pool.run(chunks: chunks) { chunk in
                let dw = partial + chunk * 2 * c
                let db = dw + c
                for row in (rows * chunk / chunks)..<(rows * (chunk + 1) / chunks) {
                    backwardRow(dinp: dinp + row * c, dw: dw, db: db, dout: dout + row * c,
                                inp: inp + row * c, weight: weight, mean: mean[row], rstd: rstd[row], c: c)
                }
            }
            for chunk in 0..<chunks {
                let dw = partial + chunk * 2 * c
                for i in 0..<c {
                    dweight[i] += dw[i]
                    dbias[i] += dw[c + i]
                }
            }
        }
    }

    @inline(__always)
    private static func backwardRow(dinp: UnsafeMutablePointer<Float>, dw: UnsafeMutablePointer<Float>,
                                    db: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                    inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                    mean: Float, rstd: Float, c: Int) {
        let muVector = FloatVector(repeating: mean)
        let sVector = FloatVector(repeating: rstd)
        // Two reductions: mean(dnorm) and mean(dnorm * norm), dnorm = weight * dout.
        var sumVector = FloatVector(repeating: 0)
        var sumNormVector = FloatVector(repeating: 0)
        var i = 0
        while i + 16 <= c {
            let norm = (loadVector(inp + i) - muVector) * sVector
            let dnorm = loadVector(weight + i) * loadVector(dout + i)
            sumVector += dnorm
            sumNormVector = sumNormVector.addingProduct(dnorm, norm)
            i += 16
        }
        var sum = sumVector.sum()
        var sumNorm = sumNormVector.sum()
        while i < c {
            let norm = (inp[i] - mean) * rstd
            let dnorm = weight[i] * dout[i]
            sum += dnorm
            sumNorm += dnorm * norm
            i += 1
        }
        let meanD = sum / Float(c)
        let meanDN = sumNorm / Float(c)
        let meanDVector = FloatVector(repeating: meanD)
        let meanDNVector = FloatVector(repeating: meanDN)
        i = 0
        while i + 16 <= c {
            let norm = (loadVector(inp + i) - muVector) * sVector
            let g = loadVector(dout + i)
            let dnorm = loadVector(weight + i) * g
            storeVector(loadVector(dw + i).addingProduct(norm, g), dw + i)
            storeVector(loadVector(db + i) + g, db + i)
            let centered: FloatVector = dnorm - meanDVector - norm * meanDNVector
            storeVector(loadVector(dinp + i).addingProduct(centered, sVector), dinp + i)
            i += 16
        }
        while i < c {
            let norm = (inp[i] - mean) * rstd
            let dnorm = weight[i] * dout[i]
            dw[i] += norm * dout[i]
            db[i] += dout[i]
            dinp[i] += (dnorm - meanD - norm * meanDN) * rstd
            i += 1
        }
    }
}
