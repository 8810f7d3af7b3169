/// 64-bit FNV-1a: the byte hash the curation steps use for words and feature buckets (the quality
/// classifier's fixture recomputes it in Python, so its constants are part of the format), and
/// the digest of a dataset's index (fed whole 64-bit words).
public enum FNV1a {
    public static let offset: UInt64 = 0xCBF2_9CE4_8422_2325
    public static let prime: UInt64 = 0x100_0000_01B3

    /// `hash` extended by one byte.
    @inlinable @inline(__always)
    public static func step(_ hash: UInt64, _ byte: UInt8) -> UInt64 { (hash ^ UInt64(byte)) &* prime }

    /// `hash` extended by a whole 64-bit word in one step.
    @inlinable @inline(__always)
    public static func step(_ hash: UInt64, word: UInt64) -> UInt64 { (hash ^ word) &* prime }

    /// The hash of `bytes`.
    @inlinable
    public static func hash<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 { bytes.reduce(offset, step) }

    /// `hash` as 16 hex digits.
    public static func hex(_ hash: UInt64) -> String {
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
