#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CBLAS
import Accelerator

/// The linear layer of `Matmul` with bf16 inputs: `out = inp · Wᵀ (+ b)` where `inp` and `W`
/// are bf16, products are exact in fp32 and sums accumulate in fp32 into fp32 outputs.
///
/// Two backends compute the same numbers (up to fp32 summation order):
/// - `oneDNN`: oneDNN's bf16 matmul (`vdpbf16ps` / AMX), used where the CPU has native bf16;
/// - `widenedSGEMM`: widen the bf16 operands to fp32 scratch and run OpenBLAS `cblas_sgemm`,
///   used elsewhere (AVX2 machines), where oneDNN would only emulate bf16.
public enum BF16Matmul {
    /// How a bf16 GEMM is computed.
    public enum Backend: String, Sendable, CaseIterable {
        /// oneDNN's bf16 matmul primitive.
        case oneDNN
        /// bf16 -> fp32 conversion, then OpenBLAS sgemm.
        case widenedSGEMM
    }

    /// The backend this process uses: oneDNN where the CPU has native bf16 (and oneDNN has a
    /// non-reference implementation), else `widenedSGEMM`. `MEGATRON_BF16_GEMM=onednn|sgemm`
    /// overrides it (for measurements).
    public static let active: Backend = {
        switch getenv("MEGATRON_BF16_GEMM").map({ String(cString: $0).lowercased() }) {
        case "onednn": return .oneDNN
        case "sgemm": return .widenedSGEMM
        default:
            guard OneDNNMatmul.hasNativeBFloat16 else { return .widenedSGEMM }
            let probe = OneDNNMatmul.Shape(m: 64, n: 64, k: 64, transposeA: false, transposeB: true, type: .bfloat16)
            let implementation = OneDNNMatmul.implementation(probe) ?? "ref"
            return implementation.hasPrefix("ref") ? .widenedSGEMM : .oneDNN
        }
    }()

    /// One line for a start-up note: which backend runs and why.
    public static var description: String {
        let cpu = "oneDNN \(OneDNNMatmul.version) sees \(OneDNNMatmul.instructionSet)"
        switch active {
        case .oneDNN:
            let probe = OneDNNMatmul.Shape(m: 64, n: 64, k: 64, transposeA: false, transposeB: true, type: .bfloat16)
            let kind = OneDNNMatmul.hasNativeBFloat16 ? "native bf16" : "bf16 emulated by oneDNN"
            return "bf16 GEMM: oneDNN \(OneDNNMatmul.implementation(probe) ?? "?") (\(kind); \(cpu))"
        case .widenedSGEMM:
            let reason = OneDNNMatmul.hasNativeBFloat16 ? "selected" : "no native bf16 on this CPU"
            return "bf16 GEMM: emulated, bf16 widened to fp32 + OpenBLAS sgemm (\(reason); \(cpu))"
        }
    }

    /// Writes `out = inp · Wᵀ (+ bias)`: `inp` `[rows, inFeatures]`, `weight`
    /// `[outFeatures, inFeatures]`, `bias` `[outFeatures]`, `out` `[rows, outFeatures]` (fp32).
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<BFloat16>,
                               weight: UnsafePointer<BFloat16>, bias: UnsafePointer<Float>?,
                               rows: Int, inFeatures: Int, outFeatures: Int, backend: Backend = active) {
        if GPU.active == nil && SkinnyMatmul.handlesBFloat16(rows: rows) {  // decoding: stream the weight once, no reorder
            return SkinnyMatmul.forward(out: out, inp: inp, weight: weight, bias: bias, rows: rows, inFeatures: inFeatures,
                                        outFeatures: outFeatures)
        }
        gemm(OneDNNMatmul.Shape(m: rows, n: outFeatures, k: inFeatures, transposeA: false, transposeB: true,
                                type: .bfloat16, bias: bias != nil),
             a: inp, b: weight, bias: bias, c: out, backend: backend)
    }

    /// Backward of `forward` without the bias: overwrites `dinp` (when given) with `dout · W` and
    /// adds `doutᵀ · inp` to `dweight` (both fp32). The bias gradient (column sums of `dout`) is
    /// the caller's.
    public static func backward(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>,
                                dout: UnsafePointer<BFloat16>, inp: UnsafePointer<BFloat16>,
                                weight: UnsafePointer<BFloat16>,
                                rows: Int, inFeatures: Int, outFeatures: Int, backend: Backend = active) {
        if let dinp {
            inputGradient(dinp: dinp, dout: dout, weight: weight, rows: rows, inFeatures: inFeatures,
                          outFeatures: outFeatures, backend: backend)
        }
        weightGradient(dweight: dweight, dout: dout, inp: inp, rows: rows, inFeatures: inFeatures,
                       outFeatures: outFeatures, backend: backend)
    }

    /// The input gradient alone: overwrites `dinp` with `dout · W` (NN).
    public static func inputGradient(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<BFloat16>,
                                     weight: UnsafePointer<BFloat16>, rows: Int, inFeatures: Int, outFeatures: Int,
                                     backend: Backend = active) {
        gemm(OneDNNMatmul.Shape(m: rows, n: inFeatures, k: outFeatures, transposeA: false, transposeB: false,
                                type: .bfloat16),
             a: dout, b: weight, bias: nil, c: dinp, backend: backend)
    }

    /// The weight gradient alone: adds `doutᵀ · inp` to `dweight` (TN).
    public static func weightGradient(dweight: UnsafeMutablePointer<Float>, dout: UnsafePointer<BFloat16>,
                                      inp: UnsafePointer<BFloat16>, rows: Int, inFeatures: Int, outFeatures: Int,
                                      backend: Backend = active) {
        gemm(OneDNNMatmul.Shape(m: outFeatures, n: inFeatures, k: rows, transposeA: true, transposeB: false,
                                type: .bfloat16, accumulate: true),
             a: dout, b: inp, bias: nil, c: dweight, backend: backend)
    }

    /// `C (+)= op(A) · op(B) (+ bias)` on bf16 `A`, `B` with the chosen backend; oneDNN falls
    /// back to the widened sgemm for a shape it cannot do.
    static func gemm(_ shape: OneDNNMatmul.Shape, a: UnsafePointer<BFloat16>, b: UnsafePointer<BFloat16>,
                     bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>, backend: Backend) {
        if shape.k > 0, let gpu = GPU.active { return cuBLASGEMM(gpu, shape, a: a, b: b, bias: bias, c: c) }
        hostGEMM(shape, a: a, b: b, bias: bias, c: c, backend: backend)
    }

    /// `gemm` on the CPU whatever the device: for kernels that run on the CPU around their
    /// products (the CPU attention core, which a GPU run takes with attention dropout or BERT's
    /// padding mask) and read `C` at once.
    static func hostGEMM(_ shape: OneDNNMatmul.Shape, a: UnsafePointer<BFloat16>, b: UnsafePointer<BFloat16>,
                         bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>, backend: Backend) {
        if shape.k == 0 {
            if !shape.accumulate { zeroOrBias(c, bias: bias, m: shape.m, n: shape.n) }
            return
        }
        if backend == .oneDNN, OneDNNMatmul.run(shape, a: a, b: b, bias: bias, c: c) { return }
        widenedSGEMM(shape, a: a, b: b, bias: bias, c: c)
    }

    /// `--device cuda`: cuBLAS on the bf16 operands, fp32 accumulation.
    static func cuBLASGEMM(_ gpu: CUDAAccelerator, _ shape: OneDNNMatmul.Shape, a: UnsafePointer<BFloat16>,
                           b: UnsafePointer<BFloat16>, bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>) {
        let (m, n, k) = (shape.m, shape.n, shape.k)
        if let bias { gpu.fillRows(c, with: bias, rows: m, n: n) }
        a.withMemoryRebound(to: UInt16.self, capacity: m * k) { a16 in
            b.withMemoryRebound(to: UInt16.self, capacity: k * n) { b16 in
                gpu.gemmBF16(transposeA: shape.transposeA, transposeB: shape.transposeB, m: m, n: n, k: k, alpha: 1,
                             a: a16, lda: shape.transposeA ? m : k, b: b16, ldb: shape.transposeB ? k : n,
                             beta: shape.accumulate || bias != nil ? 1 : 0, c: c, ldc: n)
            }
        }
    }

    /// Widens `A` and `B` to fp32 scratch (from `ScratchPool`) and runs `cblas_sgemm`.
    static func widenedSGEMM(_ shape: OneDNNMatmul.Shape, a: UnsafePointer<BFloat16>, b: UnsafePointer<BFloat16>,
                             bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>) {
        let (m, n, k) = (shape.m, shape.n, shape.k)
        ScratchPool.withBytes(4 * (m * k + k * n)) { raw in
            let wideA = raw.bindMemory(to: Float.self, capacity: m * k + k * n)
            widenedSGEMM(shape, a: a, b: b, bias: bias, c: c, wideA: wideA, wideB: wideA + m * k)
        }
    }

    /// `widenedSGEMM` with the fp32 scratch given.
    private static func widenedSGEMM(_ shape: OneDNNMatmul.Shape, a: UnsafePointer<BFloat16>, b: UnsafePointer<BFloat16>,
                                     bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>,
                                     wideA: UnsafeMutablePointer<Float>, wideB: UnsafeMutablePointer<Float>) {
        let (m, n, k) = (shape.m, shape.n, shape.k)
        BFloat16Conversion.widen(out: wideA, inp: a, count: m * k)
        BFloat16Conversion.widen(out: wideB, inp: b, count: k * n)
        var beta: Float = shape.accumulate ? 1 : 0
        if let bias {
            precondition(!shape.accumulate, "BF16Matmul: bias with accumulation is not a linear layer's GEMM")
            zeroOrBias(c, bias: bias, m: m, n: n)
            beta = 1
        }
        cblas_sgemm(CblasRowMajor, shape.transposeA ? CblasTrans : CblasNoTrans,
                    shape.transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1,
                    wideA, Int32(shape.transposeA ? m : k), wideB, Int32(shape.transposeB ? k : n),
                    beta, c, Int32(n))
    }

    /// Fills each row of `c` with `bias`, or zeros.
    static func zeroOrBias(_ c: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, m: Int, n: Int) {
        ThreadPool.current.parallelFor(m, minimumPerThread: max(1, 65536 / max(1, n))) { range in
            for row in range {
                if let bias { (c + row * n).update(from: bias, count: n) } else { (c + row * n).update(repeating: 0, count: n) }
            }
        }
    }
}
