import Kernels
import Testing
import TestSupport

/// fp32 <-> bf16 conversion against a reference that rounds by comparing distances in Float64
/// (not by the bit trick under test): ties to even, subnormals, overflow to infinity, NaN.
@Suite struct BFloat16Tests {
    /// The nearest bf16 to the fp32 with `bits`, ties to even, by Float64 distances; NaN -> nil.
    static func referenceRound(_ bits: UInt32) -> UInt16? {
        let x = Float(bitPattern: bits)
        if x.isNaN { return nil }
        if x.isInfinite { return UInt16(bits >> 16) }
        let sign = UInt16(bits >> 16) & 0x8000
        let down = UInt16(bits >> 16) & 0x7FFF       // magnitude truncated toward zero
        let up = down + 1                              // next magnitude (0x7F80 is infinity)
        let magnitude = Double(abs(x))
        let low = Double(Float(bitPattern: UInt32(down) << 16))
        let high = up == 0x7F80 ? 0x1p128 : Double(Float(bitPattern: UInt32(up) << 16))
        let (dLow, dHigh) = (magnitude - low, high - magnitude)
        let pick = dLow < dHigh ? down : dHigh < dLow ? up : (down & 1 == 0 ? down : up)
        return sign | pick
    }

    /// Converts `bits` with the vector kernel (in an array long enough for the SIMD loop).
    static func converted(_ bits: [UInt32]) -> [UInt16] {
        let floats = bits.map { Float(bitPattern: $0) }
        var out = [BFloat16](repeating: BFloat16(bitPattern: 0), count: floats.count)
        BFloat16Conversion.round(out: &out, inp: floats, count: floats.count)
        return out.map(\.bitPattern)
    }

    static func expectMatchesReference(_ bits: [UInt32], _ got: [UInt16]) {
        var failures = 0
        for (input, output) in zip(bits, got) {
            if let want = referenceRound(input) {
                if output != want, failures < 5 {
                    failures += 1
                    Issue.record("0x\(String(input, radix: 16)) -> 0x\(String(output, radix: 16)), want 0x\(String(want, radix: 16))")
                }
            } else {
                let value = BFloat16(bitPattern: output).float
                #expect(value.isNaN, "NaN 0x\(String(input, radix: 16)) became 0x\(String(output, radix: 16))")
                #expect(output & 0x8000 == UInt16(input >> 16) & 0x8000, "NaN sign changed")
            }
        }
    }

    @Test func edgeCasesRoundToNearestEven() {
        let cases: [(UInt32, UInt16)] = [
            (0x3F80_0000, 0x3F80),  // 1
            (0x3F80_8000, 0x3F80),  // 1 + 2^-8: tie, 0x3F80 even
            (0x3F81_8000, 0x3F82),  // tie, 0x3F81 odd -> up
            (0x3F80_8001, 0x3F81),  // just above the tie
            (0x3F81_7FFF, 0x3F81),  // just below the tie
            (0xBF81_8000, 0xBF82),  // negative tie
            (0x7F7F_7FFF, 0x7F7F),  // below half an ulp past bf16 max: stays finite
            (0x7F7F_8000, 0x7F80),  // tie at the top: 0x7F7F odd -> infinity
            (0x7F7F_FFFF, 0x7F80),  // fp32 max -> infinity
            (0xFF7F_FFFF, 0xFF80),  // -fp32 max -> -infinity
            (0x7F80_0000, 0x7F80), (0xFF80_0000, 0xFF80),  // infinities
            (0x0000_0000, 0x0000), (0x8000_0000, 0x8000),  // signed zeros
            (0x0000_0001, 0x0000),  // smallest subnormal -> 0
            (0x0000_8000, 0x0000),  // subnormal tie, even -> 0
            (0x0001_8000, 0x0002),  // subnormal tie, odd -> up
            (0x0000_8001, 0x0001),  // subnormal above the tie
            (0x007F_FFFF, 0x0080),  // largest subnormal rounds up to the smallest normal
            (0x8000_8001, 0x8001),  // negative subnormal
        ]
        let bits = cases.map(\.0) + cases.map(\.0)  // twice: 40 values, through the vector loop and the tail
        let got = Self.converted(bits)
        for (i, (input, want)) in (cases + cases).enumerated() {
            #expect(got[i] == want, "0x\(String(input, radix: 16)) -> 0x\(String(got[i], radix: 16)), want 0x\(String(want, radix: 16))")
            #expect(BFloat16(Float(bitPattern: input)).bitPattern == want, "scalar path")
        }
        Self.expectMatchesReference(bits, got)
    }

    @Test func nanStaysNaN() {
        let nans: [UInt32] = [0x7F80_0001, 0x7F80_FFFF, 0x7FC0_0000, 0x7FFF_FFFF, 0xFF80_0001, 0xFFC0_0000, 0xFFFF_FFFF,
                              0x7FBF_FFFF]
        let bits = nans + nans + nans  // 24 values: vector loop and tail
        Self.expectMatchesReference(bits, Self.converted(bits))
        for input in nans { #expect(BFloat16(Float(bitPattern: input)).float.isNaN) }
    }

    @Test func sweepOfBitPatternsMatchesReference() {
        // Every 4093rd of the 2^32 patterns (about 1M, all exponents and signs) plus each value's
        // tie neighbourhood at a few exponents.
        var bits: [UInt32] = []
        var pattern: UInt64 = 0
        while pattern < 1 << 32 { bits.append(UInt32(pattern)); pattern += 4093 }
        for exponent: UInt32 in [0x00, 0x01, 0x7F, 0x80, 0xFE] {
            for low: UInt32 in [0x7FFE, 0x7FFF, 0x8000, 0x8001, 0x18000, 0x17FFF] {
                bits.append(exponent << 23 | low)
                bits.append(0x8000_0000 | exponent << 23 | low)
            }
        }
        Self.expectMatchesReference(bits, Self.converted(bits))
        // The in-register round trip (the bf16 attention core's) rounds the same way.
        var roundTrips: [UInt16] = []
        for start in stride(from: 0, to: bits.count - 15, by: 16) {
            let values = FloatVector((0..<16).map { Float(bitPattern: bits[start + $0]) })
            let rounded = BFloat16Conversion.roundTrip(values)
            for lane in 0..<16 {
                #expect(rounded[lane].bitPattern & 0xFFFF == 0, "round trip left low bits")
                roundTrips.append(UInt16(truncatingIfNeeded: rounded[lane].bitPattern >> 16))
            }
        }
        Self.expectMatchesReference(Array(bits.prefix(roundTrips.count)), roundTrips)
    }

    @Test func widenIsExactForEveryPattern() {
        let all = (0...0xFFFF).map { BFloat16(bitPattern: UInt16($0)) }
        var out = [Float](repeating: 0, count: all.count + 3)
        BFloat16Conversion.widen(out: &out, inp: all, count: all.count)
        for i in 0..<all.count where out[i].bitPattern != UInt32(i) << 16 {
            Issue.record("0x\(String(i, radix: 16)) widened to 0x\(String(out[i].bitPattern, radix: 16))")
            break
        }
        // Round trip: every bf16 that is not NaN survives fp32 -> bf16 unchanged.
        var back = [BFloat16](repeating: BFloat16(bitPattern: 0), count: all.count)
        BFloat16Conversion.round(out: &back, inp: out, count: all.count)
        for i in 0..<all.count where !out[i].isNaN && back[i].bitPattern != UInt16(i) {
            Issue.record("round trip of 0x\(String(i, radix: 16)) gave 0x\(String(back[i].bitPattern, radix: 16))")
            break
        }
    }

    @Test func largeArraysOnThePoolAgreeWithTheScalarPath() {
        let count = 3_000_017
        let values = randomFloats(count, seed: 11, std: 3)
        let buffer = BFloat16Buffer(rounding: values, count: count)
        var mismatches = 0
        for i in 0..<count where buffer.pointer[i] != BFloat16(values[i]) { mismatches += 1 }
        #expect(mismatches == 0)
        let widened = buffer.floats
        var inPlace = values
        BFloat16Conversion.roundInPlace(&inPlace, count: count)
        #expect(widened == inPlace)
        // Relative rounding error is at most half an ulp: 2^-8 (8 significant bits).
        var worst: Float = 0
        for i in 0..<count where values[i] != 0 { worst = max(worst, abs(widened[i] - values[i]) / abs(values[i])) }
        #expect(worst <= 0x1p-8)
    }
}
