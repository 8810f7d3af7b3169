/// SHA-1 (FIPS 180-4), for the shingle hash datasketch's MinHash uses (`sha1_hash32`: the first
/// four digest bytes read little-endian) and for exact-duplicate keys. Written here rather than
/// taken from swift-crypto: these inputs are a few dozen bytes each, millions of them, and a
/// one-call function over a byte buffer avoids the hasher objects per call.
public enum SHA1 {
    /// The 20-byte digest of `bytes` as five big-endian words.
    public static func digest(_ bytes: UnsafeRawBufferPointer) -> (UInt32, UInt32, UInt32, UInt32, UInt32) {
        var h0: UInt32 = 0x6745_2301, h1: UInt32 = 0xEFCD_AB89, h2: UInt32 = 0x98BA_DCFE, h3: UInt32 = 0x1032_5476
        var h4: UInt32 = 0xC3D2_E1F0
        let count = bytes.count
        let blocks = (count + 8) / 64 + 1  // message, 0x80, zeros, 64-bit bit length
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 80) { w in
            for block in 0..<blocks {
                for i in 0..<16 {
                    var word: UInt32 = 0
                    for j in 0..<4 {
                        let index = block * 64 + 4 * i + j
                        let byte: UInt32
                        if index < count {
                            byte = UInt32(bytes[index])
                        } else if index == count {
                            byte = 0x80
                        } else if index >= blocks * 64 - 8 {
                            byte = UInt32(truncatingIfNeeded: (UInt64(count) * 8) >> UInt64(8 * (blocks * 64 - 1 - index)))
                        } else {
                            byte = 0
                        }
                        word = word << 8 | byte
                    }
                    w[i] = word
                }
                for i in 16..<80 {
                    let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
                    w[i] = x << 1 | x >> 31
                }
                var a = h0, b = h1, c = h2, d = h3, e = h4
                for i in 0..<80 {
                    let f: UInt32, k: UInt32
                    switch i {
                    case 0..<20: f = (b & c) | (~b & d); k = 0x5A82_7999
                    case 20..<40: f = b ^ c ^ d; k = 0x6ED9_EBA1
                    case 40..<60: f = (b & c) | (b & d) | (c & d); k = 0x8F1B_BCDC
                    default: f = b ^ c ^ d; k = 0xCA62_C1D6
                    }
                    let temp = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[i]
                    e = d; d = c; c = b << 30 | b >> 2; b = a; a = temp
                }
                h0 = h0 &+ a; h1 = h1 &+ b; h2 = h2 &+ c; h3 = h3 &+ d; h4 = h4 &+ e
            }
        }
        return (h0, h1, h2, h3, h4)
    }

    /// datasketch's `sha1_hash32`: the digest's first four bytes as a little-endian integer.
    public static func hash32(_ bytes: UnsafeRawBufferPointer) -> UInt32 { digest(bytes).0.byteSwapped }
}
