/// The sum of squares of a float array in Float64 (the gradient norm's), fast and deterministic:
/// fixed chunks of 65,536 elements, each summed over eight Float64 lanes, the chunks in parallel
/// and their sums added in order. The result depends on the array alone, not on the thread count.
public enum SumOfSquares {
    /// Elements per chunk.
    static let chunk = 1 << 16

    /// `Σ x[i]²` over `count` elements.
    public static func of(_ x: UnsafePointer<Float>, count: Int) -> Double {
        let chunks = (count + chunk - 1) / chunk
        guard chunks > 1 else { return chunkSum(x, count: count) }
        // On the stack for the step's usual tensors (no allocation per call).
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: chunks) { partials in
            let base = partials.baseAddress!
            ThreadPool.current.parallelFor(chunks, minimumPerThread: 4) { range in
                for c in range { base[c] = chunkSum(x + c * chunk, count: min(chunk, count - c * chunk)) }
            }
            var total = 0.0
            for c in 0..<chunks { total += base[c] }
            return total
        }
    }

    /// One chunk: eight Float64 lanes, then the lanes and the tail in order.
    static func chunkSum(_ x: UnsafePointer<Float>, count: Int) -> Double {
        var lanes = SIMD8<Double>(repeating: 0)
        var i = 0
        while i + 8 <= count {
            let v = SIMD8<Double>(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self))
            lanes += v * v
            i += 8
        }
        var total = lanes.sum()
        while i < count {
            total += Double(x[i]) * Double(x[i])
            i += 1
        }
        return total
    }
}
