import Kernels
import Parameters

/// BERT's heads on the last stage (Megatron-core's `BertLMHead`, output layer, `Pooler` and
/// binary head; Megatron-LM's `Classification` and `MultipleChoice` heads), over the final
/// LayerNorm's output `x`:
///
///     masked LM:    logits = LN(GELU(x · D_lmᵀ + d_lm)) · Eᵀ + b_out   (E: the tied word embedding)
///     on the pool:  logits = tanh(x_first · D_poolᵀ + d_pool) · Wᵀ + w  (sentence order, or a task's classes)
///
/// Pretraining's loss is the masked-LM cross-entropy's masked mean plus the sentence-order
/// cross-entropy's mean (`pretrain_bert.py`'s `lm_loss + sop_loss`); a fine-tuning model's is its
/// task's cross-entropy over the sequences (or, for multiple choice, over each question's choices).
struct BERTHeads {
    let maskedLM: BERTMaskedLMHead?
    let pooled: BERTPooledHead?

    /// The heads' tensors in buffer order (full shapes; the caller shards them).
    static func parameterSpecs(_ config: GPTConfig, _ bert: BERTSettings) -> [ParameterSpec] {
        (bert.head == .pretraining ? BERTMaskedLMHead.parameterSpecs(config) : [])
            + (bert.poolsFirstToken ? BERTPooledHead.parameterSpecs(config, bert.head) : [])
    }

    init(offsets: ParameterOffsets, config: GPTConfig, settings: BERTSettings) {
        maskedLM = settings.head == .pretraining ? BERTMaskedLMHead(offsets: offsets, config: config) : nil
        pooled = settings.poolsFirstToken ? BERTPooledHead(offsets: offsets, config: config, head: settings.head) : nil
    }

    /// Runs the heads on the final LayerNorm's output `lnf` (`[n, c]`), with the training
    /// forward's `dropout` (nil: none). The masked-LM head's GEMMs run in the model's `precision`
    /// (as Megatron's, bf16 under `--bf16`); the pooled head's, a row per sequence, in fp32.
    /// Returns the loss the executor reports: the masked-LM totals (the sentence-order ones kept
    /// in `bert`), or the task's.
    func forward(lnf: UnsafePointer<Float>, activations acts: GPTActivations, bert: BERTActivations,
                 embedding: VocabParallelEmbedding, crossEntropy: VocabParallelCrossEntropy, scratch s: GPTScratch,
                 params p: FP32Weights, precision: LinearPrecision, region: TensorParallelRegion,
                 dropout: ModelDropout?) -> CrossEntropy.Totals {
        let sequence = pooled?.forward(lnf: lnf, activations: acts, bert: bert, params: p, dropout: dropout)
        guard let maskedLM else { return sequence! }
        bert.sentenceOrderTotals = sequence
        return maskedLM.forward(lnf: lnf, activations: acts, bert: bert, embedding: embedding, crossEntropy: crossEntropy,
                                scratch: s, params: p, precision: precision, region: region)
    }

    /// Writes into `dlnf` (`[n, c]`, overwritten) the gradient of `gradientScale` times the
    /// summed losses (each a mean; the one `forward` returned is `totals`) with respect to `lnf`,
    /// and adds the heads' parameter gradients (and the output layer's into the word embedding's).
    func backward(totals: CrossEntropy.Totals, gradientScale: Float, lnf: UnsafePointer<Float>,
                  dlnf: UnsafeMutablePointer<Float>, activations acts: GPTActivations, bert: BERTActivations,
                  embedding: VocabParallelEmbedding, crossEntropy: VocabParallelCrossEntropy, scratch s: GPTScratch,
                  params p: FP32Weights, grads grad: UnsafeMutablePointer<Float>, precision: LinearPrecision,
                  region: TensorParallelRegion, dropout: ModelDropout?) {
        if let maskedLM {
            maskedLM.backward(totals: totals, gradientScale: gradientScale, lnf: lnf, dlnf: dlnf, activations: acts, bert: bert,
                              embedding: embedding, crossEntropy: crossEntropy, scratch: s, params: p, grads: grad,
                              precision: precision, region: region)
        } else {
            MemoryCopy.zero(dlnf, count: acts.batch * acts.seqLength * (pooled?.hidden ?? 0))
        }
        guard let pooled, let sequence = maskedLM == nil ? totals : bert.sentenceOrderTotals else { return }
        pooled.backward(totals: sequence, gradientScale: gradientScale, dlnf: dlnf, activations: acts, bert: bert,
                        scratch: s, params: p, grads: grad, dropout: dropout)
        bert.sentenceOrderTotals = nil
    }
}

extension GPTModel {
    /// The last stage of a BERT: the final LayerNorm (kept in fp32 for the heads), then the heads.
    /// With sequence parallelism the LayerNorm normalises this rank's tokens and the rows are
    /// gathered (g) into `acts.lnf`: the pooler reads every sequence's first token there, and the
    /// masked-LM head takes this rank's rows back for its dense layer and LayerNorm, gathering
    /// their output before the output layer (Megatron's split).
    func bertHeadsForward(_ heads: BERTHeads, bert: BERTActivations, residual: UnsafePointer<Float>, activations acts: GPTActivations,
                          scratch s: GPTScratch, params p: FP32Weights, precision: LinearPrecision, embedding: VocabParallelEmbedding,
                          finalLayerNorm finalLN: LayerNormWeights, dropout: ModelDropout?) -> CrossEntropy.Totals {
        let n = acts.batch * acts.seqLength, c = config.hiddenSize
        let normalized = s.sequenceGathered ?? acts.lnf.pointer  // [localRows(n), c]
        LayerNorm.forward(out: normalized, mean: acts.lnfMean.pointer, rstd: acts.lnfRstd.pointer, inp: residual,
                          weight: p + finalLN.weight, bias: p + finalLN.bias, rows: region.localRows(n), channels: c,
                          eps: config.layerNormEpsilon)
        let lnf = region.enterRegion(normalized, gatheringInto: acts.lnf.pointer, rows: n, channels: c)
        return heads.forward(lnf: lnf, activations: acts, bert: bert, embedding: embedding,
                             crossEntropy: VocabParallelCrossEntropy(embedding: embedding, config: config),
                             scratch: s, params: p, precision: precision, region: region, dropout: dropout)
    }

    /// `bertHeadsForward`'s backward: `acts.dresidual` becomes the gradient of the last layer's
    /// output `lastResidual`. With sequence parallelism the heads leave this rank's rows of the
    /// final LayerNorm's output gradient complete (the masked-LM head's, reduce-scattered, plus
    /// the pooler's, which every rank computes whole), and the final LayerNorm's backward takes
    /// that block.
    func bertHeadsBackward(_ heads: BERTHeads, bert: BERTActivations, totals: CrossEntropy.Totals, gradientScale: Float,
                           lastResidual: UnsafePointer<Float>, activations acts: GPTActivations, scratch s: GPTScratch,
                           params p: FP32Weights, grads grad: UnsafeMutablePointer<Float>, precision: LinearPrecision,
                           embedding: VocabParallelEmbedding, finalLayerNorm finalLN: LayerNormWeights, dropout: ModelDropout?) {
        let n = acts.batch * acts.seqLength, c = config.hiddenSize
        heads.backward(totals: totals, gradientScale: gradientScale, lnf: acts.lnf.pointer, dlnf: s.dln.pointer,
                       activations: acts, bert: bert, embedding: embedding,
                       crossEntropy: VocabParallelCrossEntropy(embedding: embedding, config: config), scratch: s,
                       params: p, grads: grad, precision: precision, region: region, dropout: dropout)
        acts.dresidual.zero()
        LayerNorm.backward(dinp: acts.dresidual.pointer, dweight: grad + finalLN.weight, dbias: grad + finalLN.bias,
                           dout: s.dln.pointer + region.firstLocalRow(n) * c, inp: lastResidual, weight: p + finalLN.weight,
                           mean: acts.lnfMean.pointer, rstd: acts.lnfRstd.pointer, rows: region.localRows(n), channels: c)
    }
}

/// The masked-LM head: dense, exact GELU (PyTorch's `F.gelu`, as Megatron-core and Hugging Face),
/// LayerNorm, then the output layer (tied to the word embedding) with a bias of its own. With
/// tensor parallelism the output layer, its bias and the cross-entropy are split by vocabulary
/// (as GPT's); the dense layer and LayerNorm are replicated: computed alike on every rank, or with
/// sequence parallelism on each rank's tokens (their gradients then summed over the group). In
/// bf16 (fp16) the dense layer and the output layer multiply rounded operands, the dense output
/// is rounded, and the logits stay fp32 for the cross-entropy, as GPT's output layer.
struct BERTMaskedLMHead {
    let dense: ColumnParallelLinear
    let layerNorm: LayerNormWeights
    /// `output_layer.bias`, `[paddedVocabSize]`.
    let outputBias: Int
    let hidden: Int, epsilon: Float

    static let denseName = "lm_head.dense.weight", denseBiasName = "lm_head.dense.bias"
    static let layerNormName = "lm_head.layer_norm.weight", layerNormBiasName = "lm_head.layer_norm.bias"
    static let outputBiasName = "output_layer.bias"
    /// The tensors run on each rank's tokens under sequence parallelism.
    static let tokenLocalTensorNames: Set<String> = [denseName, denseBiasName, layerNormName, layerNormBiasName]

    static func parameterSpecs(_ config: GPTConfig) -> [ParameterSpec] {
        let c = config.hiddenSize
        return [
            ParameterSpec(name: denseName, shape: [c, c], weightDecay: true),
            ParameterSpec(name: denseBiasName, shape: [c], weightDecay: false),
            ParameterSpec(name: layerNormName, shape: [c], weightDecay: false),
            ParameterSpec(name: layerNormBiasName, shape: [c], weightDecay: false),
            ParameterSpec(name: outputBiasName, shape: [config.paddedVocabSize], weightDecay: false),
        ]
    }

    init(offsets: ParameterOffsets, config: GPTConfig) {
        let c = config.hiddenSize
        dense = ColumnParallelLinear(weight: offsets[Self.denseName], bias: offsets[Self.denseBiasName], inFeatures: c,
                                     localOutFeatures: c)
        layerNorm = LayerNormWeights(weight: offsets[Self.layerNormName], bias: offsets[Self.layerNormBiasName])
        outputBias = offsets[Self.outputBiasName]
        hidden = c
        epsilon = config.layerNormEpsilon
    }

    /// The output layer (the tied word embedding, or an untied weight) with BERT's bias.
    private func outputLayer(_ embedding: VocabParallelEmbedding) -> ColumnParallelLinear {
        let layer = embedding.outputLayer
        return ColumnParallelLinear(weight: layer.weight, bias: outputBias, inFeatures: layer.inFeatures,
                                    localOutFeatures: layer.localOutFeatures)
    }

    /// The logits go to `acts.logits`; returns the masked-LM totals. `lnf` is the final
    /// LayerNorm's output, every token (gathered with sequence parallelism); the dense layer,
    /// GELU and LayerNorm run on this rank's tokens, whose LayerNorm output is gathered for the
    /// output layer (g with sequence parallelism, Megatron's split; f without).
    func forward(lnf: UnsafePointer<Float>, activations acts: GPTActivations, bert: BERTActivations,
                 embedding: VocabParallelEmbedding, crossEntropy: VocabParallelCrossEntropy, scratch s: GPTScratch,
                 params p: FP32Weights, precision: LinearPrecision, region: TensorParallelRegion) -> CrossEntropy.Totals {
        let n = acts.batch * acts.seqLength, c = hidden, m = region.localRows(n)
        dense.forward(out: bert.lmDense.pointer, inp: lnf + region.firstLocalRow(n) * c, params: p, rows: m, precision: precision)
        GELU.forward(out: bert.lmGELU.pointer, inp: bert.lmDense.pointer, count: m * c, exact: true)
        // This rank's rows of the LayerNorm output: in the gather's staging buffer (free once the
        // final LayerNorm's output was gathered) with sequence parallelism, else in place.
        let normalized = s.sequenceGathered ?? bert.lmLayerNorm.pointer
        LayerNorm.forward(out: normalized, mean: bert.lmMean.pointer, rstd: bert.lmRstd.pointer,
                          inp: bert.lmGELU.pointer, weight: p + layerNorm.weight, bias: p + layerNorm.bias,
                          rows: m, channels: c, eps: epsilon)
        // The output layer is split by vocabulary over the tensor-parallel group.
        let input = region.enterRegion(normalized, gatheringInto: bert.lmLayerNorm.pointer, rows: n, channels: c)
        outputLayer(embedding).forward(out: acts.logits.pointer, inp: input, params: p, rows: n, precision: precision,
                                       roundsOutput: false)
        return crossEntropy.forward(
            losses: acts.losses.pointer, logSumExp: acts.logitsLSE.pointer, logits: acts.logits.pointer,
            targets: acts.targets.pointer, lossMask: acts.hasLossMask ? UnsafePointer(acts.lossMask.pointer) : nil,
            rows: n, scratch: s.crossEntropyScratch.pointer, region: region)
    }

    /// Overwrites `dlnf` with the gradient of `gradientScale` times the masked-LM loss (with
    /// sequence parallelism, this rank's rows of it: the only ones the final LayerNorm reads).
    func backward(totals: CrossEntropy.Totals, gradientScale: Float, lnf: UnsafePointer<Float>,
                  dlnf: UnsafeMutablePointer<Float>, activations acts: GPTActivations, bert: BERTActivations,
                  embedding: VocabParallelEmbedding, crossEntropy: VocabParallelCrossEntropy, scratch s: GPTScratch,
                  params p: FP32Weights, grads grad: UnsafeMutablePointer<Float>, precision: LinearPrecision,
                  region: TensorParallelRegion) {
        let n = acts.batch * acts.seqLength, c = hidden
        let ones = UnsafePointer(s.ones.pointer)
        let scale = totals.weight > 0 ? gradientScale / Float(totals.weight) : 0
        crossEntropy.backward(through: outputLayer(embedding), scale: scale, activations: acts, dinp: dlnf,
                              inp: bert.lmLayerNorm.pointer, params: p, grads: grad, ones: ones, precision: precision)
        // The output layer's input gradient, summed over the group (f) or reduce-scattered to this
        // rank's tokens (g); the dense layer's input gradient goes to this rank's rows of `dlnf`.
        let m = region.localRows(n), first = region.firstLocalRow(n)
        let dNormalized = region.enterRegionBackward(dlnf, scatteringInto: s.layerGradients.dlnShard, rows: n, channels: c)
        bert.dHead.zero()
        LayerNorm.backward(dinp: bert.dHead.pointer, dweight: grad + layerNorm.weight, dbias: grad + layerNorm.bias,
                           dout: dNormalized, inp: bert.lmGELU.pointer, weight: p + layerNorm.weight,
                           mean: bert.lmMean.pointer, rstd: bert.lmRstd.pointer, rows: m, channels: c)
        GELU.backward(dinp: bert.dHead.pointer, inp: bert.lmDense.pointer, dout: bert.dHead.pointer, count: m * c, exact: true)
        dense.backward(dinp: dlnf + first * c, dout: bert.dHead.pointer, inp: lnf + first * c, params: p, grads: grad, ones: ones,
                       rows: m, precision: precision)
    }
}
