import Accelerator

/// Rounding fp32 values to IEEE fp16 (`Float16`: 5 exponent bits, 10 mantissa bits, largest
/// finite 65504) and back, vectorized 16 lanes at a time (F16C `vcvtps2ph` where the CPU has
/// it). The fp16 GEMMs here are emulated: their operands are fp16 values held in fp32, which
/// the fp32 GEMM multiplies exactly and accumulates in fp32. What matters for training is the
/// rounding: values beyond fp16's range become infinities (the overflow that loss scaling
/// watches for) and tiny ones flush towards zero.
public enum HalfPrecision {
    /// Writes `out[i] = Float(Float16(inp[i]))` (round to nearest even; |x| >= 65520 gives ±inf).
    public static func round(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int) {
        GPU.hostWillRead()  // fp16 rounds on the host
        ThreadPool.current.parallelFor(count, minimumPerThread: 65536) { range in
            roundSerial(out: out + range.lowerBound, inp: inp + range.lowerBound, count: range.count)
        }
    }

    /// Rounds `values` to fp16 in place.
    public static func roundInPlace(_ values: UnsafeMutablePointer<Float>, count: Int) {
        GPU.hostWillRead()  // fp16 rounds on the host
        round(out: values, inp: values, count: count)
    }

    /// Single-threaded `round` (`out` may equal `inp`).
    @inlinable
    public static func roundSerial(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int) {
        GPU.hostWillRead()  // fp16 rounds on the host
        var i = 0
        while i + 16 <= count {
            let wide = UnsafeRawPointer(inp + i).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: SIMD16<Float>(SIMD16<Float16>(wide)), as: SIMD16<Float>.self)
            i += 16
        }
        while i < count {
            out[i] = Float(Float16(inp[i]))
            i += 1
        }
    }
}
