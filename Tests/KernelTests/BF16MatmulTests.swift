import Kernels
import Testing
import TestSupport

/// The bf16 GEMM (both backends) against a Float64 reference computed on the bf16-rounded
/// inputs, and against the fp32 `Matmul` on the unrounded inputs.
///
/// Tolerances: every element within `1e-5 * sum_k |a_ik b_kj|` of the Float64 value on the
/// rounded inputs (bf16 products are exact in fp32, so only fp32 summation error remains; its
/// worst case for k <= 53 is about 53 * 2^-24 = 3e-6 of that sum); norm-wise within 1e-2 of the
/// fp32 `Matmul` (bf16 rounds each input by up to 2^-8, i.e. ~3e-3 relative per product, averaged
/// down over the sum).
@Suite struct BF16MatmulTests {
    static let roundedTolerance = 1e-5
    static let fp32Tolerance = 1e-2

    /// Shapes (rows, inFeatures, outFeatures): odd sizes for every SIMD tail and block edge.
    static let shapes: [(Int, Int, Int)] = [(37, 53, 29), (1, 7, 5), (64, 96, 48), (5, 130, 33)]

    struct Case {
        let rows: Int, inF: Int, outF: Int
        let x: [Float], w: [Float], b: [Float], dy: [Float]
        let xb: [BFloat16], wb: [BFloat16], dyb: [BFloat16]

        init(_ shape: (Int, Int, Int), seed: UInt64) {
            (rows, inF, outF) = shape
            x = randomFloats(rows * inF, seed: seed)
            w = randomFloats(outF * inF, seed: seed + 1, std: 0.5)
            b = randomFloats(outF, seed: seed + 2)
            dy = randomFloats(rows * outF, seed: seed + 3)
            xb = x.map(BFloat16.init); wb = w.map(BFloat16.init); dyb = dy.map(BFloat16.init)
        }
    }

    /// `C[i, j] = sum_k A(i, k) B(k, j)` in Float64 and the matching `sum_k |A(i, k) B(k, j)|`.
    static func reference(m: Int, n: Int, k: Int, _ a: (Int, Int) -> Double, _ b: (Int, Int) -> Double)
        -> (value: [Double], scale: [Double]) {
        var value = [Double](repeating: 0, count: m * n), scale = value
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0, magnitude = 0.0
                for p in 0..<k {
                    let product = a(i, p) * b(p, j)
                    sum += product
                    magnitude += abs(product)
                }
                value[i * n + j] = sum
                scale[i * n + j] = magnitude
            }
        }
        return (value, scale)
    }

    static func expectClose(_ got: [Float], _ want: (value: [Double], scale: [Double]), offset: [Double]? = nil,
                            _ what: String) {
        var worst = 0.0
        for i in 0..<got.count {
            let expected = want.value[i] + (offset?[i] ?? 0)
            let bound = roundedTolerance * (want.scale[i] + abs(offset?[i] ?? 0)) + 1e-30
            worst = max(worst, abs(Double(got[i]) - expected) / bound)
        }
        #expect(worst <= 1, "\(what): error \(worst) x the tolerance")
    }

    @Test(arguments: BF16Matmul.Backend.allCases)
    func forwardMatchesFloat64OnRoundedInputs(backend: BF16Matmul.Backend) {
        for (index, shape) in Self.shapes.enumerated() {
            let c = Case(shape, seed: 100 + UInt64(index) * 10)
            let xr = c.xb.map { Double($0.float) }, wr = c.wb.map { Double($0.float) }
            let want = Self.reference(m: c.rows, n: c.outF, k: c.inF, { xr[$0 * c.inF + $1] }, { wr[$1 * c.inF + $0] })
            for withBias in [false, true] {
                var y = [Float](repeating: .nan, count: c.rows * c.outF)
                BF16Matmul.forward(out: &y, inp: c.xb, weight: c.wb, bias: withBias ? c.b : nil,
                                   rows: c.rows, inFeatures: c.inF, outFeatures: c.outF, backend: backend)
                let bias = withBias ? (0..<y.count).map { Double(c.b[$0 % c.outF]) } : nil
                Self.expectClose(y, want, offset: bias, "\(backend) forward \(shape) bias \(withBias)")
            }
        }
    }

    @Test(arguments: BF16Matmul.Backend.allCases)
    func backwardMatchesFloat64OnRoundedInputs(backend: BF16Matmul.Backend) {
        for (index, shape) in Self.shapes.enumerated() {
            let c = Case(shape, seed: 200 + UInt64(index) * 10)
            let xr = c.xb.map { Double($0.float) }, wr = c.wb.map { Double($0.float) }, dyr = c.dyb.map { Double($0.float) }
            var dx = [Float](repeating: .nan, count: c.rows * c.inF)       // overwritten
            var dw = randomFloats(c.outF * c.inF, seed: 7)                  // accumulated into
            let dw0 = dw.map(Double.init)
            BF16Matmul.backward(dinp: &dx, dweight: &dw, dout: c.dyb, inp: c.xb, weight: c.wb,
                                rows: c.rows, inFeatures: c.inF, outFeatures: c.outF, backend: backend)
            let wantDx = Self.reference(m: c.rows, n: c.inF, k: c.outF, { dyr[$0 * c.outF + $1] }, { wr[$0 * c.inF + $1] })
            let wantDw = Self.reference(m: c.outF, n: c.inF, k: c.rows, { dyr[$1 * c.outF + $0] }, { xr[$0 * c.inF + $1] })
            Self.expectClose(dx, wantDx, "\(backend) dinp \(shape)")
            Self.expectClose(dw, wantDw, offset: dw0, "\(backend) dweight \(shape)")
            // dinp is optional: the weight gradient alone.
            var dwOnly = [Float](repeating: 0, count: c.outF * c.inF)
            BF16Matmul.backward(dinp: nil, dweight: &dwOnly, dout: c.dyb, inp: c.xb, weight: c.wb,
                                rows: c.rows, inFeatures: c.inF, outFeatures: c.outF, backend: backend)
            Self.expectClose(dwOnly, wantDw, "\(backend) dweight alone \(shape)")
        }
    }

    @Test(arguments: BF16Matmul.Backend.allCases)
    func tracksTheFP32Matmul(backend: BF16Matmul.Backend) {
        let c = Case((37, 53, 29), seed: 300)
        let (rows, inF, outF) = (c.rows, c.inF, c.outF)
        var y32 = [Float](repeating: 0, count: rows * outF), y16 = y32
        Matmul.forward(out: &y32, inp: c.x, weight: c.w, bias: c.b, rows: rows, inFeatures: inF, outFeatures: outF)
        BF16Matmul.forward(out: &y16, inp: c.xb, weight: c.wb, bias: c.b, rows: rows, inFeatures: inF,
                           outFeatures: outF, backend: backend)
        #expect(relativeError(y16, y32) < Self.fp32Tolerance)
        var dx32 = [Float](repeating: 0, count: rows * inF), dx16 = dx32
        var dw32 = [Float](repeating: 0, count: outF * inF), dw16 = dw32, db = [Float](repeating: 0, count: outF)
        let ones = [Float](repeating: 1, count: rows)
        Matmul.backward(dinp: &dx32, dweight: &dw32, dbias: &db, dout: c.dy, inp: c.x, weight: c.w, ones: ones,
                        rows: rows, inFeatures: inF, outFeatures: outF)
        BF16Matmul.backward(dinp: &dx16, dweight: &dw16, dout: c.dyb, inp: c.xb, weight: c.wb,
                            rows: rows, inFeatures: inF, outFeatures: outF, backend: backend)
        #expect(relativeError(dx16, dx32) < Self.fp32Tolerance)
        #expect(relativeError(dw16, dw32) < Self.fp32Tolerance)
        #expect(relativeError(dx16, dx32) > 0, "bf16 rounding should show: were the inputs converted at all?")
    }

    @Test func backendsAgreeAndTheActiveOneIsDescribed() {
        let c = Case((64, 96, 48), seed: 400)
        var a = [Float](repeating: 0, count: c.rows * c.outF), b = a
        BF16Matmul.forward(out: &a, inp: c.xb, weight: c.wb, bias: c.b, rows: c.rows, inFeatures: c.inF,
                           outFeatures: c.outF, backend: .oneDNN)
        BF16Matmul.forward(out: &b, inp: c.xb, weight: c.wb, bias: c.b, rows: c.rows, inFeatures: c.inF,
                           outFeatures: c.outF, backend: .widenedSGEMM)
        #expect(relativeError(a, b) < 1e-6)
        let line = BF16Matmul.description
        #expect(line.hasPrefix("bf16 GEMM: "))
        #expect(!line.contains("\n"))
        if OneDNNMatmul.hasNativeBFloat16 { #expect(BF16Matmul.active == .oneDNN, "\(line)") }
        else { #expect(BF16Matmul.active == .widenedSGEMM, "\(line)") }
    }

    @Test func fp32ThroughOneDNNMatchesOpenBLAS() {
        let c = Case((37, 53, 29), seed: 500)
        var y = [Float](repeating: 0, count: c.rows * c.outF), want = y
        let shape = OneDNNMatmul.Shape(m: c.rows, n: c.outF, k: c.inF, transposeA: false, transposeB: true,
                                       type: .float32)
        #expect(OneDNNMatmul.run(shape, a: c.x, b: c.w, bias: nil, c: &y))
        Matmul.forward(out: &want, inp: c.x, weight: c.w, bias: nil, rows: c.rows, inFeatures: c.inF, outFeatures: c.outF)
        #expect(relativeError(y, want) < 1e-6)
    }
}
