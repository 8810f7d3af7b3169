import Kernels
import Parameters

/// Saved activations of one transformer layer for a micro-batch of `n = batch * seqLength` rows.
final class GPTLayerActivations {
    let ln1: FloatBuffer, ln1Mean: FloatBuffer, ln1Rstd: FloatBuffer  // [n, c], [n], [n]
    let qkv: FloatBuffer                                               // [n, 3c]
    let attention: FloatBuffer                                         // [n, c]
    let attentionLSE: FloatBuffer                                      // [batch, heads, seqLength]
    let residual2: FloatBuffer                                         // [n, c] input + attention branch
    let ln2: FloatBuffer, ln2Mean: FloatBuffer, ln2Rstd: FloatBuffer
    let fc: FloatBuffer                                                // [n, 4c] before GELU
    let residual3: FloatBuffer                                         // [n, c] the layer's output

    /// `local` is this rank's share of the hidden size (c / TP) and `f` its share of the MLP.
    init(n: Int, c: Int, local: Int, f: Int, lseCount: Int) {
        ln1 = FloatBuffer(count: n * c); ln1Mean = FloatBuffer(count: n); ln1Rstd = FloatBuffer(count: n)
        qkv = FloatBuffer(count: n * 3 * local)
        attention = FloatBuffer(count: n * local)
        attentionLSE = FloatBuffer(count: lseCount)
        residual2 = FloatBuffer(count: n * c)
        ln2 = FloatBuffer(count: n * c); ln2Mean = FloatBuffer(count: n); ln2Rstd = FloatBuffer(count: n)
        fc = FloatBuffer(count: n * f)
        residual3 = FloatBuffer(count: n * c)
    }
}

/// Everything a GPT forward keeps for its backward, plus the backward's reusable scratch, sized
/// for one micro-batch shape. Allocated once and reused every step (no allocation in the step).
final class GPTActivations {
    let batch: Int
    let seqLength: Int
    let tokens: Int32Buffer, targets: Int32Buffer, lossMask: FloatBuffer
    var hasLossMask = false
    var totals: CrossEntropy.Totals?
    let embedded: FloatBuffer                        // [n, c]
    let layers: [GPTLayerActivations]
    let lnf: FloatBuffer, lnfMean: FloatBuffer, lnfRstd: FloatBuffer
    let logits: FloatBuffer                          // [n, vocab]; becomes its gradient in backward
    let logitsLSE: FloatBuffer, losses: FloatBuffer  // [n]
    // Scratch shared by all layers.
    let gelu: FloatBuffer                            // [n, 4c] GELU output (recomputed in backward)
    let attentionScratch: FloatBuffer
    let dresidual: FloatBuffer, dln: FloatBuffer, dattention: FloatBuffer  // [n, c]
    let dqkv: FloatBuffer                            // [n, 3c]
    let dfc: FloatBuffer                             // [n, 4c]
    let ones: FloatBuffer                            // [n] for bias gradients
    let crossEntropyScratch: FloatBuffer             // [3n] vocab-parallel row statistics

    /// Sizes for one rank of a tensor-parallel group of `t`: QKV, attention, MLP and logits hold
    /// the rank's heads, MLP units and vocabulary range.
    init(config: GPTConfig, batch: Int, seqLength: Int, tensorParallel t: Int = 1) {
        self.batch = batch
        self.seqLength = seqLength
        let n = batch * seqLength
        let c = config.hiddenSize
        let local = c / t
        let f = config.ffnHiddenSize / t
        tokens = Int32Buffer(count: n)
        targets = Int32Buffer(count: n)
        lossMask = FloatBuffer(count: n)
        embedded = FloatBuffer(count: n * c)
        layers = (0..<config.numLayers).map { _ in
            GPTLayerActivations(n: n, c: c, local: local, f: f, lseCount: batch * config.numAttentionHeads / t * seqLength)
        }
        lnf = FloatBuffer(count: n * c); lnfMean = FloatBuffer(count: n); lnfRstd = FloatBuffer(count: n)
        logits = FloatBuffer(count: n * config.paddedVocabSize / t)
        logitsLSE = FloatBuffer(count: n)
        losses = FloatBuffer(count: n)
        gelu = FloatBuffer(count: n * f)
        attentionScratch = FloatBuffer(count: Attention.scratchCount(seqLength: seqLength))
        dresidual = FloatBuffer(count: n * c)
        dln = FloatBuffer(count: n * c)
        dattention = FloatBuffer(count: n * local)
        dqkv = FloatBuffer(count: n * 3 * local)
        dfc = FloatBuffer(count: n * f)
        ones = FloatBuffer(count: n)
        ones.pointer.update(repeating: 1, count: n)
        crossEntropyScratch = FloatBuffer(count: 3 * n)
    }
}
