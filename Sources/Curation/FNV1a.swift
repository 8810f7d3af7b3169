/// 64-bit FNV-1a, the byte hash the curation steps use for words and feature buckets (the
/// quality classifier's fixture recomputes it in Python, so its constants are part of the format).
enum FNV1a {
    static let offset: UInt64 = 0xCBF2_9CE4_8422_2325
    static let prime: UInt64 = 0x100_0000_01B3

    /// `hash` extended by one byte.
    @inline(__always)
    static func step(_ hash: UInt64, _ byte: UInt8) -> UInt64 { (hash ^ UInt64(byte)) &* prime }

    /// The hash of `bytes`.
    static func hash<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 { bytes.reduce(offset, step) }
}
