import Accelerator

/// Dropout whose mask is a pure function of where an element is, not of a generator's position.
///
/// Element `counter` of a stream `key` is kept when a 32-bit hash of the pair is at least
/// `probability * 2^32`, and kept elements are scaled by `1 / (1 - probability)` (inverted
/// dropout, as `torch.nn.functional.dropout`). The hash is two rounds of a multiply-xorshift
/// mixer (Wellons' "lowbias32"), one per half of the 64-bit key, evaluated 16 lanes at a time.
///
/// Because nothing is drawn in sequence, the backward regenerates the forward's mask instead of
/// storing it (no `[n, c]` bytes per dropout kept between the passes), a recomputed forward
/// draws the same mask, and a split tensor draws, on each rank, exactly the numbers the whole
/// tensor draws on one rank: callers key each element by its global coordinates.
public struct DropoutMask: Sendable, Equatable {
    /// Fraction of elements zeroed, in `[0, 1)`.
    public let probability: Float
    /// The stream: a different key gives an independent mask.
    public let key: UInt64

    public init(probability: Float, key: UInt64) {
        precondition(probability >= 0 && probability < 1, "dropout probability must be in [0, 1)")
        self.probability = probability
        self.key = key
    }

    /// Hashes below this are dropped.
    @inline(__always)
    var threshold: UInt32 { UInt32(min(Double(probability) * 4_294_967_296, 4_294_967_295)) }

    /// The factor kept elements are multiplied by.
    @inline(__always)
    public var scale: Float { 1 / (1 - probability) }

    /// Whether element `counter` is kept.
    @inline(__always)
    public func keeps(_ counter: UInt32) -> Bool { Self.hash(counter, key: key) >= threshold }

    /// The factors (0 or `scale`) of elements `firstCounter ..< firstCounter + 16`.
    @inline(__always)
    public func factors(_ firstCounter: UInt32) -> FloatVector {
        let hashes = Self.hash(SIMD16<UInt32>(repeating: firstCounter) &+ Self.lanes, key: key)
        let kept = unsignedAtLeast(hashes, SIMD16(repeating: threshold))
        return unsafeBitCast(kept & SIMD16(repeating: scale.bitPattern), to: FloatVector.self)
    }

    /// The factor (0 or `scale`) of element `counter`.
    @inline(__always)
    public func factor(_ counter: UInt32) -> Float { keeps(counter) ? scale : 0 }

    /// `values[i] *= mask(firstCounter + i) * scale` for `count` elements (the forward, and the
    /// backward on the gradient: dropout is linear in its input with the mask fixed).
    public func apply(_ values: UnsafeMutablePointer<Float>, count: Int, firstCounter: UInt32) {
        GPU.hostWillRead()  // runs on the host, over what GPU kernels may have written
        apply(out: values, inp: values, count: count, firstCounter: firstCounter)
    }

    /// `out[i] = inp[i] * mask(firstCounter + i) * scale` (`out` may be `inp`).
    public func apply(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int, firstCounter: UInt32) {
        GPU.hostWillRead()
        var i = 0
        while i + 16 <= count {
            storeVector(loadVector(inp + i) * factors(firstCounter &+ UInt32(truncatingIfNeeded: i)), out + i)
            i += 16
        }
        while i < count {
            out[i] = inp[i] * factor(firstCounter &+ UInt32(truncatingIfNeeded: i))
            i += 1
        }
    }

    /// The 16 lane offsets 0...15.
    static let lanes = SIMD16<UInt32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)

    @inline(__always)
    static func hash(_ counter: UInt32, key: UInt64) -> UInt32 {
        mix(mix(counter ^ UInt32(truncatingIfNeeded: key)) ^ UInt32(truncatingIfNeeded: key >> 32))
    }

    @inline(__always)
    static func hash(_ counters: SIMD16<UInt32>, key: UInt64) -> SIMD16<UInt32> {
        mix(mix(counters ^ SIMD16(repeating: UInt32(truncatingIfNeeded: key)))
            ^ SIMD16(repeating: UInt32(truncatingIfNeeded: key >> 32)))
    }

    @inline(__always)
    static func mix(_ value: UInt32) -> UInt32 {
        var x = value
        x ^= x >> 16
        x &*= 0x7feb_352d
        x ^= x >> 15
        x &*= 0x846c_a68b
        x ^= x >> 16
        return x
    }

    @inline(__always)
    static func mix(_ value: SIMD16<UInt32>) -> SIMD16<UInt32> {
        var x = value
        x ^= x &>> 16
        x &*= SIMD16(repeating: 0x7feb_352d)
        x ^= x &>> 15
        x &*= SIMD16(repeating: 0x846c_a68b)
        x ^= x &>> 16
        return x
    }

    /// A key from a seed and the coordinates that name a stream (SplitMix64 over each in turn).
    public static func key(seed: UInt64, _ coordinates: Int...) -> UInt64 {
        var z = seed
        for coordinate in coordinates { z = splitMix(z ^ UInt64(bitPattern: Int64(coordinate))) }
        return z
    }

    @inline(__always)
    static func splitMix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
