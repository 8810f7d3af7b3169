import Kernels
import Parameters

/// Incremental decoding with a key/value cache: each `append` runs one new token through the
/// model, attending over the keys and values cached for the earlier positions, and returns the
/// next-token logits. Gives the same logits as a full `GPTModel.forward` over the whole sequence
/// (to float rounding) at a cost linear, not quadratic, in the generated length.
public final class GPTInference {
    public let model: GPTModel
    private let offsets: GPTOffsets
    private let keys: FloatBuffer      // [layers, maxPositions, channels], head h at h * headDim
    private let values: FloatBuffer
    private let x: FloatBuffer, normed: FloatBuffer, qkv: FloatBuffer, attention: FloatBuffer
    private let projected: FloatBuffer, hidden: FloatBuffer, activated: FloatBuffer
    private let scores: FloatBuffer, logitsBuffer: FloatBuffer, statistics: FloatBuffer
    /// Tokens processed so far (the next token's position).
    public private(set) var length = 0

    /// `model` must hold every weight (no tensor parallelism).
    public init(model: GPTModel) {
        precondition(model.tensorParallelSize == 1 && model.part.isWhole, "KV-cached decoding runs on a whole (single-rank) model")
        self.model = model
        let c = model.config.hiddenSize, t = model.config.maxPositionEmbeddings
        offsets = model.offsets
        keys = FloatBuffer(count: model.config.numLayers * t * c)
        values = FloatBuffer(count: model.config.numLayers * t * c)
        x = FloatBuffer(count: c)
        normed = FloatBuffer(count: c)
        qkv = FloatBuffer(count: 3 * c)
        attention = FloatBuffer(count: c)
        projected = FloatBuffer(count: c)
        hidden = FloatBuffer(count: model.config.ffnHiddenSize)
        activated = FloatBuffer(count: model.config.ffnHiddenSize)
        scores = FloatBuffer(count: t)
        logitsBuffer = FloatBuffer(count: model.config.paddedVocabSize)
        statistics = FloatBuffer(count: 2)
    }

    /// Forgets the cached sequence.
    public func reset() { length = 0 }

    /// The logits after the last appended token (`paddedVocabSize` values).
    public var logits: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: logitsBuffer.pointer, count: model.config.paddedVocabSize)
    }

    /// Runs `token` at position `length` and returns the logits for the next token.
    @discardableResult
    public func append(_ token: Int32) throws(GPTInputError) -> UnsafeBufferPointer<Float> {
        let config = model.config
        guard length < config.maxPositionEmbeddings else {
            throw .sequenceTooLong(seqLength: length + 1, maxPositionEmbeddings: config.maxPositionEmbeddings)
        }
        guard token >= 0 && Int(token) < config.paddedVocabSize else {
            throw .tokenOutOfRange(position: length, id: Int(token), vocabSize: config.paddedVocabSize)
        }
        let c = config.hiddenSize, f = config.ffnHiddenSize, heads = config.numAttentionHeads
        let d = c / heads, t = length, maxT = config.maxPositionEmbeddings
        let p = model.params.buffer.pointer, o = offsets, eps = config.layerNormEpsilon
        let mean = statistics.pointer, rstd = statistics.pointer + 1
        var position: Int32 = token
        Embedding.forward(out: x.pointer, tokens: &position, wte: p + o.wordEmbeddings!,
                          wpe: p + o.positionEmbeddings! + t * c, batch: 1, seqLength: 1, channels: c)
        let scale = 1 / Float(d).squareRoot()
        for (l, layer) in o.layers.enumerated() {
            LayerNorm.forward(out: normed.pointer, mean: mean, rstd: rstd, inp: x.pointer, weight: p + layer.ln1Weight,
                              bias: p + layer.ln1Bias, rows: 1, channels: c, eps: eps)
            Matmul.forward(out: qkv.pointer, inp: normed.pointer, weight: p + layer.qkvWeight, bias: p + layer.qkvBias,
                           rows: 1, inFeatures: c, outFeatures: 3 * c)
            let layerKeys = keys.pointer + l * maxT * c, layerValues = values.pointer + l * maxT * c
            for h in 0..<heads {
                let q = qkv.pointer + h * 3 * d
                (layerKeys + t * c + h * d).update(from: q + d, count: d)
                (layerValues + t * c + h * d).update(from: q + 2 * d, count: d)
                var largest = -Float.infinity
                for j in 0...t {
                    let score = vectorDot(q, layerKeys + j * c + h * d, d) * scale
                    scores.pointer[j] = score
                    largest = max(largest, score)
                }
                var total: Float = 0
                for j in 0...t {
                    let e = fastExp(scores.pointer[j] - largest)
                    scores.pointer[j] = e
                    total += e
                }
                let out = attention.pointer + h * d
                out.update(repeating: 0, count: d)
                for j in 0...t {
                    let weight = scores.pointer[j] / total
                    let v = layerValues + j * c + h * d
                    for k in 0..<d { out[k] += weight * v[k] }
                }
            }
            Matmul.forward(out: projected.pointer, inp: attention.pointer, weight: p + layer.projWeight,
                           bias: p + layer.projBias, rows: 1, inFeatures: c, outFeatures: c)
            Residual.addInPlace(x.pointer, projected.pointer, count: c)
            LayerNorm.forward(out: normed.pointer, mean: mean, rstd: rstd, inp: x.pointer, weight: p + layer.ln2Weight,
                              bias: p + layer.ln2Bias, rows: 1, channels: c, eps: eps)
            Matmul.forward(out: hidden.pointer, inp: normed.pointer, weight: p + layer.fc1Weight, bias: p + layer.fc1Bias,
                           rows: 1, inFeatures: c, outFeatures: f)
            GELU.forward(out: activated.pointer, inp: hidden.pointer, count: f)
            Matmul.forward(out: projected.pointer, inp: activated.pointer, weight: p + layer.fc2Weight,
                           bias: p + layer.fc2Bias, rows: 1, inFeatures: f, outFeatures: c)
            Residual.addInPlace(x.pointer, projected.pointer, count: c)
        }
        LayerNorm.forward(out: normed.pointer, mean: mean, rstd: rstd, inp: x.pointer, weight: p + o.finalLNWeight!,
                          bias: p + o.finalLNBias!, rows: 1, channels: c, eps: eps)
        Matmul.forward(out: logitsBuffer.pointer, inp: normed.pointer, weight: p + o.wordEmbeddings!, bias: nil,
                       rows: 1, inFeatures: c, outFeatures: config.paddedVocabSize)
        length += 1
        return logits
    }
}
