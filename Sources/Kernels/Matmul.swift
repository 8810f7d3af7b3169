import CBLAS
import Accelerator

/// A linear layer `out = inp · Wᵀ + b` through `cblas_sgemm`.
///
/// Layouts are row-major: `inp` is `[rows, inFeatures]`, `weight` is `[outFeatures, inFeatures]`
/// (PyTorch's `nn.Linear` / Megatron's layout), `bias` is `[outFeatures]`, `out` is
/// `[rows, outFeatures]`.
public enum Matmul {
    /// Writes `out = inp · Wᵀ (+ bias)`; up to `SkinnyMatmul.maxRows` rows through `SkinnyMatmul`.
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                               rows: Int, inFeatures: Int, outFeatures: Int) {
        if let gpu = GPU.active {  // --device cuda: cuBLAS
            if let bias { gpu.fillRows(out, with: bias, rows: rows, n: outFeatures) }
            return gpu.sgemm(transposeA: false, transposeB: true, m: rows, n: outFeatures, k: inFeatures, alpha: 1,
                             a: inp, lda: inFeatures, b: weight, ldb: inFeatures, beta: bias == nil ? 0 : 1,
                             c: out, ldc: outFeatures)
        }
        if SkinnyMatmul.handles(rows: rows) {  // decoding: stream the weight once, no packing
            return SkinnyMatmul.forward(out: out, inp: inp, weight: weight, bias: bias, rows: rows, inFeatures: inFeatures,
                                        outFeatures: outFeatures)
        }
        var beta: Float = 0
        if let bias {
            ThreadPool.current.parallelFor(rows, minimumPerThread: max(1, 65536 / outFeatures)) { range in
                for row in range {
                    (out + row * outFeatures).update(from: bias, count: outFeatures)
                }
            }
            beta = 1
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                    Int32(rows), Int32(outFeatures), Int32(inFeatures),
                    1, inp, Int32(inFeatures), weight, Int32(inFeatures),
                    beta, out, Int32(outFeatures))
    }

    /// Backward of `forward`. Overwrites `dinp` (when given) with `dout · W`; adds `doutᵀ · inp`
    /// to `dweight` and the column sums of `dout` to `dbias`. `ones` must hold `rows` ones when
    /// `dbias` is given (the bias gradient is a GEMV against it).
    public static func backward(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>,
                                dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                ones: UnsafePointer<Float>?,
                                rows: Int, inFeatures: Int, outFeatures: Int) {
        if let dinp {
            inputGradient(dinp: dinp, dout: dout, weight: weight, rows: rows, inFeatures: inFeatures,
                          outFeatures: outFeatures)
        }
        weightGradient(dweight: dweight, dout: dout, inp: inp, rows: rows, inFeatures: inFeatures,
                       outFeatures: outFeatures)
        if let dbias {
            guard let ones else { preconditionFailure("Matmul.backward needs `ones` for the bias gradient") }
            biasGradient(dbias: dbias, dout: dout, ones: ones, rows: rows, outFeatures: outFeatures)
        }
    }

    /// Adds the column sums of `dout` (`[rows, outFeatures]`) to `dbias`: a GEMV against `rows` ones.
    public static func biasGradient(dbias: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                    ones: UnsafePointer<Float>, rows: Int, outFeatures: Int) {
        if let gpu = GPU.active { return gpu.addColumnSums(dbias, of: dout, ones: ones, rows: rows, cols: outFeatures) }
        cblas_sgemv(CblasRowMajor, CblasTrans, Int32(rows), Int32(outFeatures),
                    1, dout, Int32(outFeatures), ones, 1, 1, dbias, 1)
    }
}

extension Matmul {
    /// The input gradient alone: overwrites `dinp` with `dout · W` (NN).
    public static func inputGradient(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                     weight: UnsafePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int) {
        if let gpu = GPU.active {
            return gpu.sgemm(transposeA: false, transposeB: false, m: rows, n: inFeatures, k: outFeatures, alpha: 1,
                             a: dout, lda: outFeatures, b: weight, ldb: inFeatures, beta: 0, c: dinp, ldc: inFeatures)
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                    Int32(rows), Int32(inFeatures), Int32(outFeatures),
                    1, dout, Int32(outFeatures), weight, Int32(inFeatures),
                    0, dinp, Int32(inFeatures))
    }

    /// The weight gradient alone: adds `doutᵀ · inp` to `dweight` (TN).
    public static func weightGradient(dweight: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                      inp: UnsafePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int) {
        if let gpu = GPU.active {
            return gpu.sgemm(transposeA: true, transposeB: false, m: outFeatures, n: inFeatures, k: rows, alpha: 1,
                             a: dout, lda: outFeatures, b: inp, ldb: inFeatures, beta: 1, c: dweight, ldc: inFeatures)
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                    Int32(outFeatures), Int32(inFeatures), Int32(rows),
                    1, dout, Int32(outFeatures), inp, Int32(inFeatures),
                    1, dweight, Int32(inFeatures))
    }
}
