import Kernels
import Testing
import TestSupport

/// The few-row product that decoding runs (`SkinnyMatmul`, under `Matmul.forward` and
/// `BF16Matmul.forward`) against Float64, for every row count it takes, inner sizes with and
/// without a tail after the 64- and 16-wide loops, with and without bias. Tolerance 1e-4 of
/// max(1, |y|): fp32 sums of up to 768 unit-variance products (observed 1.3e-5).
@Suite struct SkinnyMatmulTests {
    static let shapes = [(inFeatures: 64, outFeatures: 7), (inFeatures: 200, outFeatures: 33), (inFeatures: 13, outFeatures: 5),
                         (inFeatures: 768, outFeatures: 40)]

    @Test(arguments: 1...SkinnyMatmul.maxRows)
    func fp32MatchesFloat64(rows: Int) {
        for (index, shape) in Self.shapes.enumerated() {
            let x = randomFloats(rows * shape.inFeatures, seed: UInt64(10 * rows + index))
            let w = randomFloats(shape.outFeatures * shape.inFeatures, seed: UInt64(500 + index))
            let b = randomFloats(shape.outFeatures, seed: UInt64(900 + index))
            for bias in [nil, b] {
                var y = [Float](repeating: .nan, count: rows * shape.outFeatures)
                SkinnyMatmul.forward(out: &y, inp: x, weight: w, bias: bias, rows: rows, inFeatures: shape.inFeatures,
                                     outFeatures: shape.outFeatures)
                let want = Float64Reference.linear(x.map(Double.init), w.map(Double.init), bias?.map(Double.init), rows: rows,
                                                   inFeatures: shape.inFeatures, outFeatures: shape.outFeatures)
                let worst = Self.worstError(y, want)
                #expect(worst < 1e-4, "rows \(rows) \(shape) bias \(bias != nil): \(worst)")
                // Matmul.forward takes this path for these rows: the same numbers.
                var viaMatmul = [Float](repeating: .nan, count: y.count)
                Matmul.forward(out: &viaMatmul, inp: x, weight: w, bias: bias, rows: rows, inFeatures: shape.inFeatures,
                               outFeatures: shape.outFeatures)
                #expect(viaMatmul == y)
            }
        }
    }

    @Test(arguments: 1...SkinnyMatmul.maxRows)
    func bf16MatchesFloat64OnRoundedValues(rows: Int) {
        for (index, shape) in Self.shapes.enumerated() {
            let x = randomFloats(rows * shape.inFeatures, seed: UInt64(20 * rows + index)).map(BFloat16.init)
            let w = randomFloats(shape.outFeatures * shape.inFeatures, seed: UInt64(700 + index)).map(BFloat16.init)
            let b = randomFloats(shape.outFeatures, seed: UInt64(950 + index))
            var y = [Float](repeating: .nan, count: rows * shape.outFeatures)
            SkinnyMatmul.forward(out: &y, inp: x, weight: w, bias: b, rows: rows, inFeatures: shape.inFeatures,
                                 outFeatures: shape.outFeatures)
            let want = Float64Reference.linear(x.map { Double($0.float) }, w.map { Double($0.float) }, b.map(Double.init),
                                               rows: rows, inFeatures: shape.inFeatures, outFeatures: shape.outFeatures)
            let worst = Self.worstError(y, want)
            #expect(worst < 1e-4, "rows \(rows) \(shape): \(worst)")
        }
    }

    /// Largest error relative to max(1, |reference|).
    static func worstError(_ y: [Float], _ want: [Double]) -> Double {
        var worst = 0.0
        for (value, reference) in zip(y, want) { worst = max(worst, abs(Double(value) - reference) / max(1, abs(reference))) }
        return worst
    }
}
