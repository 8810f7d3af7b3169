/// `out = inp · Wᵀ (+ bias)` for a few rows (decoding: one token per sequence), reading the
/// weight once. A GEMM library packs the whole weight into its own layout before multiplying,
/// which for a handful of rows costs more than the product (OpenBLAS spent 71% of a batch-1
/// decoding step packing); here each weight row is streamed from memory once and multiplied by
/// every input row (kept in cache, in fp32) while it is in registers, so a step runs at memory bandwidth. Layouts as
/// `Matmul.forward`; fp32 accumulation; the output columns are split over the thread pool.
public enum SkinnyMatmul {
    /// Most input rows this path takes (the input rows stay in cache while the weight streams).
    public static let maxRows = 8

    /// Whether an fp32 product of `rows` input rows goes through this path.
    @inlinable public static func handles(rows: Int) -> Bool { (1...maxRows).contains(rows) }

    /// Whether a bf16 product of `rows` input rows does: from 4 rows on oneDNN's bf16 dot-product
    /// kernels win (124M decoding, bf16: 1 row 77-116 tokens/s here against 39 through oneDNN,
    /// 2 rows 167 against 101, 4 rows even at about 135, 8 rows 151 against 289).
    @inlinable public static func handlesBFloat16(rows: Int) -> Bool { (1...2).contains(rows) }

    /// fp32 weight and input.
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               bias: UnsafePointer<Float>?, rows: Int, inFeatures: Int, outFeatures: Int) {
        run(out: out, inp: inp, weight: weight, bias: bias, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
    }

    /// bf16 weight and input (products exact in fp32, as a bf16 GEMM with fp32 accumulation).
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<BFloat16>, weight: UnsafePointer<BFloat16>,
                               bias: UnsafePointer<Float>?, rows: Int, inFeatures: Int, outFeatures: Int) {
        // The few input rows widened once, not once per weight row.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: rows * inFeatures) { widened in
            BFloat16Conversion.widenSerial(out: widened.baseAddress!, inp: inp, count: rows * inFeatures)
            run(out: out, inp: UnsafePointer(widened.baseAddress!), weight: weight, bias: bias, rows: rows, inFeatures: inFeatures,
                outFeatures: outFeatures)
        }
    }

    /// The loop of both element types: for each output column n (a weight row), 16 weights at a
    /// time times the same 16 inputs of every row, one accumulator per row.
    @inline(__always)
    private static func run<Element: SkinnyOperand>(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                                    weight: UnsafePointer<Element>, bias: UnsafePointer<Float>?, rows: Int,
                                                    inFeatures k: Int, outFeatures: Int) {
        precondition(rows >= 1 && rows <= maxRows, "SkinnyMatmul takes 1...\(maxRows) rows")
        let vectorEnd = k - k % 16
        ThreadPool.current.parallelFor(outFeatures, minimumPerThread: max(1, 16384 / max(k, 1))) { columns in
            for n in columns {
                let w = weight + n * k
                var a0 = FloatVector(), a1 = FloatVector(), a2 = FloatVector(), a3 = FloatVector()
                var a4 = FloatVector(), a5 = FloatVector(), a6 = FloatVector(), a7 = FloatVector()
                var j = 0
                switch rows {
                case 1:  // four independent sums, so that the loop is not bound by the FMA's latency
                    while j + 64 <= vectorEnd {
                        a0 = a0.addingProduct(Element.vector(w + j), loadVector(inp + j))
                        a1 = a1.addingProduct(Element.vector(w + j + 16), loadVector(inp + j + 16))
                        a2 = a2.addingProduct(Element.vector(w + j + 32), loadVector(inp + j + 32))
                        a3 = a3.addingProduct(Element.vector(w + j + 48), loadVector(inp + j + 48))
                        j += 64
                    }
                    while j < vectorEnd {
                        a0 = a0.addingProduct(Element.vector(w + j), loadVector(inp + j))
                        j += 16
                    }
                    a0 += (a1 + a2) + a3
                    a1 = FloatVector(); a2 = FloatVector(); a3 = FloatVector()
                case 2:
                    while j < vectorEnd {
                        let v = Element.vector(w + j)
                        a0 = a0.addingProduct(v, loadVector(inp + j))
                        a1 = a1.addingProduct(v, loadVector(inp + k + j))
                        j += 16
                    }
                default:
                    while j < vectorEnd {
                        let v = Element.vector(w + j)
                        let x = inp + j
                        a0 = a0.addingProduct(v, loadVector(x))
                        a1 = a1.addingProduct(v, loadVector(x + k))
                        a2 = a2.addingProduct(v, loadVector(x + 2 * k))
                        if rows > 3 { a3 = a3.addingProduct(v, loadVector(x + 3 * k)) }
                        if rows > 4 { a4 = a4.addingProduct(v, loadVector(x + 4 * k)) }
                        if rows > 5 { a5 = a5.addingProduct(v, loadVector(x + 5 * k)) }
                        if rows > 6 { a6 = a6.addingProduct(v, loadVector(x + 6 * k)) }
                        if rows > 7 { a7 = a7.addingProduct(v, loadVector(x + 7 * k)) }
                        j += 16
                    }
                }
                let sums = SIMD8<Float>(a0.sum(), a1.sum(), a2.sum(), a3.sum(), a4.sum(), a5.sum(), a6.sum(), a7.sum())
                for m in 0..<rows {
                    var total = sums[m]
                    for tail in vectorEnd..<k { total += w[tail].float * inp[m * k + tail] }
                    out[m * outFeatures + n] = total + (bias?[n] ?? 0)
                }
            }
        }
    }
}

/// An element type `SkinnyMatmul` reads: 16 of them widened to fp32 at once, or one.
protocol SkinnyOperand {
    static func vector(_ p: UnsafePointer<Self>) -> FloatVector
    var float: Float { get }
}

extension Float: SkinnyOperand {
    @inline(__always) static func vector(_ p: UnsafePointer<Float>) -> FloatVector { loadVector(p) }
    @inline(__always) var float: Float { self }
}

extension BFloat16: SkinnyOperand {
    @inline(__always) static func vector(_ p: UnsafePointer<BFloat16>) -> FloatVector {
        let half = UnsafeRawPointer(p).loadUnaligned(as: SIMD16<UInt16>.self)
        return unsafeBitCast(SIMD16<UInt32>(truncatingIfNeeded: half) &<< 16, to: FloatVector.self)
    }
}
