extension SHA1 {
    /// `hash32` of up to 8 messages at once, one per SIMD lane (8 x 32-bit: AVX2 registers): each
    /// message of at most 55 bytes is one padded block, and the 80 rounds run on all lanes
    /// together. Longer messages take the one-message path.
    public static func hash32(lanes messages: [UnsafeRawBufferPointer], into out: UnsafeMutablePointer<UInt32>) {
        precondition(messages.count <= 8)
        let first = withUnsafeTemporaryAllocation(of: SIMD8<UInt32>.self, capacity: 80) { w -> SIMD8<UInt32> in
            for i in 0..<16 { w[i] = SIMD8() }
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { padded in
                let raw = UnsafeRawBufferPointer(padded)
                for (lane, message) in messages.enumerated() where message.count <= 55 {
                    for i in 0..<64 { padded[i] = 0 }
                    for i in 0..<message.count { padded[i] = message[i] }
                    padded[message.count] = 0x80
                    let bits = UInt64(message.count) * 8
                    for i in 0..<8 { padded[63 - i] = UInt8(truncatingIfNeeded: bits >> UInt64(8 * i)) }
                    for i in 0..<16 { w[i][lane] = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
                }
            }
            return rounds(w)
        }
        for (lane, message) in messages.enumerated() {
            out[lane] = message.count <= 55 ? first[lane].byteSwapped : hash32(message)
        }
    }

    /// The first digest word of 8 one-block messages whose 16 words are in `w[0..<16]` (`w` holds 80).
    @inline(__always)
    private static func rounds(_ w: UnsafeMutableBufferPointer<SIMD8<UInt32>>) -> SIMD8<UInt32> {
        for i in 16..<80 {
            let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
            w[i] = (x &<< 1) | (x &>> 31)
        }
        let h0 = SIMD8<UInt32>(repeating: 0x6745_2301)
        var a = h0, b = SIMD8<UInt32>(repeating: 0xEFCD_AB89), c = SIMD8<UInt32>(repeating: 0x98BA_DCFE)
        var d = SIMD8<UInt32>(repeating: 0x1032_5476), e = SIMD8<UInt32>(repeating: 0xC3D2_E1F0)
        @inline(__always) func round(_ f: SIMD8<UInt32>, _ k: UInt32, _ word: SIMD8<UInt32>) {
            let temp = ((a &<< 5) | (a &>> 27)) &+ f &+ e &+ SIMD8(repeating: k) &+ word
            e = d; d = c; c = (b &<< 30) | (b &>> 2); b = a; a = temp
        }
        for i in 0..<20 { round((b & c) | (~b & d), 0x5A82_7999, w[i]) }
        for i in 20..<40 { round(b ^ c ^ d, 0x6ED9_EBA1, w[i]) }
        for i in 40..<60 { round((b & c) | (b & d) | (c & d), 0x8F1B_BCDC, w[i]) }
        for i in 60..<80 { round(b ^ c ^ d, 0xCA62_C1D6, w[i]) }
        return h0 &+ a
    }
}
