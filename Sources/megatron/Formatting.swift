/// `x` rounded to `digits` decimals (0...4) for human-readable output.
func fixed(_ x: Double, _ digits: Int = 1) -> String {
    let scale = Double([1, 10, 100, 1000, 10000][max(0, min(digits, 4))])
    let rounded = (x * scale).rounded() / scale
    return digits == 0 ? String(Int(rounded)) : String(rounded)
}
