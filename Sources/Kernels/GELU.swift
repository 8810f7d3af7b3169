/// GELU with the tanh approximation (GPT-2 / Megatron `gelu_new`):
/// `gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
public enum GELU {
    @usableFromInline static let k: Float = 0.797_884_560_802_865_4  // sqrt(2 / pi)
    @usableFromInline static let c: Float = 0.044_715

    /// Writes `out[i] = gelu(inp[i])` for `count` elements (`out` may equal `inp`).
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int) {
        ThreadPool.current.parallelFor(count, minimumPerThread: 32768) { range in
            var i = range.lowerBound
            while i + 16 <= range.upperBound {
                storeVector(value(loadVector(inp + i)), out + i)
                i += 16
            }
            while i < range.upperBound {
                out[i] = value(FloatVector(repeating: inp[i]))[0]
                i += 1
            }
        }
    }

    /// Backward of `forward`: writes `dinp[i] = gelu'(inp[i]) * dout[i]` (`dinp` may equal `dout`).
    public static func backward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                dout: UnsafePointer<Float>, count: Int) {
        ThreadPool.current.parallelFor(count, minimumPerThread: 32768) { range in
            var i = range.lowerBound
            while i + 16 <= range.upperBound {
                storeVector(derivative(loadVector(inp + i)) * loadVector(dout + i), dinp + i)
                i += 16
            }
            while i < range.upperBound {
                dinp[i] = derivative(FloatVector(repeating: inp[i]))[0] * dout[i]
                i += 1
            }
        }
    }

    @inline(__always)
    static func value(_ x: FloatVector) -> FloatVector {
        let x3: FloatVector = x * x * x
        let t = fastTanh(x.addingProduct(x3, c) * k)
        let half: FloatVector = x * 0.5
        return half.addingProduct(half, t)
    }

    @inline(__always)
    static func derivative(_ x: FloatVector) -> FloatVector {
        let x2: FloatVector = x * x
        let inner: FloatVector = x.addingProduct(x2 * x, c) * k
        let t = fastTanh(inner)
        let dinner: FloatVector = (x2 * (3 * c)  + 1) * k
        let sech2: FloatVector = 1 - t * t
        let half: FloatVector = x * 0.5
        let first: FloatVector = (t + 1) * 0.5
        return first.addingProduct(half * sech2, dinner)
    }
}
