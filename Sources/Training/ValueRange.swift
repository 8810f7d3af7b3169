/// The values a number or integer flag accepts: always finite (and, for real numbers, within
/// Float32's range, since the kernels compute in Float32), optionally bounded below and above.
/// `TrainingConfig.validate()` checks every flag of `TrainingFlag.all` against its range, so the
/// error names the flag, the range and the value given.
public struct ValueRange: Sendable, CustomStringConvertible {
    /// The lower bound and whether it is allowed; nil: no lower bound.
    public var lower: (value: Double, inclusive: Bool)?
    /// The upper bound and whether it is allowed; nil: no upper bound.
    public var upper: (value: Double, inclusive: Bool)?

    /// Any finite value.
    public static let finite = ValueRange()
    /// `x > 0`.
    public static let positive = ValueRange(lower: (0, false))
    /// `x >= 0`.
    public static let nonNegative = ValueRange(lower: (0, true))
    /// `x >= value`.
    public static func atLeast(_ value: Double) -> ValueRange { ValueRange(lower: (value, true)) }
    /// `[0, 1)`: Adam's moment coefficients.
    public static let unitHalfOpen = ValueRange(lower: (0, true), upper: (1, false))
    /// `[a, b)`.
    public static func halfOpen(_ a: Double, _ b: Double) -> ValueRange { ValueRange(lower: (a, true), upper: (b, false)) }

    /// Whether `x` is finite and within the bounds.
    public func contains(_ x: Double) -> Bool {
        guard x.isFinite else { return false }
        if let lower, lower.inclusive ? x < lower.value : x <= lower.value { return false }
        if let upper, upper.inclusive ? x > upper.value : x >= upper.value { return false }
        return true
    }

    /// `> 0`, `>= 1`, `in [0, 1)`; empty for `finite`.
    public var description: String {
        switch (lower, upper) {
        case let (lower?, upper?):
            "in " + (lower.inclusive ? "[" : "(") + Self.text(lower.value) + ", " + Self.text(upper.value) + (upper.inclusive ? "]" : ")")
        case let (lower?, nil): (lower.inclusive ? ">= " : "> ") + Self.text(lower.value)
        case let (nil, upper?): (upper.inclusive ? "<= " : "< ") + Self.text(upper.value)
        case (nil, nil): ""
        }
    }

    /// Why `x` is refused (nil if it is accepted): "must be a finite number > 0, got inf".
    /// `float32` also refuses finite values beyond Float32's range (they become infinite there).
    public func violation(_ x: Double, float32: Bool) -> String? {
        let bound = description.isEmpty ? "" : " " + description
        if !x.isFinite || (float32 && !Float(x).isFinite) {
            return "must be a finite number\(bound), got \(Self.text(x))"
                + (x.isFinite ? " (beyond Float32's largest value \(Float.greatestFiniteMagnitude))" : "")
        }
        return contains(x) ? nil : "must be\(bound), got \(Self.text(x))"
    }

    /// Throws `flag: must be ..., got x` when `x` is out of range: the check of other commands'
    /// numeric options (`plan --train-tokens`, `evaluate --seed`).
    public func check(_ x: Double, flag: String, float32: Bool = false) throws(TrainingError) {
        if let reason = violation(x, float32: float32) { throw .invalidFlag(flag, reason) }
    }

    /// A whole number without its `.0` (`1`, `0.9`, `1e-08`, `inf`).
    static func text(_ x: Double) -> String {
        x.isFinite && x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : String(x)
    }
}
