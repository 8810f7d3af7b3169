/// `x` rounded to `digits` decimals (0...4) for human-readable output.
func fixed(_ x: Double, _ digits: Int = 1) -> String {
    let scale = Double([1, 10, 100, 1000, 10000][max(0, min(digits, 4))])
    let rounded = (x * scale).rounded() / scale
    return digits == 0 ? String(Int(rounded)) : String(rounded)
}

/// `x` in scientific notation with three significant digits (`1.27e19`).
func scientific(_ x: Double) -> String {
    guard x != 0, x.isFinite else { return String(x) }
    var exponent = Int((abs(x)).log10Floor)
    var mantissa = x / pow10(exponent)
    if abs(mantissa) >= 9.995 {
        exponent += 1
        mantissa /= 10
    }
    return fixed(mantissa, 2) + "e\(exponent)"
}

private func pow10(_ n: Int) -> Double {
    var result = 1.0
    for _ in 0..<abs(n) { result *= 10 }
    return n < 0 ? 1 / result : result
}

extension Double {
    /// floor(log10(self)) for positive values, without Foundation.
    fileprivate var log10Floor: Double {
        var n = 0.0, y = self
        while y >= 10 { y /= 10; n += 1 }
        while y < 1 { y *= 10; n -= 1 }
        return n
    }
}
