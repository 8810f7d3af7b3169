#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Kernels
import Parameters

/// BERT's heads on the last stage (Megatron-core's `BertLMHead`, output layer, `Pooler` and
/// binary head), over the final LayerNorm's output `x`:
///
///     masked LM:      logits = LN(GELU(x · D_lmᵀ + d_lm)) · Eᵀ + b_out   (E: the tied word embedding)
///     sentence order: logits = tanh(x_first · D_poolᵀ + d_pool) · B_binᵀ + b_bin
///
/// The loss is the masked-LM cross-entropy's masked mean plus the sentence-order cross-entropy's
/// mean (`pretrain_bert.py`'s `lm_loss + sop_loss`). The GELU is the exact erf form (PyTorch's
/// `F.gelu`, as Megatron-core and Hugging Face's BERT). With tensor parallelism the output layer,
/// its bias and the cross-entropy are split by vocabulary (as GPT's); the dense layers, the
/// LayerNorm, the pooler and the binary head are replicated, computed alike on every rank.
struct BERTHeads {
    let lmDense: ColumnParallelLinear
    let lmLayerNorm: LayerNormWeights
    /// `output_layer.bias`, `[paddedVocabSize]`.
    let outputBias: Int
    /// The pooler's dense layer and the binary head (nil without `--bert-binary-head`).
    let pooler: ColumnParallelLinear?, binaryHead: ColumnParallelLinear?
    let hidden: Int, epsilon: Float

    static let lmDenseName = "lm_head.dense.weight", lmDenseBiasName = "lm_head.dense.bias"
    static let lmLayerNormName = "lm_head.layer_norm.weight", lmLayerNormBiasName = "lm_head.layer_norm.bias"
    static let outputBiasName = "output_layer.bias"
    static let poolerName = "pooler.dense.weight", poolerBiasName = "pooler.dense.bias"
    static let binaryHeadName = "binary_head.weight", binaryHeadBiasName = "binary_head.bias"

    /// The heads' tensors in buffer order (full shapes; the caller shards them).
    static func parameterSpecs(_ config: GPTConfig, _ bert: BERTSettings) -> [ParameterSpec] {
        let c = config.hiddenSize
        var specs = [
            ParameterSpec(name: lmDenseName, shape: [c, c], weightDecay: true),
            ParameterSpec(name: lmDenseBiasName, shape: [c], weightDecay: false),
            ParameterSpec(name: lmLayerNormName, shape: [c], weightDecay: false),
            ParameterSpec(name: lmLayerNormBiasName, shape: [c], weightDecay: false),
            ParameterSpec(name: outputBiasName, shape: [config.paddedVocabSize], weightDecay: false),
        ]
        if bert.binaryHead {
            specs += [
                ParameterSpec(name: poolerName, shape: [c, c], weightDecay: true),
                ParameterSpec(name: poolerBiasName, shape: [c], weightDecay: false),
                ParameterSpec(name: binaryHeadName, shape: [2, c], weightDecay: true),
                ParameterSpec(name: binaryHeadBiasName, shape: [2], weightDecay: false),
            ]
        }
        return specs
    }

    init(offsets: ParameterOffsets, config: GPTConfig, settings: BERTSettings) {
        let c = config.hiddenSize
        lmDense = ColumnParallelLinear(weight: offsets[Self.lmDenseName], bias: offsets[Self.lmDenseBiasName],
                                       inFeatures: c, localOutFeatures: c)
        lmLayerNorm = LayerNormWeights(weight: offsets[Self.lmLayerNormName], bias: offsets[Self.lmLayerNormBiasName])
        outputBias = offsets[Self.outputBiasName]
        if settings.binaryHead {
            pooler = ColumnParallelLinear(weight: offsets[Self.poolerName], bias: offsets[Self.poolerBiasName],
                                          inFeatures: c, localOutFeatures: c)
            binaryHead = ColumnParallelLinear(weight: offsets[Self.binaryHeadName], bias: offsets[Self.binaryHeadBiasName],
                                              inFeatures: c, localOutFeatures: 2)
        } else {
            pooler = nil
            binaryHead = nil
        }
        hidden = c
        epsilon = config.layerNormEpsilon
    }

    /// The output layer (the tied word embedding, or an untied weight) with BERT's bias.
    private func outputLayer(_ embedding: VocabParallelEmbedding) -> ColumnParallelLinear {
        let layer = embedding.outputLayer
        return ColumnParallelLinear(weight: layer.weight, bias: outputBias, inFeatures: layer.inFeatures,
                                    localOutFeatures: layer.localOutFeatures)
    }

    /// Runs both heads on the final LayerNorm's output `lnf` (`[n, c]`); the masked-LM logits go
    /// to `acts.logits`. Returns the masked-LM totals and keeps the sentence-order ones in `bert`.
    func forward(lnf: UnsafePointer<Float>, activations acts: GPTActivations, bert: BERTActivations,
                 embedding: VocabParallelEmbedding, crossEntropy: VocabParallelCrossEntropy, scratch s: GPTScratch,
                 params p: UnsafePointer<Float>, region: TensorParallelRegion) -> CrossEntropy.Totals {
        let n = acts.batch * acts.seqLength, c = hidden
        lmDense.forward(out: bert.lmDense.pointer, inp: lnf, params: p, rows: n, precision: .fp32)
        GELU.forward(out: bert.lmGELU.pointer, inp: bert.lmDense.pointer, count: n * c, exact: true)
        LayerNorm.forward(out: bert.lmLayerNorm.pointer, mean: bert.lmMean.pointer, rstd: bert.lmRstd.pointer,
                          inp: bert.lmGELU.pointer, weight: p + lmLayerNorm.weight, bias: p + lmLayerNorm.bias,
                          rows: n, channels: c, eps: epsilon)
        // The output layer is split by vocabulary over the tensor-parallel group (f before it).
        outputLayer(embedding).forward(out: acts.logits.pointer,
                                       inp: region.enterRegion(bert.lmLayerNorm.pointer, gatheringInto: nil, rows: n, channels: c),
                                       params: p, rows: n, precision: .fp32, roundsOutput: false)
        let totals = crossEntropy.forward(
            losses: acts.losses.pointer, logSumExp: acts.logitsLSE.pointer, logits: acts.logits.pointer,
            targets: acts.targets.pointer, lossMask: acts.hasLossMask ? UnsafePointer(acts.lossMask.pointer) : nil,
            rows: n, scratch: s.crossEntropyScratch.pointer, region: region)
        if let pooler, let binaryHead {
            let b = acts.batch
            for sequence in 0..<b {
                MemoryCopy.copy(to: bert.firstTokens.pointer + sequence * c, from: lnf + sequence * acts.seqLength * c, count: c)
            }
            pooler.forward(out: bert.pooled.pointer, inp: bert.firstTokens.pointer, params: p, rows: b, precision: .fp32)
            for i in 0..<b * c { bert.pooled.pointer[i] = tanhf(bert.pooled.pointer[i]) }
            binaryHead.forward(out: bert.binaryLogits.pointer, inp: bert.pooled.pointer, params: p, rows: b, precision: .fp32)
            bert.sentenceOrderTotals = CrossEntropy.forward(
                losses: bert.binaryLosses.pointer, logSumExp: bert.binaryLSE.pointer, logits: bert.binaryLogits.pointer,
                targets: bert.sentenceOrder.pointer, lossMask: nil, rows: b, vocab: 2)
        }
        return totals
    }

    /// Writes into `dlnf` (`[n, c]`, overwritten) the gradient of `gradientScale` times the
    /// summed losses (each a mean: the masked-LM one over `totals`) with respect to `lnf`, and
    /// adds the heads' parameter gradients (and the output layer's into the word embedding's).
    func backward(totals: CrossEntropy.Totals, gradientScale: Float, lnf: UnsafePointer<Float>,
                  dlnf: UnsafeMutablePointer<Float>, activations acts: GPTActivations, bert: BERTActivations,
                  embedding: VocabParallelEmbedding, crossEntropy: VocabParallelCrossEntropy, scratch s: GPTScratch,
                  params p: UnsafePointer<Float>, grads grad: UnsafeMutablePointer<Float>, region: TensorParallelRegion) {
        let n = acts.batch * acts.seqLength, c = hidden
        let ones = UnsafePointer(s.ones.pointer)
        let scale = totals.weight > 0 ? gradientScale / Float(totals.weight) : 0
        crossEntropy.backward(logitsToGradient: acts.logits.pointer, logSumExp: acts.logitsLSE.pointer,
                              targets: acts.targets.pointer,
                              lossMask: acts.hasLossMask ? UnsafePointer(acts.lossMask.pointer) : nil, scale: scale,
                              rows: n, precision: .fp32)
        outputLayer(embedding).backward(dinp: dlnf, dout: acts.logits.pointer, inp: bert.lmLayerNorm.pointer, params: p,
                                        grads: grad, ones: ones, rows: n, precision: .fp32)
        bert.dHead.zero()
        LayerNorm.backward(dinp: bert.dHead.pointer, dweight: grad + lmLayerNorm.weight, dbias: grad + lmLayerNorm.bias,
                           dout: region.enterRegionBackward(dlnf, scatteringInto: nil, rows: n, channels: c), inp: bert.lmGELU.pointer, weight: p + lmLayerNorm.weight,
                           mean: bert.lmMean.pointer, rstd: bert.lmRstd.pointer, rows: n, channels: c)
        GELU.backward(dinp: bert.dHead.pointer, inp: bert.lmDense.pointer, dout: bert.dHead.pointer, count: n * c, exact: true)
        lmDense.backward(dinp: dlnf, dout: bert.dHead.pointer, inp: lnf, params: p, grads: grad, ones: ones, rows: n,
                         precision: .fp32)
        guard let pooler, let binaryHead, let sentenceOrder = bert.sentenceOrderTotals else { return }
        let b = acts.batch
        let binaryScale = sentenceOrder.weight > 0 ? gradientScale / Float(sentenceOrder.weight) : 0
        CrossEntropy.backward(logitsToGradient: bert.binaryLogits.pointer, logSumExp: bert.binaryLSE.pointer,
                              targets: bert.sentenceOrder.pointer, lossMask: nil, scale: binaryScale, rows: b, vocab: 2)
        binaryHead.backward(dinp: bert.dPooled.pointer, dout: bert.binaryLogits.pointer, inp: bert.pooled.pointer, params: p,
                            grads: grad, ones: ones, rows: b, precision: .fp32)
        for i in 0..<b * c { bert.dPooled.pointer[i] *= 1 - bert.pooled.pointer[i] * bert.pooled.pointer[i] }
        pooler.backward(dinp: bert.dFirstTokens.pointer, dout: bert.dPooled.pointer, inp: bert.firstTokens.pointer, params: p,
                        grads: grad, ones: ones, rows: b, precision: .fp32)
        for sequence in 0..<b {
            Residual.addInPlace(dlnf + sequence * acts.seqLength * c, bert.dFirstTokens.pointer + sequence * c, count: c)
        }
        bert.sentenceOrderTotals = nil
    }
}
