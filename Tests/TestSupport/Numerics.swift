import Parameters

/// Norm-wise relative difference `|a - b| / |b|` (|b| floored at 1e-30).
public func relativeError(_ a: [Float], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "length mismatch \(a.count) vs \(b.count)")
    var difference = 0.0, norm = 0.0
    for i in 0..<a.count {
        difference += (Double(a[i]) - b[i]) * (Double(a[i]) - b[i])
        norm += b[i] * b[i]
    }
    return (difference / max(norm, 1e-60)).squareRoot()
}

/// Norm-wise relative difference of two float arrays.
public func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    relativeError(a, b.map(Double.init))
}

/// Largest absolute elementwise difference.
public func maxAbsoluteError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "length mismatch \(a.count) vs \(b.count)")
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// Central finite-difference gradient of a Float64 function at `x`.
public func numericGradient(at x: [Double], step: Double = 1e-5, _ f: ([Double]) -> Double) -> [Double] {
    var probe = x
    return (0..<x.count).map { i in
        probe[i] = x[i] + step
        let plus = f(probe)
        probe[i] = x[i] - step
        let minus = f(probe)
        probe[i] = x[i]
        return (plus - minus) / (2 * step)
    }
}

/// Deterministic normal(0, std) floats.
public func randomFloats(_ count: Int, seed: UInt64, std: Float = 1) -> [Float] {
    var rng = RandomGenerator(seed: seed)
    var values = [Float](repeating: 0, count: count)
    values.withUnsafeMutableBufferPointer { rng.fillNormal($0.baseAddress!, count: count, std: std) }
    return values
}

/// `sum(y * r)`: the scalar objective whose gradient with respect to `y` is `r`.
public func projected(_ y: [Double], _ r: [Float]) -> Double {
    zip(y, r).reduce(0) { $0 + $1.0 * Double($1.1) }
}
