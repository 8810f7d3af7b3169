import Accelerator

/// Elementwise accumulation for residual connections. Its backward is the identity: the
/// gradient of `x + f(x)` flows unchanged to `x` and into `f`'s backward, which is how
/// `GPTModel.backward` accumulates into one residual-stream gradient.
public enum Residual {
    /// `out[i] += inp[i]` for `count` elements.
    public static func addInPlace(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count: Int) {
        if let gpu = GPU.active { return gpu.addInPlace(out, inp, count: count) }
        ThreadPool.current.parallelFor(count, minimumPerThread: 65536) { range in
            var i = range.lowerBound
            while i + 16 <= range.upperBound {
                storeVector(loadVector(out + i) + loadVector(inp + i), out + i)
                i += 16
            }
            while i < range.upperBound {
                out[i] += inp[i]
                i += 1
            }
        }
    }
}
