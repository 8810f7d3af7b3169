#if canImport(Glibc)
import Glibc
#endif

/// Python's `random.Random(seed)` for an integer seed, as far as lm-evaluation-harness's few-shot
/// sampler uses it (`sample`), bit for bit: the same seed picks the same examples.
public struct PythonRandom {
    private var generator: MersenneTwister

    /// `random.Random(seed)`.
    public init(seed: Int) {
        var magnitude = seed.magnitude, key = [UInt32]()
        repeat {
            key.append(UInt32(truncatingIfNeeded: magnitude))
            magnitude >>= 32
        } while magnitude > 0
        generator = MersenneTwister(key: key)
    }

    /// `getrandbits(k)` for `1 <= k <= 32`.
    mutating func randomBits(_ k: Int) -> UInt32 { generator.next32() >> UInt32(32 - k) }

    /// `_randbelow(n)`: uniform in `0..<n` by rejection on `n.bit_length()` bits.
    mutating func randomBelow(_ n: Int) -> Int {
        precondition(n > 0 && n <= Int(UInt32.max), "randomBelow needs 0 < n < 2^32")
        let bits = Int.bitWidth - n.leadingZeroBitCount
        while true {
            let r = Int(randomBits(bits))
            if r < n { return r }
        }
    }

    /// `sample(population, k)`: `k` distinct elements in selection order, with Python's choice
    /// between a shrinking pool and rejection from a set.
    public mutating func sample<T>(_ population: [T], count k: Int) -> [T] {
        let n = population.count
        precondition(k >= 0 && k <= n, "sample larger than population or negative")
        var setSize = 21
        if k > 5 {
            setSize += Int(pow4(ceilLog4(Double(k * 3))))
        }
        var result = [T]()
        result.reserveCapacity(k)
        if n <= setSize {
            var pool = population
            for i in 0..<k {
                let j = randomBelow(n - i)
                result.append(pool[j])
                pool[j] = pool[n - i - 1]
            }
        } else {
            var selected = Set<Int>()
            for _ in 0..<k {
                var j = randomBelow(n)
                while selected.contains(j) { j = randomBelow(n) }
                selected.insert(j)
                result.append(population[j])
            }
        }
        return result
    }

    /// `ceil(log(x, 4))` as Python computes it (`log(x) / log(4)` in floating point).
    private func ceilLog4(_ x: Double) -> Double { (log(x) / log(4)).rounded(.up) }
    private func pow4(_ e: Double) -> Double { pow(4, e) }
}
