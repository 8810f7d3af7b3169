import Kernels
import Parameters

/// What a BERT micro-batch adds to `GPTActivations`: its segment ids, where each sequence's
/// padding starts, its sequence labels, and (last stage) the heads' saved activations and
/// gradient scratch.
final class BERTActivations {
    /// `[batch, seqLength]` token-type (segment) ids.
    let tokenTypes: Int32Buffer
    /// `[batch]` tokens before each sequence's padding (the keys its queries attend to).
    let keyLengths: Int32Buffer
    /// `[batch]` each sequence's label for the pooled head: pretraining's sentence order (0 in
    /// order, 1 swapped), a task's class, or (multiple choice) the answer of question `q` at
    /// index `q`; `CrossEntropy.ignoreIndex` for none.
    let sequenceLabels: Int32Buffer
    /// The masked-LM head: dense output before the GELU, after it, the LayerNorm's statistics and
    /// the gradient scratch, for this rank's tokens (`[m, c]`, `[m]`: with sequence parallelism
    /// `m = n / t`, as Megatron runs the dense layer and LayerNorm on each rank's tokens), and the
    /// LayerNorm's output gathered for the output layer (`[n, c]`).
    let lmDense: FloatBuffer, lmGELU: FloatBuffer, lmLayerNorm: FloatBuffer, lmMean: FloatBuffer, lmRstd: FloatBuffer
    let dHead: FloatBuffer
    /// The pooler: each sequence's first final-LayerNorm row, its tanh output, and their gradients `[batch, c]`.
    let firstTokens: FloatBuffer, pooled: FloatBuffer, dFirstTokens: FloatBuffer, dPooled: FloatBuffer
    /// A fine-tuning head's input: the pooled output after dropout `[batch, c]` (empty without
    /// hidden dropout or with the pretraining head, which reads `pooled`).
    let droppedPooled: FloatBuffer
    /// The pooled head's logits (`[batch, outputs]`, then their gradient), log-sum-exp and losses.
    let sequenceLogits: FloatBuffer, sequenceLSE: FloatBuffer, sequenceLosses: FloatBuffer
    /// Pretraining's sentence-order loss of the last forward (nil without the binary head).
    var sentenceOrderTotals: CrossEntropy.Totals?

    /// `localRows`: the tokens this rank's masked-LM dense layer and LayerNorm run on (`n`, or
    /// `n / t` with sequence parallelism).
    init(config: GPTConfig, batch: Int, seqLength: Int, head: Bool, localRows: Int) {
        let n = batch * seqLength, c = config.hiddenSize
        let settings = config.bert ?? BERTSettings()
        let lmRows = head && settings.head == .pretraining ? n : 0
        let lmLocal = lmRows > 0 ? localRows : 0
        let pooled = head && settings.poolsFirstToken ? batch : 0
        tokenTypes = Int32Buffer(count: n)
        keyLengths = Int32Buffer(count: batch)
        sequenceLabels = Int32Buffer(count: batch)
        lmDense = FloatBuffer(count: lmLocal * c)
        lmGELU = FloatBuffer(count: lmLocal * c)
        lmLayerNorm = FloatBuffer(count: lmRows * c)
        lmMean = FloatBuffer(count: lmLocal)
        lmRstd = FloatBuffer(count: lmLocal)
        dHead = FloatBuffer(count: lmLocal * c)
        firstTokens = FloatBuffer(count: pooled * c)
        self.pooled = FloatBuffer(count: pooled * c)
        dFirstTokens = FloatBuffer(count: pooled * c)
        dPooled = FloatBuffer(count: pooled * c)
        droppedPooled = FloatBuffer(count: Self.dropsPooled(config) ? pooled * c : 0)
        sequenceLogits = FloatBuffer(count: pooled * settings.head.outputs)
        sequenceLSE = FloatBuffer(count: pooled)
        sequenceLosses = FloatBuffer(count: pooled)
    }

    /// Bytes `init` allocates for these arguments, counted from the same sizes (`GPTMemory`'s
    /// figure; `Double` so that absurd shapes do not overflow).
    static func byteCount(config: GPTConfig, batch: Int, seqLength: Int, head: Bool, localRows: Int) -> Double {
        let b = Double(batch), n = b * Double(seqLength), c = Double(config.hiddenSize)
        let settings = config.bert ?? BERTSettings()
        let lmRows = head && settings.head == .pretraining ? n : 0
        let lmLocal = lmRows > 0 ? Double(localRows) : 0
        let pooled = head && settings.poolsFirstToken ? b : 0
        let poolerBuffers: Double = dropsPooled(config) ? 5 : 4
        // token types, key lengths, labels; the masked-LM head's three [m, c] and two [m] and its
        // gathered LayerNorm output [n, c]; the pooler's four [b, c] (five with the task head's
        // dropout); the pooled logits, log-sum-exp and losses.
        return 4 * (n + 2 * b + lmLocal * (3 * c + 2) + lmRows * c + pooled * poolerBuffers * c
                    + pooled * (Double(settings.head.outputs) + 2))
    }

    /// Whether `config`'s pooled head drops out its input: a fine-tuning head with hidden dropout.
    static func dropsPooled(_ config: GPTConfig) -> Bool {
        config.hiddenDropout > 0 && (config.bert?.head ?? .pretraining) != .pretraining
    }

    /// Bytes held.
    var allocatedBytes: Int {
        4 * ([tokenTypes.count, keyLengths.count, sequenceLabels.count]
            + [lmDense, lmGELU, lmLayerNorm, lmMean, lmRstd, dHead, firstTokens, pooled, dFirstTokens, dPooled, droppedPooled,
               sequenceLogits, sequenceLSE, sequenceLosses].map(\.count)).reduce(0, +)
    }
}
