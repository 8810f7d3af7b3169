#if canImport(Glibc)
import Glibc
#endif
import CBLAS
import Kernels
import Parameters

/// Times the three GEMMs of a linear layer (forward NT, backward NN for the input gradient, TN for
/// the weight gradient) on every GEMM path: OpenBLAS sgemm, oneDNN fp32, oneDNN bf16 and the
/// bf16 emulation (widen to fp32 + sgemm), in GFLOP/s.
public struct GEMMBenchmark: Sendable {
    /// One product of a linear layer `[rows, inFeatures] -> [rows, outFeatures]`.
    public enum Product: String, Sendable, CaseIterable, Codable {
        /// `out = inp · Wᵀ`: NT, m = rows, n = outFeatures, k = inFeatures.
        case forward = "forward NT"
        /// `dinp = dout · W`: NN, m = rows, n = inFeatures, k = outFeatures.
        case inputGradient = "dinp NN"
        /// `dW += doutᵀ · inp`: TN, m = outFeatures, n = inFeatures, k = rows.
        case weightGradient = "dweight TN"
    }

    /// How a product is computed.
    public enum Path: String, Sendable, CaseIterable, Codable {
        /// OpenBLAS `cblas_sgemm` on fp32 (today's `Matmul`).
        case openBLASFP32 = "OpenBLAS sgemm fp32"
        /// oneDNN matmul on fp32.
        case oneDNNFP32 = "oneDNN fp32"
        /// oneDNN matmul on bf16 inputs, fp32 accumulation and output.
        case oneDNNBF16 = "oneDNN bf16"
        /// bf16 widened to fp32 scratch, then OpenBLAS sgemm (the emulated path).
        case widenedBF16 = "bf16 widened + sgemm"
    }

    /// One timed cell.
    public struct Row: Sendable, Codable {
        /// The product.
        public var product: Product
        /// The path.
        public var path: Path
        /// Best GFLOP/s over the repeats.
        public var bestGFLOPs: Double
        /// Median GFLOP/s over the repeats.
        public var medianGFLOPs: Double
        /// oneDNN's implementation name (oneDNN paths only).
        public var implementation: String?
    }

    /// Tokens (`rows`), model width and MLP width: 4096 x 768 x 3072 is GPT-2 124M's first MLP
    /// GEMM at 4 x 1024 tokens.
    public var rows = 4096, inFeatures = 768, outFeatures = 3072
    /// Timed calls per cell (after one untimed call).
    public var repeats = 5

    /// A benchmark of these sizes.
    public init(rows: Int = 4096, inFeatures: Int = 768, outFeatures: Int = 3072, repeats: Int = 5) {
        self.rows = rows; self.inFeatures = inFeatures; self.outFeatures = outFeatures; self.repeats = repeats
    }

    /// Floating-point operations of one product (`2 m n k`, the same for all three).
    public var flops: Double { 2 * Double(rows) * Double(inFeatures) * Double(outFeatures) }

    /// Times every (product, path) cell, products outermost.
    public func run() -> [Row] {
        let x = FloatBuffer(count: rows * inFeatures), w = FloatBuffer(count: outFeatures * inFeatures)
        let dy = FloatBuffer(count: rows * outFeatures)
        var rng = RandomGenerator(seed: 1)
        rng.fillNormal(x.pointer, count: x.count, std: 1)
        rng.fillNormal(w.pointer, count: w.count, std: 0.02)
        rng.fillNormal(dy.pointer, count: dy.count, std: 1)
        let xb = BFloat16Buffer(rounding: x.pointer, count: x.count)
        let wb = BFloat16Buffer(rounding: w.pointer, count: w.count)
        let dyb = BFloat16Buffer(rounding: dy.pointer, count: dy.count)
        let y = FloatBuffer(count: rows * outFeatures), dx = FloatBuffer(count: rows * inFeatures)
        let dw = FloatBuffer(count: outFeatures * inFeatures)
        var results: [Row] = []
        for product in Product.allCases {
            for path in Path.allCases {
                let shape = self.shape(product, type: path == .oneDNNFP32 ? .float32 : .bfloat16)
                let call: () -> Void = {
                    switch (product, path) {
                    case (.forward, .openBLASFP32):
                        Matmul.forward(out: y.pointer, inp: x.pointer, weight: w.pointer, bias: nil, rows: self.rows,
                                       inFeatures: inFeatures, outFeatures: outFeatures)
                    case (.inputGradient, .openBLASFP32):
                        Matmul.inputGradient(dinp: dx.pointer, dout: dy.pointer, weight: w.pointer, rows: self.rows,
                                             inFeatures: inFeatures, outFeatures: outFeatures)
                    case (.weightGradient, .openBLASFP32):
                        Matmul.weightGradient(dweight: dw.pointer, dout: dy.pointer, inp: x.pointer, rows: self.rows,
                                              inFeatures: inFeatures, outFeatures: outFeatures)
                    case (_, .oneDNNFP32):
                        let (a, b) = product == .forward ? (x.pointer, w.pointer)
                            : product == .inputGradient ? (dy.pointer, w.pointer) : (dy.pointer, x.pointer)
                        OneDNNMatmul.run(shape, a: a, b: b, bias: nil, c: output(product, y, dx, dw))
                    case (_, .oneDNNBF16), (_, .widenedBF16):
                        let backend: BF16Matmul.Backend = path == .oneDNNBF16 ? .oneDNN : .widenedSGEMM
                        switch product {
                        case .forward:
                            BF16Matmul.forward(out: y.pointer, inp: xb.pointer, weight: wb.pointer, bias: nil,
                                               rows: self.rows, inFeatures: inFeatures, outFeatures: outFeatures,
                                               backend: backend)
                        case .inputGradient:
                            BF16Matmul.inputGradient(dinp: dx.pointer, dout: dyb.pointer, weight: wb.pointer,
                                                     rows: self.rows, inFeatures: inFeatures,
                                                     outFeatures: outFeatures, backend: backend)
                        case .weightGradient:
                            BF16Matmul.weightGradient(dweight: dw.pointer, dout: dyb.pointer, inp: xb.pointer,
                                                      rows: self.rows, inFeatures: inFeatures,
                                                      outFeatures: outFeatures, backend: backend)
                        }
                    }
                }
                var samples: [Double] = []
                call()
                for _ in 0..<repeats {
                    let clock = ContinuousClock(), start = clock.now
                    call()
                    samples.append(milliseconds(clock.now - start) / 1000)
                }
                let gflops = samples.map { flops / $0 / 1e9 }
                let implementation: String? = switch path {
                case .oneDNNFP32, .oneDNNBF16: OneDNNMatmul.implementation(shape)
                default: nil
                }
                results.append(Row(product: product, path: path, bestGFLOPs: gflops.max() ?? 0,
                                medianGFLOPs: median(gflops), implementation: implementation))
            }
        }
        return results
    }

    /// The forward product alternating OpenBLAS sgemm (fp32) and oneDNN (bf16) call by call, as a
    /// bf16 training step would mix them: median GFLOP/s of each. Shows whether one library's
    /// idle threads (OpenBLAS's and OpenMP's spin after a call) slow the other.
    public func alternating() -> (openBLAS: Double, oneDNN: Double) {
        let x = FloatBuffer(count: rows * inFeatures), w = FloatBuffer(count: outFeatures * inFeatures)
        let y = FloatBuffer(count: rows * outFeatures)
        let xb = BFloat16Buffer(count: x.count), wb = BFloat16Buffer(count: w.count)
        var blas: [Double] = [], dnnl: [Double] = []
        let clock = ContinuousClock()
        for iteration in 0...repeats {
            var start = clock.now
            Matmul.forward(out: y.pointer, inp: x.pointer, weight: w.pointer, bias: nil, rows: rows,
                           inFeatures: inFeatures, outFeatures: outFeatures)
            if iteration > 0 { blas.append(flops / (milliseconds(clock.now - start) / 1000) / 1e9) }
            start = clock.now
            BF16Matmul.forward(out: y.pointer, inp: xb.pointer, weight: wb.pointer, bias: nil, rows: rows,
                               inFeatures: inFeatures, outFeatures: outFeatures, backend: .oneDNN)
            if iteration > 0 { dnnl.append(flops / (milliseconds(clock.now - start) / 1000) / 1e9) }
        }
        return (median(blas), median(dnnl))
    }

    /// The oneDNN shape of `product`.
    public func shape(_ product: Product, type: OneDNNMatmul.ElementType) -> OneDNNMatmul.Shape {
        switch product {
        case .forward: OneDNNMatmul.Shape(m: rows, n: outFeatures, k: inFeatures, transposeA: false,
                                          transposeB: true, type: type)
        case .inputGradient: OneDNNMatmul.Shape(m: rows, n: inFeatures, k: outFeatures, transposeA: false,
                                                transposeB: false, type: type)
        case .weightGradient: OneDNNMatmul.Shape(m: outFeatures, n: inFeatures, k: rows, transposeA: true,
                                                 transposeB: false, type: type, accumulate: true)
        }
    }

    private func output(_ product: Product, _ y: FloatBuffer, _ dx: FloatBuffer, _ dw: FloatBuffer)
        -> UnsafeMutablePointer<Float> {
        switch product {
        case .forward: y.pointer
        case .inputGradient: dx.pointer
        case .weightGradient: dw.pointer
        }
    }

    /// The kernel family OpenBLAS loaded for the fp32 GEMMs ("Cooperlake", "Haswell", ...), and the
    /// `OPENBLAS_CORETYPE` that chose it where one is set (by the user, or by `megatron` where
    /// OpenBLAS fell back to pre-AVX kernels: `OpenBLASCore`): AVX2 kernels on an AVX-512 CPU run
    /// sgemm at about half speed (a Zen 5 under `OPENBLAS_CORETYPE=Haswell`: 207-223 GFLOP/s
    /// against 397-418 with its own choice, Cooperlake).
    public static func openBLASKernels() -> String {
        let core = OpenBLASCore.loaded
        guard let forced = getenv("OPENBLAS_CORETYPE").map({ String(cString: $0) }), !forced.isEmpty else { return core }
        return "\(core) (OPENBLAS_CORETYPE=\(forced))"
    }

    /// The CPU's model name and its SIMD/bf16 flags.
    public static func cpuDescription() -> String {
        let wanted = ["fma", "avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile"]
        let cpu = CPUInfo.current
        return "\(cpu.modelName) [\(wanted.filter(cpu.flags.contains).joined(separator: " "))]"
    }
}
