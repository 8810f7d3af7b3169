#if canImport(Glibc)
import Glibc
#endif

/// `x` rounded to `digits` decimals (0...4) for human-readable output.
func fixed(_ x: Double, _ digits: Int = 1) -> String {
    let scale = Double([1, 10, 100, 1000, 10000][max(0, min(digits, 4))])
    let rounded = (x * scale).rounded() / scale
    return digits == 0 ? String(Int(rounded)) : String(rounded)
}

/// `x` in scientific notation with three significant digits (`1.27e19`).
func scientific(_ x: Double) -> String {
    let text = scientificE(x, digits: 2)  // "1.27E+19"
    guard let e = text.firstIndex(of: "E") else { return text }
    let exponent = Int(text[text.index(after: e)...]) ?? 0
    return String(text[..<e]) + "e\(exponent)"
}

/// `x` as Megatron prints losses and learning rates: `1.234567E-04` (`digits` decimals).
func scientificE(_ x: Double, digits: Int = 6) -> String {
    guard x.isFinite else { return String(x) }
    guard x != 0 else { return "0." + String(repeating: "0", count: digits) + "E+00" }
    var exponent = Int(floor(log10(abs(x))))
    var scaled = (abs(x) / pow(10, Double(exponent)) * pow(10, Double(digits))).rounded()
    if scaled >= pow(10, Double(digits + 1)) {
        exponent += 1
        scaled = (scaled / 10).rounded()
    }
    var digitsText = String(Int64(scaled))
    digitsText.insert(".", at: digitsText.index(after: digitsText.startIndex))
    let exponentText = String(abs(exponent))
    return (x < 0 ? "-" : "") + digitsText + "E" + (exponent < 0 ? "-" : "+")
        + (exponentText.count < 2 ? "0" : "") + exponentText
}
