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

    /// `local` is this rank's share of the hidden size (c / TP) and `ffnLocal` its share of the MLP.
    init(n: Int, c: Int, local: Int, ffnLocal: Int, lseCount: Int) {
        ln1 = FloatBuffer(count: n * c); ln1Mean = FloatBuffer(count: n); ln1Rstd = FloatBuffer(count: n)
        qkv = FloatBuffer(count: n * 3 * local)
        attention = FloatBuffer(count: n * local)
        attentionLSE = FloatBuffer(count: lseCount)
        residual2 = FloatBuffer(count: n * c)
        ln2 = FloatBuffer(count: n * c); ln2Mean = FloatBuffer(count: n); ln2Rstd = FloatBuffer(count: n)
        fc = FloatBuffer(count: n * ffnLocal)
        residual3 = FloatBuffer(count: n * c)
    }

    /// The layer's forward buffers, with the GELU output in `gelu` (shared scratch: the backward
    /// recomputes it).
    func buffers(gelu: UnsafeMutablePointer<Float>) -> TransformerLayerBuffers {
        TransformerLayerBuffers(ln1: ln1.pointer, ln1Mean: ln1Mean.pointer, ln1Rstd: ln1Rstd.pointer, qkv: qkv.pointer,
                                attention: attention.pointer, residual2: residual2.pointer, ln2: ln2.pointer,
                                ln2Mean: ln2Mean.pointer, ln2Rstd: ln2Rstd.pointer, fc: fc.pointer, gelu: gelu,
                                output: residual3.pointer)
    }
}

/// Everything one model chunk's forward keeps for its backward, for one micro-batch in flight.
/// A pipeline stage holds several at once (one per micro-batch between its forward and its
/// backward); they are reused from step to step.
///
/// `input` is the chunk's input (the embedding output, or the activation received from the
/// previous stage) and `output` its output (sent to the next stage). `outputGradient` receives
/// the gradient of the output before the backward; after the backward the same buffer holds the
/// gradient of the input (`inputGradient`), sent to the previous stage.
public final class GPTActivations {
    /// Micro-batch shape.
    public let batch: Int
    public let seqLength: Int
    let tokens: Int32Buffer, targets: Int32Buffer, lossMask: FloatBuffer
    var hasLossMask = false
    var totals: CrossEntropy.Totals?
    var forwarded = false
    let embedded: FloatBuffer                        // [n, c] the chunk's input
    let layers: [GPTLayerActivations]
    let lnf: FloatBuffer, lnfMean: FloatBuffer, lnfRstd: FloatBuffer
    let logits: FloatBuffer                          // [n, vocab]; becomes its gradient in backward (empty without the head)
    let logitsLSE: FloatBuffer, losses: FloatBuffer  // [n]
    let dresidual: FloatBuffer                       // [n, c] gradient of the residual stream

    /// Sizes for `layerCount` layers on one rank of a tensor-parallel group of `t`, with the
    /// final LayerNorm and output layer when `head`: QKV, attention, MLP and logits hold the
    /// rank's heads, MLP units and vocabulary range.
    init(config: GPTConfig, batch: Int, seqLength: Int, tensorParallel t: Int, layerCount: Int, head: Bool) {
        self.batch = batch
        self.seqLength = seqLength
        let n = batch * seqLength
        let c = config.hiddenSize
        let local = c / t
        let ffnLocal = config.ffnHiddenSize / t
        tokens = Int32Buffer(count: n)
        targets = Int32Buffer(count: n)
        lossMask = FloatBuffer(count: n)
        embedded = FloatBuffer(count: n * c)
        layers = (0..<layerCount).map { _ in
            GPTLayerActivations(n: n, c: c, local: local, ffnLocal: ffnLocal, lseCount: batch * config.numAttentionHeads / t * seqLength)
        }
        let headRows = head ? n : 0
        lnf = FloatBuffer(count: headRows * c); lnfMean = FloatBuffer(count: headRows); lnfRstd = FloatBuffer(count: headRows)
        logits = FloatBuffer(count: headRows * config.paddedVocabSize / t)
        logitsLSE = FloatBuffer(count: headRows)
        losses = FloatBuffer(count: headRows)
        dresidual = FloatBuffer(count: n * c)
    }

    /// Elements of `input`, `output` and the gradients (`batch * seqLength * hiddenSize`).
    public var hiddenCount: Int { embedded.count }
    /// The chunk's input activation `[batch, seqLength, hidden]` (write the received one here).
    public var input: UnsafeMutablePointer<Float> { embedded.pointer }
    /// The chunk's output activation after its forward.
    public var output: UnsafePointer<Float> { UnsafePointer(layers.last?.residual3.pointer ?? embedded.pointer) }
    /// Write the gradient of the output here before the backward of a chunk without the loss.
    public var outputGradient: UnsafeMutablePointer<Float> { dresidual.pointer }
    /// The gradient of the input after the backward.
    public var inputGradient: UnsafePointer<Float> { UnsafePointer(dresidual.pointer) }

    /// Bytes this set holds (what `GPTMemory.activationBytes` predicts).
    var allocatedBytes: Int {
        let perLayer = layers.map { a in
            [a.ln1, a.ln1Mean, a.ln1Rstd, a.qkv, a.attention, a.attentionLSE, a.residual2, a.ln2, a.ln2Mean, a.ln2Rstd, a.fc, a.residual3]
                .reduce(0) { $0 + $1.count }
        }.reduce(0, +)
        let own = [lossMask, embedded, lnf, lnfMean, lnfRstd, logits, logitsLSE, losses, dresidual].reduce(0) { $0 + $1.count }
        return 4 * (tokens.count + targets.count + own + perLayer)
    }
}

/// A GPT's per-step scratch, shared by every layer and every micro-batch in flight (only one
/// forward or backward runs at a time on a rank).
final class GPTScratch {
    let batch: Int
    let seqLength: Int
    let gelu: FloatBuffer                            // [n, 4c] GELU output (recomputed in backward)
    let attentionScratch: FloatBuffer
    let dln: FloatBuffer, dattention: FloatBuffer    // [n, c]
    let dqkv: FloatBuffer                            // [n, 3c]
    let dfc: FloatBuffer                             // [n, 4c]
    let ones: FloatBuffer                            // [n] for bias gradients
    let crossEntropyScratch: FloatBuffer             // [3n] vocab-parallel row statistics

    init(config: GPTConfig, batch: Int, seqLength: Int, tensorParallel t: Int) {
        self.batch = batch
        self.seqLength = seqLength
        let n = batch * seqLength
        let c = config.hiddenSize
        let local = c / t
        let ffnLocal = config.ffnHiddenSize / t
        gelu = FloatBuffer(count: n * ffnLocal)
        attentionScratch = FloatBuffer(count: Attention.scratchCount(seqLength: seqLength))
        dln = FloatBuffer(count: n * c)
        dattention = FloatBuffer(count: n * local)
        dqkv = FloatBuffer(count: n * 3 * local)
        dfc = FloatBuffer(count: n * ffnLocal)
        ones = FloatBuffer(count: n)
        ones.pointer.update(repeating: 1, count: n)
        crossEntropyScratch = FloatBuffer(count: 3 * n)
    }

    /// Bytes this scratch holds (what `GPTMemory.scratchBytes` predicts).
    var allocatedBytes: Int {
        4 * [gelu, attentionScratch, dln, dattention, dqkv, dfc, ones, crossEntropyScratch].reduce(0) { $0 + $1.count }
    }

    /// The gradient scratch every layer's backward uses in turn.
    var layerGradients: TransformerLayerGradients {
        TransformerLayerGradients(dln: dln.pointer, dattention: dattention.pointer, dqkv: dqkv.pointer, dfc: dfc.pointer,
                                  ones: UnsafePointer(ones.pointer))
    }
}
