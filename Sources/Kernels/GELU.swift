import Accelerator

/// GELU in its two forms: the tanh approximation (GPT-2's `gelu_new`; Megatron's fused bias-GELU
/// and `--openai-gelu`), `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, the default; and the
/// exact `0.5 x (1 + erf(x / sqrt 2))` (PyTorch's `F.gelu`; Megatron with `--no-bias-gelu-fusion`,
/// Hugging Face's `gelu`).
public enum GELU {
    @usableFromInline static let k: Float = 0.797_884_560_802_865_4  // sqrt(2 / pi)
    @usableFromInline static let c: Float = 0.044_715

    /// Writes `out[i] = gelu(inp[i])` for `count` elements (`out` may equal `inp`).
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int, exact: Bool = false) {
        if let gpu = GPU.active { return gpu.geluForward(out: out, inp: inp, count: count, exact: exact) }
        if exact {
            map(out: out, inp: inp, dout: nil, count: count, ExactGELU.self)
        } else {
            map(out: out, inp: inp, dout: nil, count: count, TanhGELU.self)
        }
    }

    /// Backward of `forward`: writes `dinp[i] = gelu'(inp[i]) * dout[i]` (`dinp` may equal `dout`).
    public static func backward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                dout: UnsafePointer<Float>, count: Int, exact: Bool = false) {
        if let gpu = GPU.active { return gpu.geluBackward(dinp: dinp, inp: inp, dout: dout, count: count, exact: exact) }
        if exact {
            map(out: dinp, inp: inp, dout: dout, count: count, ExactGELU.self)
        } else {
            map(out: dinp, inp: inp, dout: dout, count: count, TanhGELU.self)
        }
    }

    /// `out = f(inp)`, or `f'(inp) * dout` when `dout` is given, 16 lanes at a time.
    @inline(__always)
    private static func map<Form: GELUForm>(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                            dout: UnsafePointer<Float>?, count: Int, _: Form.Type) {
        ThreadPool.current.parallelFor(count, minimumPerThread: 32768) { range in
            var i = range.lowerBound
            if let dout {
                while i + 16 <= range.upperBound {
                    storeVector(Form.derivative(loadVector(inp + i)) * loadVector(dout + i), out + i)
                    i += 16
                }
                while i < range.upperBound {
                    out[i] = Form.derivative(FloatVector(repeating: inp[i]))[0] * dout[i]
                    i += 1
                }
            } else {
                while i + 16 <= range.upperBound {
                    storeVector(Form.value(loadVector(inp + i)), out + i)
                    i += 16
                }
                while i < range.upperBound {
                    out[i] = Form.value(FloatVector(repeating: inp[i]))[0]
                    i += 1
                }
            }
        }
    }
}

/// One form of GELU: its value and derivative, 16 lanes at a time.
protocol GELUForm {
    static func value(_ x: FloatVector) -> FloatVector
    static func derivative(_ x: FloatVector) -> FloatVector
}

enum TanhGELU: GELUForm {
    @inline(__always)
    static func value(_ x: FloatVector) -> FloatVector {
        let x3: FloatVector = x * x * x
        let t = fastTanh(x.addingProduct(x3, GELU.c) * GELU.k)
        let half: FloatVector = x * 0.5
        return half.addingProduct(half, t)
    }

    @inline(__always)
    static func derivative(_ x: FloatVector) -> FloatVector {
        let x2: FloatVector = x * x
        let inner: FloatVector = x.addingProduct(x2 * x, GELU.c) * GELU.k
        let t = fastTanh(inner)
        let dinner: FloatVector = (x2 * (3 * GELU.c) + 1) * GELU.k
        let sech2: FloatVector = 1 - t * t
        let half: FloatVector = x * 0.5
        let first: FloatVector = (t + 1) * 0.5
        return first.addingProduct(half * sech2, dinner)
    }
}

enum ExactGELU: GELUForm {
    static let inverseSqrt2: Float = 0.707_106_781_186_547_5
    static let inverseSqrt2Pi: Float = 0.398_942_280_401_432_7

    @inline(__always)
    static func value(_ x: FloatVector) -> FloatVector {
        let half: FloatVector = x * 0.5
        return half.addingProduct(half, fastErf(x * inverseSqrt2))
    }

    /// Φ(x) + x φ(x).
    @inline(__always)
    static func derivative(_ x: FloatVector) -> FloatVector {
        let cdf: FloatVector = (fastErf(x * inverseSqrt2) + 1) * 0.5
        let pdf: FloatVector = fastExp(x * x * -0.5) * inverseSqrt2Pi
        return cdf.addingProduct(x, pdf)
    }
}
