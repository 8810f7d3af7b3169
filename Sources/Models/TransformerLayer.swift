import Kernels
import Parameters

/// The two weights of a LayerNorm, as offsets in the flat parameter and gradient buffers.
public struct LayerNormWeights: Sendable {
    /// Offset of the scale (gamma).
    public let weight: Int
    /// Offset of the shift (beta).
    public let bias: Int
}

/// Where one layer's forward reads and writes, for `rows` tokens. Training points these at the
/// micro-batch's saved activations (and the shared scratch for the GELU output, which the
/// backward recomputes); decoding points them at a few one-row buffers it reuses.
struct TransformerLayerBuffers {
    var ln1: UnsafeMutablePointer<Float>, ln1Mean: UnsafeMutablePointer<Float>, ln1Rstd: UnsafeMutablePointer<Float>
    /// Column-parallel QKV output `[rows, 3 c/t]`, per head `[q k v]`.
    var qkv: UnsafeMutablePointer<Float>
    /// Attention core output `[rows, c/t]` (this rank's heads).
    var attention: UnsafeMutablePointer<Float>
    /// Input plus the attention branch `[rows, c]`.
    var residual2: UnsafeMutablePointer<Float>
    var ln2: UnsafeMutablePointer<Float>, ln2Mean: UnsafeMutablePointer<Float>, ln2Rstd: UnsafeMutablePointer<Float>
    /// fc1 output before GELU `[rows, 4c/t]`.
    var fc: UnsafeMutablePointer<Float>
    /// GELU output `[rows, 4c/t]`.
    var gelu: UnsafeMutablePointer<Float>
    /// The layer's output, `residual2` plus the MLP branch `[rows, c]`.
    var output: UnsafeMutablePointer<Float>
    /// In bf16 training: where the layer keeps its activations as bf16 (then `ln1`, `ln2`, `fc`,
    /// `qkv` and, unless it is recomputed, `attention` are shared fp32 scratch; nil: they are
    /// kept in fp32 where they are).
    var savedBF16: BF16LayerInputs? = nil
}

/// The activations a bf16 layer keeps in bf16 for its backward (all bf16 values already, so
/// keeping them in bf16 loses nothing): the two LayerNorm outputs (read again only by the QKV
/// and fc1 weight gradients), the QKV and fc1 outputs and the attention output (widened back
/// into the fp32 scratch for the attention core's and GELU's backward).
struct BF16LayerInputs {
    /// `[rows, c]` each.
    var ln1: UnsafeMutablePointer<BFloat16>, ln2: UnsafeMutablePointer<BFloat16>
    /// `[rows, 3c/t]`.
    var qkv: UnsafeMutablePointer<BFloat16>
    /// `[rows, c/t]` (nil: the attention core is recomputed, selective recomputation).
    var attention: UnsafeMutablePointer<BFloat16>?
    /// `[rows, 4c/t]`.
    var fc: UnsafeMutablePointer<BFloat16>
}

/// Gradient scratch of one layer's backward (shared by every layer).
struct TransformerLayerGradients {
    /// Gradient of a LayerNorm output `[rows, c]`.
    var dln: UnsafeMutablePointer<Float>
    /// Gradient of the attention core output `[rows, c/t]`.
    var dattention: UnsafeMutablePointer<Float>
    /// Gradient of the QKV output `[rows, 3 c/t]`.
    var dqkv: UnsafeMutablePointer<Float>
    /// Gradient of the fc1 output (and of the GELU output) `[rows, 4c/t]`.
    var dfc: UnsafeMutablePointer<Float>
    /// `rows` ones, for the bias gradients.
    var ones: UnsafePointer<Float>
}

/// One pre-LayerNorm transformer layer on one tensor-parallel rank (Megatron-LM Figure 2 and 3):
///
///     x -> LN -> f -> QKV (column) -> attention -> projection (row) -> g -> + x = r
///     r -> LN -> f -> fc1 (column) -> GELU -> fc2 (row) -> g -> + r
///
/// Written once for training (attention over the micro-batch's sequences, activations saved for
/// the backward), decoding (attention over a key/value cache, nothing saved) and, later, BERT:
/// the caller supplies the attention core. A view over the flat buffers: it holds offsets only.
public struct TransformerLayer: Sendable {
    public let inputLayerNorm: LayerNormWeights
    /// QKV, column parallel: this rank's heads.
    public let qkv: ColumnParallelLinear
    /// Attention output projection, row parallel.
    public let projection: RowParallelLinear
    public let preMLPLayerNorm: LayerNormWeights
    /// MLP h -> 4h, column parallel: this rank's units.
    public let fc1: ColumnParallelLinear
    /// MLP 4h -> h, row parallel.
    public let fc2: RowParallelLinear
    /// Hidden size `c`.
    public let hidden: Int
    /// LayerNorm epsilon.
    public let epsilon: Float

    /// Layer `index`'s tensors in `layout` (Megatron-core names), on rank `region.rank` of a
    /// tensor-parallel group of `region.size`.
    init(index: Int, layout: ParameterOffsets, config: GPTConfig, region: TensorParallelRegion) {
        let p = "decoder.layers.\(index)."
        let c = config.hiddenSize, t = region.size
        let local = c / t                         // this rank's attention width (its heads)
        let ffnLocal = config.ffnHiddenSize / t   // this rank's MLP units
        inputLayerNorm = LayerNormWeights(weight: layout[p + "input_layernorm.weight"], bias: layout[p + "input_layernorm.bias"])
        qkv = ColumnParallelLinear(weight: layout[p + "self_attention.linear_qkv.weight"],
                                   bias: layout[p + "self_attention.linear_qkv.bias"], inFeatures: c, localOutFeatures: 3 * local)
        projection = RowParallelLinear(weight: layout[p + "self_attention.linear_proj.weight"],
                                       bias: layout[p + "self_attention.linear_proj.bias"], localInFeatures: local,
                                       outFeatures: c, addsBias: region.addsReplicatedBias)
        preMLPLayerNorm = LayerNormWeights(weight: layout[p + "pre_mlp_layernorm.weight"], bias: layout[p + "pre_mlp_layernorm.bias"])
        fc1 = ColumnParallelLinear(weight: layout[p + "mlp.linear_fc1.weight"], bias: layout[p + "mlp.linear_fc1.bias"],
                                   inFeatures: c, localOutFeatures: ffnLocal)
        fc2 = RowParallelLinear(weight: layout[p + "mlp.linear_fc2.weight"], bias: layout[p + "mlp.linear_fc2.bias"],
                                localInFeatures: ffnLocal, outFeatures: c, addsBias: region.addsReplicatedBias)
        hidden = c
        epsilon = config.layerNormEpsilon
    }

    /// Runs the layer on `input` (`[rows, c]`) into `b.output`, the linear layers in `precision`.
    /// `attentionCore(qkv, out)` turns this rank's QKV rows into its heads' attention output.
    func forward(input: UnsafePointer<Float>, buffers b: TransformerLayerBuffers, rows n: Int,
                 params p: UnsafePointer<Float>, precision: LinearPrecision, region: TensorParallelRegion,
                 attentionCore: (_ qkv: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) -> Void) {
        let c = hidden
        // Attention block.
        LayerNorm.forward(out: b.ln1, mean: b.ln1Mean, rstd: b.ln1Rstd, inp: input, weight: p + inputLayerNorm.weight,
                          bias: p + inputLayerNorm.bias, rows: n, channels: c, eps: epsilon)
        qkv.forward(out: b.qkv, inp: region.copyToRegion(b.ln1), params: p, rows: n, precision: precision,
                    savedInput: b.savedBF16?.ln1)
        if let saved = b.savedBF16 {  // exact: the output is rounded to bf16 already
            BFloat16Conversion.round(out: saved.qkv, inp: b.qkv, count: n * qkv.localOutFeatures)
        }
        attentionCore(b.qkv, b.attention)
        projection.forward(partial: b.residual2, inp: b.attention, params: p, rows: n, precision: precision,
                           savedInput: b.savedBF16?.attention)
        region.reduceFromRegion(b.residual2, count: n * c)
        Residual.addInPlace(b.residual2, input, count: n * c)
        // MLP block.
        LayerNorm.forward(out: b.ln2, mean: b.ln2Mean, rstd: b.ln2Rstd, inp: b.residual2, weight: p + preMLPLayerNorm.weight,
                          bias: p + preMLPLayerNorm.bias, rows: n, channels: c, eps: epsilon)
        fc1.forward(out: b.fc, inp: region.copyToRegion(b.ln2), params: p, rows: n, precision: precision,
                    savedInput: b.savedBF16?.ln2)
        if let saved = b.savedBF16 {  // exact: the output is rounded to bf16 already
            BFloat16Conversion.round(out: saved.fc, inp: b.fc, count: n * fc1.localOutFeatures)
        }
        GELU.forward(out: b.gelu, inp: b.fc, count: n * fc1.localOutFeatures)
        fc2.forward(partial: b.output, inp: b.gelu, params: p, rows: n, precision: precision)
        region.reduceFromRegion(b.output, count: n * c)
        Residual.addInPlace(b.output, b.residual2, count: n * c)
    }

    /// Adds the layer's parameter gradients into `grads` and turns `dresidual` (the gradient of
    /// the layer's output, `[rows, c]`) into the gradient of its input. `b` holds the forward's
    /// saved activations; the GELU output is recomputed into `b.gelu`.
    /// `attentionCoreBackward(dqkv, dout)` is the attention core's backward.
    func backward(input: UnsafePointer<Float>, buffers b: TransformerLayerBuffers, dresidual: UnsafeMutablePointer<Float>,
                  scratch d: TransformerLayerGradients, rows n: Int, params p: UnsafePointer<Float>,
                  grads grad: UnsafeMutablePointer<Float>, precision: LinearPrecision, region: TensorParallelRegion,
                  attentionCoreBackward: (_ dqkv: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>) -> Void) {
        let c = hidden
        // MLP block: the GELU output is recomputed instead of stored.
        if let saved = b.savedBF16 {
            BFloat16Conversion.widen(out: b.fc, inp: saved.fc, count: n * fc1.localOutFeatures)
        }
        GELU.forward(out: b.gelu, inp: b.fc, count: n * fc1.localOutFeatures)
        fc2.backward(dinp: d.dfc, dout: region.reduceFromRegionBackward(dresidual), inp: b.gelu, params: p, grads: grad,
                     ones: d.ones, rows: n, precision: precision)
        GELU.backward(dinp: d.dfc, inp: b.fc, dout: d.dfc, count: n * fc1.localOutFeatures)
        fc1.backward(dinp: d.dln, dout: d.dfc, inp: b.ln2, params: p, grads: grad, ones: d.ones, rows: n, precision: precision,
                     savedInput: b.savedBF16.map { UnsafePointer($0.ln2) })
        region.copyToRegionBackward(d.dln, count: n * c)
        LayerNorm.backward(dinp: dresidual, dweight: grad + preMLPLayerNorm.weight, dbias: grad + preMLPLayerNorm.bias,
                           dout: d.dln, inp: b.residual2, weight: p + preMLPLayerNorm.weight,
                           mean: b.ln2Mean, rstd: b.ln2Rstd, rows: n, channels: c)
        // Attention block.
        projection.backward(dinp: d.dattention, dout: region.reduceFromRegionBackward(dresidual), inp: b.attention,
                            params: p, grads: grad, ones: d.ones, rows: n, precision: precision,
                            savedInput: b.savedBF16?.attention.map { UnsafePointer($0) })
        if let saved = b.savedBF16 {  // the attention core's backward reads fp32 QKV and output
            if let attention = saved.attention {
                BFloat16Conversion.widen(out: b.qkv, inp: saved.qkv, count: n * qkv.localOutFeatures)
                BFloat16Conversion.widen(out: b.attention, inp: attention, count: n * projection.localInFeatures)
            } else {
                // Recomputed (selective): the caller re-ran the core from `b.qkv`, widened already;
                // its output is rounded as the kept copy would be, so both give the same gradients.
                BFloat16Conversion.roundInPlace(b.attention, count: n * projection.localInFeatures)
            }
        }
        attentionCoreBackward(d.dqkv, d.dattention)
        qkv.backward(dinp: d.dln, dout: d.dqkv, inp: b.ln1, params: p, grads: grad, ones: d.ones, rows: n, precision: precision,
                     savedInput: b.savedBF16.map { UnsafePointer($0.ln1) })
        region.copyToRegionBackward(d.dln, count: n * c)
        LayerNorm.backward(dinp: dresidual, dweight: grad + inputLayerNorm.weight, dbias: grad + inputLayerNorm.bias,
                           dout: d.dln, inp: input, weight: p + inputLayerNorm.weight,
                           mean: b.ln1Mean, rstd: b.ln1Rstd, rows: n, channels: c)
    }
}

/// Offsets of named tensors in a parameter layout, read with a subscript.
struct ParameterOffsets {
    let layout: ParameterLayout

    /// The offset of `name`, which the layout must hold.
    subscript(_ name: String) -> Int { layout.entry(name).offset }

    /// The offset of `name`, nil when the layout does not hold it (a pipeline stage without it).
    func optional(_ name: String) -> Int? { layout.index(of: name).map { layout.offsets[$0] } }
}
