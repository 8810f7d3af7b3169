import Kernels
import Parameters
import Testing

/// The gradient norm's sum of squares: equal to a Float64 sum up to rounding, and the same bits
/// whatever the thread count.
@Suite struct SumOfSquaresTests {
    @Test(arguments: [0, 1, 7, 8, 65_535, 65_537, 200_003])
    func matchesAFloat64Sum(count: Int) {
        let values = FloatBuffer(count: max(count, 1))
        var rng = RandomGenerator(seed: UInt64(count) + 1)
        rng.fillNormal(values.pointer, count: count, std: 3)
        var reference = 0.0
        for i in 0..<count { reference += Double(values.pointer[i]) * Double(values.pointer[i]) }
        let sum = SumOfSquares.of(values.pointer, count: count)
        #expect(abs(sum - reference) <= 1e-12 * max(reference, 1))
        let one = ThreadPool(threadCount: 1), two = ThreadPool(threadCount: 2)
        defer { one.stop(); two.stop() }
        let serial = ThreadPool.withCurrent(one) { SumOfSquares.of(values.pointer, count: count) }
        let parallel = ThreadPool.withCurrent(two) { SumOfSquares.of(values.pointer, count: count) }
        #expect(serial.bitPattern == parallel.bitPattern && serial.bitPattern == sum.bitPattern)
    }
}
