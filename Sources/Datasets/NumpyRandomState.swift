/// numpy's legacy `RandomState(seed)` (MT19937 seeded with `init_genrand`) and its `shuffle`,
/// bit for bit, so that dataset indices built from a seed are the ones Megatron builds.
public struct NumpyRandomState {
    private var state = [UInt32](repeating: 0, count: 624)
    private var position = 624

    /// Seeds like `numpy.random.RandomState(seed)` for an integer seed below 2^32.
    public init(seed: UInt32) {
        state[0] = seed
        for i in 1..<624 {
            state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i)
        }
    }

    /// The next 32 random bits (MT19937 with tempering).
    public mutating func next32() -> UInt32 {
        if position == 624 { regenerate() }
        var y = state[position]
        position += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    private mutating func regenerate() {
        for i in 0..<624 {
            let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7FFF_FFFF)
            state[i] = state[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1) == 0 ? 0 : 0x9908_B0DF)
        }
        position = 0
    }

    /// A uniform integer in `0...maximum` by masked rejection (numpy's `random_interval`).
    public mutating func randomInterval(_ maximum: UInt64) -> UInt64 {
        if maximum == 0 { return 0 }
        var mask = maximum
        for shift in [1, 2, 4, 8, 16, 32] as [UInt64] { mask |= mask >> shift }
        if maximum <= 0xFFFF_FFFF {
            while true {
                let value = UInt64(next32()) & mask
                if value <= maximum { return value }
            }
        }
        while true {
            let value = (UInt64(next32()) << 32 | UInt64(next32())) & mask
            if value <= maximum { return value }
        }
    }

    /// Shuffles in place like `RandomState.shuffle` on a 1-D array (Fisher-Yates from the end).
    public mutating func shuffle<T>(_ values: inout [T]) {
        guard values.count > 1 else { return }
        for i in stride(from: values.count - 1, through: 1, by: -1) {
            let j = Int(randomInterval(UInt64(i)))
            values.swapAt(i, j)
        }
    }
}
