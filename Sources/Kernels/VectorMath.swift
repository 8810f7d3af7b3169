/// SIMD width used by the vectorized loops (16 floats = one AVX-512 register).
public typealias FloatVector = SIMD16<Float>

@inline(__always)
func loadVector(_ pointer: UnsafePointer<Float>) -> FloatVector {
    UnsafeRawPointer(pointer).loadUnaligned(as: FloatVector.self)
}

@inline(__always)
func loadVector(_ pointer: UnsafeMutablePointer<Float>) -> FloatVector {
    UnsafeRawPointer(pointer).loadUnaligned(as: FloatVector.self)
}

@inline(__always)
func storeVector(_ value: FloatVector, _ pointer: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: FloatVector.self)
}

/// Lane-wise maximum as compare + select (the standard library's `pointwiseMax` compiles to a
/// scalar loop on AVX2 targets).
@inline(__always)
public func vectorMax(_ a: FloatVector, _ b: FloatVector) -> FloatVector {
    a.replacing(with: b, where: b .> a)
}

/// Lane-wise minimum as compare + select.
@inline(__always)
public func vectorMin(_ a: FloatVector, _ b: FloatVector) -> FloatVector {
    a.replacing(with: b, where: b .< a)
}

/// All ones in the lanes where `a >= b` (unsigned), zero elsewhere. Computed as "no borrow out
/// of `a - b`" (Hacker's Delight 2-13) because Swift lowers `.>=` and `.>` on `SIMD16<UInt32>` to
/// a lane-by-lane loop through the stack: in the bf16 rounding's NaN test that had been 11% of a
/// bf16 step's CPU time, in the dropout mask 4%. Use this instead of those comparisons.
@inlinable @inline(__always)
public func unsignedAtLeast(_ a: SIMD16<UInt32>, _ b: SIMD16<UInt32>) -> SIMD16<UInt32> {
    let borrow = ((~a & b) | (~(a ^ b) & (a &- b))) &>> 31  // 1 where a < b
    return borrow &- 1
}

/// Vectorized exponential, accurate to about 2 ulp on [-87, 88]; inputs below -87 give 0-ish
/// (a tiny positive number), inputs above 88 saturate. No libm call in the loop.
@inline(__always)
public func fastExp(_ x: FloatVector) -> FloatVector {
    let clamped = vectorMax(vectorMin(x, FloatVector(repeating: 88.0)), FloatVector(repeating: -87.0))
    // n = round(x / ln 2) with the 1.5 * 2^23 trick; its low mantissa bits hold n.
    let magic = FloatVector(repeating: 12_582_912.0)
    let shifted: FloatVector = magic.addingProduct(clamped, FloatVector(repeating: 1.442_695_040_9))
    let n: FloatVector = shifted - magic
    // r = x - n ln2, in two parts for accuracy.
    var r: FloatVector = clamped.addingProduct(n, FloatVector(repeating: -0.693_359_375))
    r = r.addingProduct(n, FloatVector(repeating: 2.121_944_4e-4))
    // e^r on [-ln2/2, ln2/2]: degree-6 polynomial (Cephes expf coefficients).
    var p = FloatVector(repeating: 1.987_569_15e-4)
    p = FloatVector(repeating: 1.398_199_95e-3).addingProduct(p, r)
    p = FloatVector(repeating: 8.333_451_9e-3).addingProduct(p, r)
    p = FloatVector(repeating: 4.166_579_6e-2).addingProduct(p, r)
    p = FloatVector(repeating: 1.666_666_55e-1).addingProduct(p, r)
    p = FloatVector(repeating: 5.000_000_1e-1).addingProduct(p, r)
    let r2: FloatVector = r * r
    let poly: FloatVector = r.addingProduct(p, r2) + 1.0
    // 2^n from the exponent bits.
    let bits = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- 0x4B40_0000
    let scale = unsafeBitCast((bits &+ 127) &<< 23, to: FloatVector.self)
    return poly * scale
}

/// Vectorized hyperbolic tangent through `fastExp`: tanh(x) = 1 - 2 / (exp(2x) + 1).
/// Absolute error below 2e-7 everywhere.
@inline(__always)
public func fastTanh(_ x: FloatVector) -> FloatVector {
    let clamped = vectorMax(vectorMin(x, FloatVector(repeating: 9.0)), FloatVector(repeating: -9.0))
    let e = fastExp(clamped + clamped)
    return 1.0 - 2.0 / (e + 1.0)
}

/// Vectorized error function: `x P(x²) / Q(x²)` on x clamped to [-4, 4] (a rational
/// approximation with Eigen's fp32 coefficients; erf(±4) is ±1 to fp32's precision). Absolute
/// error below 4e-7 everywhere (2-3 ulp near ±1).
@inline(__always)
public func fastErf(_ x: FloatVector) -> FloatVector {
    let clamped = vectorMax(vectorMin(x, FloatVector(repeating: 4)), FloatVector(repeating: -4))
    let x2: FloatVector = clamped * clamped
    var p = FloatVector(repeating: -2.726_142_258_013_06e-10)
    p = FloatVector(repeating: 2.770_681_424_959_02e-08).addingProduct(p, x2)
    p = FloatVector(repeating: -2.101_024_020_825_08e-06).addingProduct(p, x2)
    p = FloatVector(repeating: -5.692_506_394_623_46e-05).addingProduct(p, x2)
    p = FloatVector(repeating: -7.349_906_303_268_55e-04).addingProduct(p, x2)
    p = FloatVector(repeating: -2.954_599_808_540_25e-03).addingProduct(p, x2)
    p = FloatVector(repeating: -1.609_603_332_624_15e-02).addingProduct(p, x2)
    var q = FloatVector(repeating: -1.456_607_184_649_96e-05)
    q = FloatVector(repeating: -2.133_740_552_789_05e-04).addingProduct(q, x2)
    q = FloatVector(repeating: -1.682_826_974_382_03e-03).addingProduct(q, x2)
    q = FloatVector(repeating: -7.373_329_167_204_68e-03).addingProduct(q, x2)
    q = FloatVector(repeating: -1.426_473_905_141_89e-02).addingProduct(q, x2)
    return clamped * p / q
}

/// Scalar `exp` through the vector routine (for tails of vector loops).
@inline(__always)
public func fastExp(_ x: Float) -> Float {
    fastExp(FloatVector(repeating: x))[0]
}

/// Scalar `tanh` through the vector routine (for tails of vector loops).
@inline(__always)
public func fastTanh(_ x: Float) -> Float {
    fastTanh(FloatVector(repeating: x))[0]
}

/// Sum of `count` floats.
@inline(__always)
public func vectorSum(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
    var acc = FloatVector(repeating: 0)
    var i = 0
    while i + 16 <= count {
        acc += loadVector(x + i)
        i += 16
    }
    var total = acc.sum()
    while i < count {
        total += x[i]
        i += 1
    }
    return total
}

/// Dot product of two float arrays of length `count`.
@inline(__always)
public func vectorDot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ count: Int) -> Float {
    var acc = FloatVector(repeating: 0)
    var i = 0
    while i + 16 <= count {
        acc = acc.addingProduct(loadVector(x + i), loadVector(y + i))
        i += 16
    }
    var total = acc.sum()
    while i < count {
        total += x[i] * y[i]
        i += 1
    }
    return total
}

/// Largest of `count` floats (count > 0).
@inline(__always)
public func vectorMax(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
    var acc = FloatVector(repeating: -.infinity)
    var i = 0
    while i + 16 <= count {
        acc = vectorMax(acc, loadVector(x + i))
        i += 16
    }
    var best = acc.max()
    while i < count {
        best = max(best, x[i])
        i += 1
    }
    return best
}
