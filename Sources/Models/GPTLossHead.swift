import Kernels

/// The last stage's head: the final LayerNorm, the output layer (tied to the word embedding,
/// column parallel over the vocabulary) and the vocabulary-parallel cross-entropy. The logits
/// stay as the fp32 accumulator gives them: the cross-entropy reads fp32.
///
/// The final LayerNorm sits in the residual region: with sequence parallelism it normalises this
/// rank's tokens, which enter the tensor-parallel region gathered (g) before the output layer;
/// the output layer's input gradient leaves it reduce-scattered.
struct GPTLossHead {
    let embedding: VocabParallelEmbedding
    let finalLayerNorm: LayerNormWeights
    let config: GPTConfig

    /// Runs the head on the last layer's output `residual` (`[region.localRows(n), c]`) and returns
    /// the masked loss totals (the same on every tensor-parallel rank).
    func forward(residual: UnsafePointer<Float>, activations acts: GPTActivations, scratch s: GPTScratch,
                 params p: FP32Weights, precision: LinearPrecision, region: TensorParallelRegion) -> CrossEntropy.Totals {
        let n = acts.batch * acts.seqLength, c = config.hiddenSize
        // In bf16 the fp32 output goes to scratch and the output layer keeps it rounded.
        let keepsBF16 = acts.bf16LNF.count > 0
        let lnf = keepsBF16 ? s.layerNormOutput.pointer : acts.lnf.pointer
        LayerNorm.forward(out: lnf, mean: acts.lnfMean.pointer, rstd: acts.lnfRstd.pointer, inp: residual,
                          weight: p + finalLayerNorm.weight, bias: p + finalLayerNorm.bias, rows: region.localRows(n),
                          channels: c, eps: config.layerNormEpsilon)
        let input = region.enterRegion(lnf, gatheringInto: s.sequenceGathered, rows: n, channels: c)
        embedding.outputLayer.forward(out: acts.logits.pointer, inp: input, params: p, rows: n, precision: precision,
                                      roundsOutput: false,
                                      savedInput: region.keptGEMMInput(keepsBF16 ? acts.bf16LNF.pointer : nil,
                                                                       layerNorm: lnf, rows: n, channels: c))
        return VocabParallelCrossEntropy(embedding: embedding, config: config).forward(
            losses: acts.losses.pointer, logSumExp: acts.logitsLSE.pointer, logits: acts.logits.pointer,
            targets: acts.targets.pointer, lossMask: acts.hasLossMask ? UnsafePointer(acts.lossMask.pointer) : nil,
            rows: n, scratch: s.crossEntropyScratch.pointer, region: region)
    }

    /// Sets `acts.dresidual` to the gradient of `gradientScale` times the mean loss `totals` with
    /// respect to the last layer's output `lastResidual`, adding the output layer's and final
    /// LayerNorm's parameter gradients into `grad`.
    func backward(totals: CrossEntropy.Totals, gradientScale: Float, lastResidual: UnsafePointer<Float>,
                  activations acts: GPTActivations, scratch s: GPTScratch, params p: FP32Weights,
                  grads grad: UnsafeMutablePointer<Float>, precision: LinearPrecision, region: TensorParallelRegion) {
        let n = acts.batch * acts.seqLength, c = config.hiddenSize, m = region.localRows(n)
        let scale = totals.weight > 0 ? gradientScale / Float(totals.weight) : 0
        let keepsBF16 = acts.bf16LNF.count > 0
        let input = region.gemmInputForBackward(layerNorm: keepsBF16 ? s.layerNormOutput.pointer : acts.lnf.pointer,
                                                saved: keepsBF16 ? acts.bf16LNF.pointer : nil,
                                                gatheringInto: s.sequenceGathered, rows: n, channels: c)
        // The cross-entropy's backward, then the output layer's; each rank's vocabulary columns
        // give part of the input gradient (f's backward sums them).
        VocabParallelCrossEntropy(embedding: embedding, config: config)
            .backward(through: embedding.outputLayer, scale: scale, activations: acts, dinp: s.dln.pointer, inp: input.input,
                      savedInput: input.saved, params: p, grads: grad, ones: nil, precision: precision)
        let dlnf = region.enterRegionBackward(s.dln.pointer, scatteringInto: s.layerGradients.dlnShard, rows: n, channels: c)
        acts.dresidual.zero()  // [m, c], the whole buffer (zeroed where it lives: on a GPU, there)
        LayerNorm.backward(dinp: acts.dresidual.pointer, dweight: grad + finalLayerNorm.weight, dbias: grad + finalLayerNorm.bias,
                           dout: dlnf, inp: lastResidual, weight: p + finalLayerNorm.weight, mean: acts.lnfMean.pointer,
                           rstd: acts.lnfRstd.pointer, rows: m, channels: c)
    }
}
