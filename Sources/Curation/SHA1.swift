/// SHA-1 (FIPS 180-4), for the shingle hash datasketch's MinHash uses (`sha1_hash32`: the first
/// four digest bytes read little-endian) and for exact-duplicate keys. Written here rather than
/// taken from swift-crypto: these inputs are a few dozen bytes each, millions of them, and a
/// one-call function over a byte buffer avoids a hasher object per call.
public enum SHA1 {
    /// The 20-byte digest of `bytes` as five big-endian words.
    public static func digest(_ bytes: UnsafeRawBufferPointer) -> (UInt32, UInt32, UInt32, UInt32, UInt32) {
        var state: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0)
        let count = bytes.count
        let fullBlocks = count / 64
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 80) { w in
            for block in 0..<fullBlocks {
                for i in 0..<16 {
                    w[i] = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: block * 64 + 4 * i, as: UInt32.self))
                }
                compress(&state, w)
            }
            // The tail, 0x80, zeros and the 64-bit bit length: one or two more blocks.
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 128) { tail in
                let rest = count - fullBlocks * 64
                let tailBlocks = rest + 9 <= 64 ? 1 : 2
                for i in 0..<(tailBlocks * 64) { tail[i] = 0 }
                for i in 0..<rest { tail[i] = bytes[fullBlocks * 64 + i] }
                tail[rest] = 0x80
                let bits = UInt64(count) &* 8
                for i in 0..<8 { tail[tailBlocks * 64 - 1 - i] = UInt8(truncatingIfNeeded: bits >> UInt64(8 * i)) }
                let raw = UnsafeRawBufferPointer(tail)
                for block in 0..<tailBlocks {
                    for i in 0..<16 {
                        w[i] = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: block * 64 + 4 * i, as: UInt32.self))
                    }
                    compress(&state, w)
                }
            }
        }
        return state
    }

    /// One 64-byte block (its 16 words in `w[0..<16]`; `w` holds 80) into the state.
    @inline(__always)
    static func compress(_ state: inout (UInt32, UInt32, UInt32, UInt32, UInt32), _ w: UnsafeMutableBufferPointer<UInt32>) {
        for i in 16..<80 {
            let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
            w[i] = x << 1 | x >> 31
        }
        var (a, b, c, d, e) = state
        @inline(__always) func round(_ f: UInt32, _ k: UInt32, _ word: UInt32) {
            let temp = (a << 5 | a >> 27) &+ f &+ e &+ k &+ word
            e = d; d = c; c = b << 30 | b >> 2; b = a; a = temp
        }
        for i in 0..<20 { round((b & c) | (~b & d), 0x5A82_7999, w[i]) }
        for i in 20..<40 { round(b ^ c ^ d, 0x6ED9_EBA1, w[i]) }
        for i in 40..<60 { round((b & c) | (b & d) | (c & d), 0x8F1B_BCDC, w[i]) }
        for i in 60..<80 { round(b ^ c ^ d, 0xCA62_C1D6, w[i]) }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d, state.4 &+ e)
    }

    /// datasketch's `sha1_hash32`: the digest's first four bytes as a little-endian integer.
    public static func hash32(_ bytes: UnsafeRawBufferPointer) -> UInt32 { digest(bytes).0.byteSwapped }
}
