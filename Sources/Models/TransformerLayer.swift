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
    /// With sequence parallelism, shared scratch `[rows, c]` for everything gathered over the
    /// sequence (the LayerNorm outputs entering the region, the output gradients coming back) and
    /// the row-parallel partial sums before the reduce-scatter; nil otherwise. Then `ln1`, `ln2`,
    /// their statistics, `residual2` and `output` hold this rank's `rows / t` tokens only.
    var gathered: UnsafeMutablePointer<Float>? = nil
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
    /// With sequence parallelism, this rank's tokens' share of `dln` after the reduce-scatter
    /// `[rows / t, c]`; nil otherwise.
    var dlnShard: UnsafeMutablePointer<Float>?
    /// With hidden dropout, a branch's output gradient after the mask `[rows (/ t), c]`; nil otherwise.
    var dbranch: UnsafeMutablePointer<Float>?
}

/// One pre-LayerNorm transformer layer on one tensor-parallel rank (Megatron-LM Figure 2 and 3):
///
///     x -> LN -> f -> QKV (column) -> attention -> projection (row) -> g -> + x = r
///     r -> LN -> f -> fc1 (column) -> GELU -> fc2 (row) -> g -> + r
///
/// With sequence parallelism (Korthikanti et al. 2022, Figure 5) f and g become an all-gather and
/// a reduce-scatter along the sequence, and x, r and the LayerNorms hold `1/t` of the tokens
/// (`TensorParallelRegion.enterRegion` / `leaveRegion` are the pair in either form).
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
    /// The layer's index in the whole model (names its dropout streams).
    public let index: Int
    /// Whether the MLP's GELU is the exact erf form (`GPTConfig.exactGELU`).
    public let exactGELU: Bool
    /// Megatron's `--apply-residual-connection-post-layernorm` (BERT's post-LN order): each
    /// residual branch adds to its LayerNorm's output instead of its input.
    public let residualFromLayerNorm: Bool

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
        self.index = index
        exactGELU = config.exactGELU
        residualFromLayerNorm = config.bert?.residualConnectionPostLayerNorm ?? false
    }

    /// Runs the layer on `input` (`[region.localRows(rows), c]`) into `b.output`, the linear
    /// layers in `precision` over all `rows` tokens. `attentionCore(qkv, out)` turns this rank's
    /// QKV rows into its heads' attention output. `dropout` (a training forward) drops out the
    /// attention and MLP outputs before their residual additions.
    func forward(input: UnsafePointer<Float>, buffers b: TransformerLayerBuffers, rows n: Int,
                 params p: FP32Weights, precision: LinearPrecision, region: TensorParallelRegion,
                 dropout: ModelDropout? = nil,
                 attentionCore: (_ qkv: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) -> Void) {
        let c = hidden, local = region.localRows(n)
        // Attention block.
        LayerNorm.forward(out: b.ln1, mean: b.ln1Mean, rstd: b.ln1Rstd, inp: input, weight: p + inputLayerNorm.weight,
                          bias: p + inputLayerNorm.bias, rows: local, channels: c, eps: epsilon)
        let ln1 = region.enterRegion(b.ln1, gatheringInto: b.gathered, rows: n, channels: c)
        qkv.forward(out: b.qkv, inp: ln1, params: p, rows: n, precision: precision,
                    savedInput: region.keptGEMMInput(b.savedBF16?.ln1, layerNorm: b.ln1, rows: n, channels: c))
        if let saved = b.savedBF16 {  // exact: the output is rounded to bf16 already
            BFloat16Conversion.round(out: saved.qkv, inp: b.qkv, count: n * qkv.localOutFeatures)
        }
        attentionCore(b.qkv, b.attention)
        let attentionPartial = b.gathered ?? b.residual2
        projection.forward(partial: attentionPartial, inp: b.attention, params: p, rows: n, precision: precision,
                           savedInput: b.savedBF16?.attention)
        region.leaveRegion(attentionPartial, into: b.residual2, rows: n, channels: c)
        dropout?.applyHidden(b.residual2, rows: local, site: .attentionOutput, layer: index)
        Residual.addInPlace(b.residual2, residualFromLayerNorm ? UnsafePointer(b.ln1) : input, count: local * c)
        // MLP block.
        LayerNorm.forward(out: b.ln2, mean: b.ln2Mean, rstd: b.ln2Rstd, inp: b.residual2, weight: p + preMLPLayerNorm.weight,
                          bias: p + preMLPLayerNorm.bias, rows: local, channels: c, eps: epsilon)
        let ln2 = region.enterRegion(b.ln2, gatheringInto: b.gathered, rows: n, channels: c)
        fc1.forward(out: b.fc, inp: ln2, params: p, rows: n, precision: precision,
                    savedInput: region.keptGEMMInput(b.savedBF16?.ln2, layerNorm: b.ln2, rows: n, channels: c))
        if let saved = b.savedBF16 {  // exact: the output is rounded to bf16 already
            BFloat16Conversion.round(out: saved.fc, inp: b.fc, count: n * fc1.localOutFeatures)
        }
        GELU.forward(out: b.gelu, inp: b.fc, count: n * fc1.localOutFeatures, exact: exactGELU)
        let mlpPartial = b.gathered ?? b.output
        fc2.forward(partial: mlpPartial, inp: b.gelu, params: p, rows: n, precision: precision)
        region.leaveRegion(mlpPartial, into: b.output, rows: n, channels: c)
        dropout?.applyHidden(b.output, rows: local, site: .mlpOutput, layer: index)
        Residual.addInPlace(b.output, residualFromLayerNorm ? b.ln2 : b.residual2, count: local * c)
    }

    /// Adds the layer's parameter gradients into `grads` and turns `dresidual` (the gradient of
    /// the layer's output, `[region.localRows(rows), c]`) into the gradient of its input. `b`
    /// holds the forward's saved activations; the GELU output is recomputed into `b.gelu`.
    /// `attentionCoreBackward(dqkv, dout)` is the attention core's backward. With sequence
    /// parallelism the LayerNorm weight gradients are this rank's tokens' share: the caller sums
    /// them over the group once per step (`GPTModel.allReduceSequenceParallelGradients`).
    /// `dropout` is the forward's: each branch's gradient goes through the same mask (into
    /// `d.dbranch`, the residual path keeping `dresidual`).
    func backward(input: UnsafePointer<Float>, buffers b: TransformerLayerBuffers, dresidual: UnsafeMutablePointer<Float>,
                  scratch d: TransformerLayerGradients, rows n: Int, params p: FP32Weights,
                  grads grad: UnsafeMutablePointer<Float>, precision: LinearPrecision, region: TensorParallelRegion,
                  dropout: ModelDropout? = nil,
                  attentionCoreBackward: (_ dqkv: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>) -> Void) {
        let c = hidden, local = region.localRows(n)
        // MLP block: the GELU output is recomputed instead of stored.
        if let saved = b.savedBF16 {
            BFloat16Conversion.widen(out: b.fc, inp: saved.fc, count: n * fc1.localOutFeatures)
        }
        GELU.forward(out: b.gelu, inp: b.fc, count: n * fc1.localOutFeatures, exact: exactGELU)
        let mlpGradient = dropout?.applyHidden(out: d.dbranch!, inp: dresidual, rows: local, site: .mlpOutput, layer: index)
        fc2.backward(dinp: d.dfc,
                     dout: region.leaveRegionBackward(mlpGradient ?? UnsafePointer(dresidual), gatheringInto: b.gathered,
                                                      rows: n, channels: c),
                     inp: b.gelu, params: p, grads: grad, ones: d.ones, rows: n, precision: precision)
        GELU.backward(dinp: d.dfc, inp: b.fc, dout: d.dfc, count: n * fc1.localOutFeatures, exact: exactGELU)
        let ln2 = region.gemmInputForBackward(layerNorm: b.ln2, saved: b.savedBF16?.ln2, gatheringInto: b.gathered,
                                               rows: n, channels: c)
        fc1.backward(dinp: d.dln, dout: d.dfc, inp: ln2.input, params: p, grads: grad, ones: d.ones, rows: n, precision: precision,
                     savedInput: ln2.saved)
        LayerNorm.backward(dinp: dresidual, dweight: grad + preMLPLayerNorm.weight, dbias: grad + preMLPLayerNorm.bias,
                           dout: layerNormOutputGradient(d, dresidual: dresidual, rows: n, region: region),
                           inp: b.residual2, weight: p + preMLPLayerNorm.weight,
                           mean: b.ln2Mean, rstd: b.ln2Rstd, rows: local, channels: c)
        // Attention block.
        let attentionGradient = dropout?.applyHidden(out: d.dbranch!, inp: dresidual, rows: local, site: .attentionOutput,
                                                     layer: index)
        projection.backward(dinp: d.dattention,
                            dout: region.leaveRegionBackward(attentionGradient ?? UnsafePointer(dresidual),
                                                             gatheringInto: b.gathered, rows: n, channels: c),
                            inp: b.attention, params: p, grads: grad, ones: d.ones, rows: n, precision: precision,
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
        let ln1 = region.gemmInputForBackward(layerNorm: b.ln1, saved: b.savedBF16?.ln1, gatheringInto: b.gathered,
                                               rows: n, channels: c)
        qkv.backward(dinp: d.dln, dout: d.dqkv, inp: ln1.input, params: p, grads: grad, ones: d.ones, rows: n,
                     precision: precision, savedInput: ln1.saved)
        LayerNorm.backward(dinp: dresidual, dweight: grad + inputLayerNorm.weight, dbias: grad + inputLayerNorm.bias,
                           dout: layerNormOutputGradient(d, dresidual: dresidual, rows: n, region: region),
                           inp: input, weight: p + inputLayerNorm.weight,
                           mean: b.ln1Mean, rstd: b.ln1Rstd, rows: local, channels: c)
    }
}

extension TransformerLayer {
    /// The gradient of a LayerNorm's output, this rank's tokens: what the branch's first GEMM
    /// gave back (`d.dln`, summed or reduce-scattered over the tensor-parallel group), plus, when
    /// the residual adds to the LayerNorm's output, the residual path's `dresidual`, which then
    /// restarts from zero (the LayerNorm's backward adds the input gradient into it).
    fileprivate func layerNormOutputGradient(_ d: TransformerLayerGradients, dresidual: UnsafeMutablePointer<Float>,
                                             rows n: Int, region: TensorParallelRegion) -> UnsafePointer<Float> {
        let gradient = region.enterRegionBackward(d.dln, scatteringInto: d.dlnShard, rows: n, channels: hidden)
        guard residualFromLayerNorm else { return gradient }
        let count = region.localRows(n) * hidden
        Residual.addInPlace(UnsafeMutablePointer(mutating: gradient), dresidual, count: count)
        MemoryCopy.zero(dresidual, count: count)
        return gradient
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
