/// numpy's legacy `RandomState(seed)` (MT19937 seeded with `init_genrand`) and its `shuffle`,
/// bit for bit, so that dataset indices built from a seed are the ones Megatron builds.
public struct NumpyRandomState {
    private var generator: MersenneTwister

    /// Seeds like `numpy.random.RandomState(seed)` for an integer seed below 2^32.
    public init(seed: UInt32) { generator = MersenneTwister(seed: seed) }

    /// The next 32 random bits.
    public mutating func next32() -> UInt32 { generator.next32() }

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

    /// `random()` / `random_sample()`: a double in [0, 1) from 53 random bits (two draws).
    public mutating func random() -> Double {
        let a = Double(next32() >> 5), b = Double(next32() >> 6)
        return (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// `randint(low, high)` (int64): a uniform integer in `low..<high`.
    public mutating func randint(_ low: Int, _ high: Int) -> Int {
        precondition(high > low, "randint: empty range")
        return low + Int(randomInterval(UInt64(high - low - 1)))
    }

    /// `choice(count, p=probabilities)`: an index drawn by the weights (the cumulative sum,
    /// normalized by its last element, searched right of one `random()`).
    public mutating func choice(probabilities: [Double]) -> Int {
        var cumulative = [Double]()
        var total = 0.0
        for p in probabilities {
            total += p
            cumulative.append(total)
        }
        let last = cumulative[cumulative.count - 1]
        for i in cumulative.indices { cumulative[i] /= last }
        let u = random()
        return cumulative.firstIndex { $0 > u } ?? cumulative.count
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
