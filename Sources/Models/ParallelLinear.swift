import Kernels

/// A linear layer whose weight `[outFeatures, inFeatures]` is split by output rows over the
/// tensor-parallel ranks (Megatron-LM section 3, `Y = [Y_1, Y_2] = X [A_1, A_2]`): each rank
/// holds `outFeatures / t` rows and their bias and computes its own slice of the output from the
/// full input, without communication. The caller enters the region with `f` before it (the
/// gradient of the shared input is summed over the ranks in the backward).
///
/// A thin view over the flat parameter and gradient buffers: it holds the offsets of its weight
/// and bias, not the tensors.
public struct ColumnParallelLinear: Sendable {
    /// Offset (in floats) of the weight shard in the parameter and gradient buffers.
    public let weight: Int
    /// Offset of the bias shard (nil: no bias).
    public let bias: Int?
    /// Width of the (full) input.
    public let inFeatures: Int
    /// This rank's output width (`outFeatures / t`).
    public let localOutFeatures: Int

    public init(weight: Int, bias: Int?, inFeatures: Int, localOutFeatures: Int) {
        self.weight = weight
        self.bias = bias
        self.inFeatures = inFeatures
        self.localOutFeatures = localOutFeatures
    }

    /// `out[rows, localOut] = inp[rows, in] · W_iᵀ + b_i`.
    /// In bf16 or fp16 the output is rounded to the format unless `roundsOutput` is false; in
    /// bf16 `savedInput` keeps the rounded input for the backward (see `LinearGEMM`).
    func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                 params p: FP32Weights, rows: Int, precision: LinearPrecision, roundsOutput: Bool = true,
                 savedInput: UnsafeMutablePointer<BFloat16>? = nil) {
        LinearGEMM.forward(out: out, inp: inp, params: p, weight: weight, bias: bias, rows: rows,
                           inFeatures: inFeatures, outFeatures: localOutFeatures, precision: precision,
                           roundsOutput: roundsOutput, savedInput: savedInput)
    }

    /// Overwrites `dinp` (when given) with this rank's part of the input gradient and adds the
    /// weight and bias gradients into `grads`. `ones` holds `rows` ones (for the bias gradient).
    /// With `outputGradientRounded` the precision's operand scratch already holds `dout` rounded;
    /// `savedInput` is the forward's bf16 copy of the input.
    func backward(dinp: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                  params p: FP32Weights, grads grad: UnsafeMutablePointer<Float>,
                  ones: UnsafePointer<Float>?, rows: Int, precision: LinearPrecision, outputGradientRounded: Bool = false,
                  savedInput: UnsafePointer<BFloat16>? = nil) {
        LinearGEMM.backward(dinp: dinp, dout: dout, inp: inp, params: p, grads: grad, weight: weight, bias: bias,
                            ones: ones, rows: rows, inFeatures: inFeatures, outFeatures: localOutFeatures, precision: precision,
                            outputGradientRounded: outputGradientRounded, savedInput: savedInput)
    }
}

/// A linear layer whose weight `[outFeatures, inFeatures]` is split by input columns over the
/// tensor-parallel ranks (Megatron-LM section 3, `Y = X_1 B_1 + X_2 B_2`): each rank multiplies
/// its slice of the input (the output of a column-parallel layer) by its columns and gets a
/// partial sum of the full output. The caller leaves the region with `g` after it (the partial
/// sums are all-reduced).
///
/// The bias is replicated. It is added by rank 0 alone, before the all-reduce, so the sum counts
/// it once; every rank accumulates the (same) bias gradient.
public struct RowParallelLinear: Sendable {
    /// Offset (in floats) of the weight shard in the parameter and gradient buffers.
    public let weight: Int
    /// Offset of the replicated bias.
    public let bias: Int
    /// This rank's input width (`inFeatures / t`).
    public let localInFeatures: Int
    /// Width of the (full) output.
    public let outFeatures: Int
    /// Whether this rank adds the bias (rank 0 of the tensor-parallel group).
    public let addsBias: Bool

    public init(weight: Int, bias: Int, localInFeatures: Int, outFeatures: Int, addsBias: Bool) {
        self.weight = weight
        self.bias = bias
        self.localInFeatures = localInFeatures
        self.outFeatures = outFeatures
        self.addsBias = addsBias
    }

    /// `partial[rows, out] = inp_i[rows, localIn] · B_iᵀ (+ b on rank 0)`: this rank's term of
    /// the output, to be summed over the group with `g`.
    func forward(partial: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                 params p: FP32Weights, rows: Int, precision: LinearPrecision,
                 savedInput: UnsafeMutablePointer<BFloat16>? = nil) {
        LinearGEMM.forward(out: partial, inp: inp, params: p, weight: weight, bias: addsBias ? bias : nil, rows: rows,
                           inFeatures: localInFeatures, outFeatures: outFeatures, precision: precision, savedInput: savedInput)
    }

    /// Overwrites `dinp` with the gradient of this rank's input slice (no communication: the
    /// output gradient is the same on every rank) and adds the weight and bias gradients.
    func backward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                  params p: FP32Weights, grads grad: UnsafeMutablePointer<Float>,
                  ones: UnsafePointer<Float>, rows: Int, precision: LinearPrecision,
                  savedInput: UnsafePointer<BFloat16>? = nil) {
        LinearGEMM.backward(dinp: dinp, dout: dout, inp: inp, params: p, grads: grad, weight: weight, bias: bias,
                            ones: ones, rows: rows, inFeatures: localInFeatures, outFeatures: outFeatures, precision: precision,
                            savedInput: savedInput)
    }
}
