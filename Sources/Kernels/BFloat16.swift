import Accelerator

/// A bfloat16 number stored as its 16 bits: the upper half of an IEEE fp32 (sign, 8 exponent
/// bits, 7 mantissa bits). Memory layout is a `UInt16`, so `UnsafePointer<BFloat16>` is what
/// oneDNN's `bf16` data type reads.
@frozen public struct BFloat16: Sendable, Hashable {
    /// The 16 bits.
    public var bitPattern: UInt16

    /// The number with these bits.
    @inlinable public init(bitPattern: UInt16) { self.bitPattern = bitPattern }

    /// `value` rounded to the nearest bf16, ties to even; NaN stays NaN (quiet), infinities and
    /// signed zeros are kept, finite values beyond bf16's range round to infinity.
    @inlinable public init(_ value: Float) {
        bitPattern = BFloat16.round(value.bitPattern)
    }

    /// The exact fp32 value.
    @inlinable public var float: Float { Float(bitPattern: UInt32(bitPattern) << 16) }

    /// fp32 bits -> bf16 bits, round to nearest even (the scalar twin of the vector loop).
    @inlinable static func round(_ bits: UInt32) -> UInt16 {
        if bits & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }
}

/// Conversions between fp32 and bf16 buffers, vectorized 16 lanes at a time (no libm).
public enum BFloat16Conversion {
    /// Writes `out[i] = bf16(inp[i])` (round to nearest even) for `count` elements.
    public static func round(out: UnsafeMutablePointer<BFloat16>, inp: UnsafePointer<Float>, count: Int) {
        if let gpu = GPU.active {
            return out.withMemoryRebound(to: UInt16.self, capacity: count) { gpu.bf16Round(out: $0, inp: inp, count: count) }
        }
        ThreadPool.current.parallelFor(count, minimumPerThread: 65536) { range in
            roundSerial(out: out + range.lowerBound, inp: inp + range.lowerBound, count: range.count)
        }
    }

    /// Writes `out[i] = Float(inp[i])` (exact) for `count` elements.
    public static func widen(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<BFloat16>, count: Int) {
        if let gpu = GPU.active {
            return inp.withMemoryRebound(to: UInt16.self, capacity: count) { gpu.bf16Widen(out: out, inp: $0, count: count) }
        }
        ThreadPool.current.parallelFor(count, minimumPerThread: 65536) { range in
            widenSerial(out: out + range.lowerBound, inp: inp + range.lowerBound, count: range.count)
        }
    }

    /// Rounds `inp` to bf16 in place: `inp[i] = Float(bf16(inp[i]))` (what a value looks like after
    /// a bf16 round trip; tests and references use it).
    public static func roundInPlace(_ values: UnsafeMutablePointer<Float>, count: Int) {
        if let gpu = GPU.active { return gpu.bf16RoundInPlace(values, count: count) }
        ThreadPool.current.parallelFor(count, minimumPerThread: 65536) { range in
            var i = range.lowerBound
            while i + 16 <= range.upperBound {
                let bits = UnsafeRawPointer(values + i).loadUnaligned(as: SIMD16<UInt32>.self)
                let rounded = SIMD16<UInt32>(truncatingIfNeeded: roundVector(bits)) &<< 16
                UnsafeMutableRawPointer(values + i).storeBytes(of: rounded, as: SIMD16<UInt32>.self)
                i += 16
            }
            while i < range.upperBound {
                values[i] = BFloat16(values[i]).float
                i += 1
            }
        }
    }

    /// 16 fp32 values after a bf16 round trip (round to nearest even), in registers (in 32-bit
    /// lanes throughout: no narrowing to 16 bits and back).
    @inlinable @inline(__always)
    public static func roundTrip(_ values: FloatVector) -> FloatVector {
        let bits = unsafeBitCast(values, to: SIMD16<UInt32>.self)
        let lsb: SIMD16<UInt32> = (bits &>> 16) & 1
        let rounded: SIMD16<UInt32> = (bits &+ 0x7FFF &+ lsb) & 0xFFFF_0000
        let quietNaN: SIMD16<UInt32> = (bits | 0x0040_0000) & 0xFFFF_0000
        let nanMask = ~unsignedAtLeast(SIMD16(repeating: 0x7F80_0000), bits & 0x7FFF_FFFF)  // |bits| > infinity's
        return unsafeBitCast((rounded & ~nanMask) | (quietNaN & nanMask), to: FloatVector.self)
    }

    /// Single-threaded `round` (for callers that split the work themselves).
    @inlinable
    public static func roundSerial(out: UnsafeMutablePointer<BFloat16>, inp: UnsafePointer<Float>, count: Int) {
        var i = 0
        while i + 16 <= count {
            let bits = UnsafeRawPointer(inp + i).loadUnaligned(as: SIMD16<UInt32>.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: roundVector(bits), as: SIMD16<UInt16>.self)
            i += 16
        }
        while i < count {
            out[i] = BFloat16(inp[i])
            i += 1
        }
    }

    /// Single-threaded `widen`.
    @inlinable
    public static func widenSerial(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<BFloat16>, count: Int) {
        var i = 0
        while i + 16 <= count {
            let half = UnsafeRawPointer(inp + i).loadUnaligned(as: SIMD16<UInt16>.self)
            let bits = SIMD16<UInt32>(truncatingIfNeeded: half) &<< 16
            UnsafeMutableRawPointer(out + i).storeBytes(of: bits, as: SIMD16<UInt32>.self)
            i += 16
        }
        while i < count {
            out[i] = inp[i].float
            i += 1
        }
    }

    /// 16 fp32 bit patterns -> 16 bf16 bit patterns, round to nearest even, NaNs kept (quieted).
    /// (The NaN test goes through `unsignedAtLeast`, not `.>`, which Swift scalarizes.)
    @inlinable @inline(__always)
    static func roundVector(_ bits: SIMD16<UInt32>) -> SIMD16<UInt16> {
        let lsb: SIMD16<UInt32> = (bits &>> 16) & 1
        let rounded: SIMD16<UInt32> = (bits &+ 0x7FFF &+ lsb) &>> 16
        let quietNaN: SIMD16<UInt32> = (bits &>> 16) | 0x0040
        let nanMask = ~unsignedAtLeast(SIMD16(repeating: 0x7F80_0000), bits & 0x7FFF_FFFF)  // |bits| > infinity's
        return SIMD16<UInt16>(truncatingIfNeeded: (rounded & ~nanMask) | (quietNaN & nanMask))
    }
}

/// An owned, 64-byte aligned array of bf16 values, zero-initialized unless asked not to (one
/// allocation, freed on deinit).
public final class BFloat16Buffer: @unchecked Sendable {
    /// Number of elements.
    public let count: Int
    /// Start of the storage.
    public let pointer: UnsafeMutablePointer<BFloat16>

    /// Allocates `count` zeroed elements.
    public convenience init(count: Int) { self.init(count: count, zeroed: true) }

    /// Allocates `count` elements, zeroed or not (see `FloatBuffer.init(count:zeroed:)`).
    public init(count: Int, zeroed: Bool) {
        precondition(count >= 0, "BFloat16Buffer: negative count \(count)")
        self.count = count
        if let managed = GPU.allocate(bytes: max(1, count) * 2) {  // --device cuda: zeroed on the GPU
            pointer = managed.bindMemory(to: BFloat16.self, capacity: max(1, count))
            return
        }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 2, alignment: 64)
        pointer = raw.bindMemory(to: BFloat16.self, capacity: max(1, count))
        if zeroed { pointer.initialize(repeating: BFloat16(bitPattern: 0), count: count) }
    }

    /// Allocates and fills with `values` rounded to bf16.
    public convenience init(rounding values: UnsafePointer<Float>, count: Int) {
        self.init(count: count)
        BFloat16Conversion.round(out: pointer, inp: values, count: count)
    }

    deinit { if !GPU.release(pointer) { pointer.deallocate() } }

    /// The contents widened to fp32 (for tests and small exports).
    public var floats: [Float] {
        if count == 0 { return [] }
        return [Float](unsafeUninitializedCapacity: count) { storage, initialized in
            BFloat16Conversion.widenSerial(out: storage.baseAddress!, inp: pointer, count: count)
            initialized = count
        }
    }
}
