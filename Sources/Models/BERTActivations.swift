import Kernels
import Parameters

/// What a BERT micro-batch adds to `GPTActivations`: its segment ids, where each sequence's
/// padding starts, its sentence-order labels, and (last stage) the masked-LM and sentence-order
/// heads' saved activations and gradient scratch.
final class BERTActivations {
    /// `[batch, seqLength]` token-type (segment) ids.
    let tokenTypes: Int32Buffer
    /// `[batch]` tokens before each sequence's padding (the keys its queries attend to).
    let keyLengths: Int32Buffer
    /// `[batch]` sentence-order labels (0 in order, 1 swapped; `CrossEntropy.ignoreIndex`: none).
    let sentenceOrder: Int32Buffer
    /// The masked-LM head: dense output before the GELU, after it, and the LayerNorm's output and
    /// statistics (`[n, c]`, `[n]`), and the gradient scratch `[n, c]`.
    let lmDense: FloatBuffer, lmGELU: FloatBuffer, lmLayerNorm: FloatBuffer, lmMean: FloatBuffer, lmRstd: FloatBuffer
    let dHead: FloatBuffer
    /// The pooler: each sequence's first final-LayerNorm row, its tanh output, and their gradients `[batch, c]`.
    let firstTokens: FloatBuffer, pooled: FloatBuffer, dFirstTokens: FloatBuffer, dPooled: FloatBuffer
    /// The binary head's logits (`[batch, 2]`, then their gradient), log-sum-exp and losses `[batch]`.
    let binaryLogits: FloatBuffer, binaryLSE: FloatBuffer, binaryLosses: FloatBuffer
    /// The sentence-order loss of the last forward (nil without the binary head).
    var sentenceOrderTotals: CrossEntropy.Totals?

    init(config: GPTConfig, batch: Int, seqLength: Int, head: Bool) {
        let n = batch * seqLength, c = config.hiddenSize
        let headRows = head ? n : 0
        let binary = head && config.bert?.binaryHead == true ? batch : 0
        tokenTypes = Int32Buffer(count: n)
        keyLengths = Int32Buffer(count: batch)
        sentenceOrder = Int32Buffer(count: batch)
        lmDense = FloatBuffer(count: headRows * c)
        lmGELU = FloatBuffer(count: headRows * c)
        lmLayerNorm = FloatBuffer(count: headRows * c)
        lmMean = FloatBuffer(count: headRows)
        lmRstd = FloatBuffer(count: headRows)
        dHead = FloatBuffer(count: headRows * c)
        firstTokens = FloatBuffer(count: binary * c)
        pooled = FloatBuffer(count: binary * c)
        dFirstTokens = FloatBuffer(count: binary * c)
        dPooled = FloatBuffer(count: binary * c)
        binaryLogits = FloatBuffer(count: binary * 2)
        binaryLSE = FloatBuffer(count: binary)
        binaryLosses = FloatBuffer(count: binary)
    }

    /// Bytes held.
    var allocatedBytes: Int {
        4 * ([tokenTypes.count, keyLengths.count, sentenceOrder.count]
            + [lmDense, lmGELU, lmLayerNorm, lmMean, lmRstd, dHead, firstTokens, pooled, dFirstTokens, dPooled,
               binaryLogits, binaryLSE, binaryLosses].map(\.count)).reduce(0, +)
    }
}
