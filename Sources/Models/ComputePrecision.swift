import Kernels
import Parameters

/// The number format a model computes in (Megatron's `--bf16`, `--fp16`, or neither).
///
/// With `.bf16` every GEMM of the linear layers (QKV, attention projection, MLP, the output
/// layer) multiplies bf16 operands with fp32 accumulation: the weights come from a bf16 copy of
/// the fp32 weights (refreshed after every change, the fp32 ones stay the optimizer's master
/// weights), activations and activation gradients are rounded to bf16 as they enter a GEMM and
/// its output is rounded to bf16 (what Megatron stores), as is the embedding output (looked up in
/// the bf16 copy: the sum of bf16 rows, rounded, and BERT's token-type row added to that and
/// rounded again, as Megatron's bf16 model embeds). The logits
/// stay as the GEMM's fp32 accumulator leaves them (Megatron rounds them to bf16 and casts them
/// back for the cross-entropy). LayerNorm statistics, the softmax, the cross-entropy, the
/// residual stream (Megatron's `--fp32-residual-connection`), the gradients (accumulated in fp32
/// as Megatron's `--accumulate-allreduce-grads-in-fp32`) and the optimizer stay fp32. The
/// attention core (causal, and BERT's padded one) gets bf16-rounded Q, K and V, and its scores,
/// probabilities and their gradients are bf16 too (on the CPU and on a GPU), as in Megatron's
/// core attention.
///
/// `.fp16` rounds the same values to fp16 instead (Megatron-LM 2019's format); the GEMM is
/// emulated (fp16 values held in fp32, OpenBLAS sgemm: no x86 CPU here has fp16 matrix
/// instructions), so it is not faster than fp32. Loss scaling keeps the gradients in fp16's range.
public enum ComputePrecision: String, Sendable, CaseIterable, Codable {
    case fp32
    case bf16
    case fp16

    /// Bytes per element of the low-precision copies (the weights and the GEMM operand scratch;
    /// 0: none). fp16 values are held in fp32.
    public var operandBytes: Int {
        switch self {
        case .fp32: 0
        case .bf16: 2
        case .fp16: 4
        }
    }
}

/// How one linear layer multiplies: fp32 OpenBLAS sgemm, or bf16 or fp16 operands (see
/// `ComputePrecision`).
enum LinearPrecision {
    case fp32
    case bf16(BF16Operands)
    case fp16(FP16Operands)

    /// Whether the GEMMs take bf16 or fp16 operands.
    var isReduced: Bool {
        if case .fp32 = self { return false }
        return true
    }

    /// Rounds `count` activations in place to the format (nothing in fp32).
    func roundInPlace(_ values: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .fp32: break
        case .bf16: BFloat16Conversion.roundInPlace(values, count: count)
        case .fp16: HalfPrecision.roundInPlace(values, count: count)
        }
    }
}

/// The fp16 twin of `BF16Operands`: fp16 values held in fp32.
struct FP16Operands {
    /// The fp16-rounded weights, indexed like the fp32 parameter buffer.
    let weights: UnsafePointer<Float>
    /// The GEMM's activation operand, rounded.
    let input: UnsafeMutablePointer<Float>
    /// The output gradient operand, rounded.
    let outputGradient: UnsafeMutablePointer<Float>
}

/// Where the bf16 operands of a linear layer's GEMMs live: the bf16 copy of the parameter
/// buffer (same offsets as the fp32 one) and scratch for the activation and gradient operands.
struct BF16Operands {
    /// The bf16 weights, indexed like the fp32 parameter buffer.
    let weights: UnsafePointer<BFloat16>
    /// The GEMM's activation operand, rounded (`[rows, in]`).
    let input: UnsafeMutablePointer<BFloat16>
    /// The output gradient operand, rounded (`[rows, out]`).
    let outputGradient: UnsafeMutablePointer<BFloat16>
}

/// The linear layer `out = inp · Wᵀ + b` of `ColumnParallelLinear`, `RowParallelLinear` and
/// the output layer in either precision; `weight` and `bias` are offsets into the parameter
/// buffer `p` (and the gradient buffer `grad`).
enum LinearGEMM {
    /// `roundsOutput: false` leaves the fp32 accumulator's output as it is (the logits, which
    /// the cross-entropy reads in fp32). In bf16, `savedInput` receives the rounded input (kept
    /// for the backward instead of the fp32 one) and is multiplied from there.
    static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, params p: FP32Weights,
                        weight: Int, bias: Int?, rows: Int, inFeatures: Int, outFeatures: Int, precision: LinearPrecision,
                        roundsOutput: Bool = true, savedInput: UnsafeMutablePointer<BFloat16>? = nil) {
        switch precision {
        case .fp32:
            Matmul.forward(out: out, inp: inp, weight: p + weight, bias: bias.map { p + $0 },
                           rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
        case .bf16(let operands):
            let operand = savedInput ?? operands.input
            BFloat16Conversion.round(out: operand, inp: inp, count: rows * inFeatures)
            BF16Matmul.forward(out: out, inp: operand, weight: operands.weights + weight, bias: bias.map { p + $0 },
                               rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
            if roundsOutput { BFloat16Conversion.roundInPlace(out, count: rows * outFeatures) }
        case .fp16(let operands):
            precondition(savedInput == nil, "LinearGEMM: fp16 keeps its inputs in fp32")
            HalfPrecision.round(out: operands.input, inp: inp, count: rows * inFeatures)
            Matmul.forward(out: out, inp: operands.input, weight: operands.weights + weight, bias: bias.map { p + $0 },
                           rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
            if roundsOutput { HalfPrecision.roundInPlace(out, count: rows * outFeatures) }
        }
    }

    /// Overwrites `dinp` (when given) with the input gradient and adds the weight and bias
    /// gradients (fp32) into `grad`. `ones` holds `rows` ones when there is a bias. With
    /// `outputGradientRounded` the operand scratch already holds `dout` rounded. The input is
    /// `inp`, or in bf16 the forward's `savedInput` (then `inp` is not read).
    static func backward(dinp: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                         params p: FP32Weights, grads grad: UnsafeMutablePointer<Float>, weight: Int, bias: Int?,
                         ones: UnsafePointer<Float>?, rows: Int, inFeatures: Int, outFeatures: Int, precision: LinearPrecision,
                         outputGradientRounded: Bool = false, savedInput: UnsafePointer<BFloat16>? = nil) {
        switch precision {
        case .fp32:
            Matmul.backward(dinp: dinp, dweight: grad + weight, dbias: bias.map { grad + $0 }, dout: dout, inp: inp,
                            weight: p + weight, ones: ones, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
        case .bf16(let operands):
            if !outputGradientRounded {
                BFloat16Conversion.round(out: operands.outputGradient, inp: dout, count: rows * outFeatures)
            }
            let operand = savedInput ?? UnsafePointer(operands.input)
            if savedInput == nil { BFloat16Conversion.round(out: operands.input, inp: inp, count: rows * inFeatures) }
            BF16Matmul.backward(dinp: dinp, dweight: grad + weight, dout: operands.outputGradient, inp: operand,
                                weight: operands.weights + weight, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
            if let dinp { BFloat16Conversion.roundInPlace(dinp, count: rows * inFeatures) }
            if let bias {
                guard let ones else { preconditionFailure("LinearGEMM.backward needs `ones` for the bias gradient") }
                Matmul.biasGradient(dbias: grad + bias, dout: dout, ones: ones, rows: rows, outFeatures: outFeatures)
            }
        case .fp16(let operands):
            precondition(savedInput == nil, "LinearGEMM: fp16 keeps its inputs in fp32")
            if !outputGradientRounded {
                HalfPrecision.round(out: operands.outputGradient, inp: dout, count: rows * outFeatures)
            }
            HalfPrecision.round(out: operands.input, inp: inp, count: rows * inFeatures)
            Matmul.backward(dinp: dinp, dweight: grad + weight, dbias: bias.map { grad + $0 }, dout: operands.outputGradient,
                            inp: operands.input, weight: operands.weights + weight, ones: ones, rows: rows,
                            inFeatures: inFeatures, outFeatures: outFeatures)
            if let dinp { HalfPrecision.roundInPlace(dinp, count: rows * inFeatures) }
        }
    }
}

/// A buffer of low-precision values: bf16, or fp16 values held in fp32 (the model's weight copy
/// and the GEMM operand scratch).
enum LowPrecisionBuffer {
    case bf16(BFloat16Buffer)
    case fp16(FloatBuffer)

    /// `count` zeroed elements in `precision`'s format; nil in fp32.
    init?(_ precision: ComputePrecision, count: Int) {
        switch precision {
        case .fp32: return nil
        case .bf16: self = .bf16(BFloat16Buffer(count: count))
        case .fp16: self = .fp16(FloatBuffer(count: count))
        }
    }

    /// Bytes held.
    var byteCount: Int {
        switch self {
        case .bf16(let buffer): 2 * buffer.count
        case .fp16(let buffer): 4 * buffer.count
        }
    }

    /// Rounds `count` fp32 values into the buffer, from element `start` on.
    func round(from values: UnsafePointer<Float>, start: Int = 0, count: Int) {
        switch self {
        case .bf16(let buffer): BFloat16Conversion.round(out: buffer.pointer + start, inp: values, count: count)
        case .fp16(let buffer): HalfPrecision.round(out: buffer.pointer + start, inp: values, count: count)
        }
    }

    /// The linear layers' precision with this buffer as the weights and `input`, `outputGradient`
    /// (of the same format) as the operand scratch.
    static func linearPrecision(weights: LowPrecisionBuffer, input: LowPrecisionBuffer,
                                outputGradient: LowPrecisionBuffer) -> LinearPrecision {
        switch (weights, input, outputGradient) {
        case let (.bf16(w), .bf16(x), .bf16(g)):
            return .bf16(BF16Operands(weights: UnsafePointer(w.pointer), input: x.pointer, outputGradient: g.pointer))
        case let (.fp16(w), .fp16(x), .fp16(g)):
            return .fp16(FP16Operands(weights: UnsafePointer(w.pointer), input: x.pointer, outputGradient: g.pointer))
        default:
            preconditionFailure("LowPrecisionBuffer: weights and operands in different formats")
        }
    }
}
