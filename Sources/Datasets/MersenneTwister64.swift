/// MT19937-64, C++'s `std::mt19937_64` (Matsumoto and Nishimura's 64-bit Mersenne Twister),
/// bit for bit: megatron-core's BERT sample mapping shuffles with it.
public struct MersenneTwister64 {
    private var state = [UInt64](repeating: 0, count: 312)
    private var position = 312

    /// Seeded as `std::mt19937_64(seed)`.
    public init(seed: UInt64) {
        state[0] = seed
        for i in 1..<312 {
            state[i] = 6_364_136_223_846_793_005 &* (state[i - 1] ^ (state[i - 1] >> 62)) &+ UInt64(i)
        }
    }

    /// The next 64 random bits (with tempering).
    public mutating func next64() -> UInt64 {
        if position == 312 { regenerate() }
        var y = state[position]
        position += 1
        y ^= (y >> 29) & 0x5555_5555_5555_5555
        y ^= (y << 17) & 0x71D6_7FFF_EDA6_0000
        y ^= (y << 37) & 0xFFF7_EEE0_0000_0000
        y ^= y >> 43
        return y
    }

    private mutating func regenerate() {
        let upper: UInt64 = 0xFFFF_FFFF_8000_0000, lower: UInt64 = 0x7FFF_FFFF
        for i in 0..<312 {
            let y = (state[i] & upper) | (state[(i + 1) % 312] & lower)
            state[i] = state[(i + 156) % 312] ^ (y >> 1) ^ ((y & 1) == 0 ? 0 : 0xB502_6F5A_A966_19E9)
        }
        position = 0
    }
}
