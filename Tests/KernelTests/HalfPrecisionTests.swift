#if canImport(Glibc)
import Glibc
#endif
import Kernels
import Parameters
import Testing

/// fp32 -> fp16 -> fp32 rounding (the emulated fp16 GEMM's operands) against a Float64
/// reference that rounds to fp16's grid directly: 11 significant bits, ties to even, subnormals
/// down to 2^-24, overflow to infinity from 65520 up.
@Suite struct HalfPrecisionTests {
    /// The fp16 value nearest to `x`, computed in Float64.
    static func reference(_ x: Float) -> Float {
        if x.isNaN || x.isInfinite || x == 0 { return x }
        let magnitude = Double(abs(x))
        if magnitude >= 65520 { return x < 0 ? -.infinity : .infinity }
        let exponent = max(Int(floor(log2(magnitude))), -14)   // below 2^-14: the subnormal spacing
        let ulp = pow(2.0, Double(exponent - 10))
        let rounded = (magnitude / ulp).rounded(.toNearestOrEven) * ulp
        return Float(x < 0 ? -rounded : rounded)
    }

    @Test func roundingMatchesTheReference() {
        var random = RandomGenerator(seed: 17)
        var values = [Float](repeating: 0, count: 4096)
        random.fillNormal(&values, count: values.count, std: 1)
        // Every scale from fp16's subnormals to beyond its range, ties and boundaries.
        values = values.enumerated().map { i, v in v * Float(pow(2.0, Double(i % 48 - 30))) }
        values += [65504, 65519.99, 65520, -65536, 1e-8, 2.9802322e-08, 5.9604645e-08, 1 + 1.0 / 2048, 1 + 3.0 / 2048, 0, -0.0]
        var out = [Float](repeating: .nan, count: values.count)
        HalfPrecision.round(out: &out, inp: values, count: values.count)
        var mismatches = 0
        for (x, y) in zip(values, out) where y.bitPattern != Self.reference(x).bitPattern {
            mismatches += 1
            if mismatches <= 5 { Issue.record("\(x) -> \(y), want \(Self.reference(x))") }
        }
        #expect(mismatches == 0)
        #expect(out[values.count - 9] == .infinity && out[values.count - 8] == -.infinity)  // overflow
        #expect(out[values.count - 11] == 65504)
    }

    @Test func inPlaceEqualsOutOfPlace() {
        var random = RandomGenerator(seed: 3)
        var values = [Float](repeating: 0, count: 1000)
        random.fillNormal(&values, count: values.count, std: 100)
        var out = [Float](repeating: 0, count: values.count)
        HalfPrecision.round(out: &out, inp: values, count: values.count)
        HalfPrecision.roundInPlace(&values, count: values.count)
        #expect(values == out)
    }
}
