import Kernels
import Parameters

/// Incremental decoding with a key/value cache: each `append` runs one new token through the
/// model, attending over the keys and values cached for the earlier positions, and returns the
/// next-token logits. Gives the same logits as a full `GPTModel.forward` over the whole sequence
/// (to float rounding) at a cost linear, not quadratic, in the generated length. The transformer
/// layers are the model's own (`TransformerLayer`); only the attention core differs.
public final class GPTInference {
    public let model: GPTModel
    private let keys: FloatBuffer      // [layers, maxPositions, channels], head h at h * headDim
    private let values: FloatBuffer
    /// The residual stream: the layer input and output alternate between the two halves.
    private let stream: FloatBuffer
    private let normed: FloatBuffer, qkv: FloatBuffer, attention: FloatBuffer, residual: FloatBuffer
    private let hidden: FloatBuffer, activated: FloatBuffer
    private let scores: FloatBuffer, logitsBuffer: FloatBuffer, statistics: FloatBuffer
    /// Tokens processed so far (the next token's position).
    public private(set) var length = 0

    /// `model` must hold every weight (no tensor parallelism).
    public init(model: GPTModel) {
        precondition(model.tensorParallelSize == 1 && model.part.isWhole, "KV-cached decoding runs on a whole (single-rank) model")
        self.model = model
        let c = model.config.hiddenSize, t = model.config.maxPositionEmbeddings
        keys = FloatBuffer(count: model.config.numLayers * t * c)
        values = FloatBuffer(count: model.config.numLayers * t * c)
        stream = FloatBuffer(count: 2 * c)
        normed = FloatBuffer(count: c)
        qkv = FloatBuffer(count: 3 * c)
        attention = FloatBuffer(count: c)
        residual = FloatBuffer(count: c)
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
        let c = config.hiddenSize
        let p = UnsafePointer(model.params.buffer.pointer), stage = model.stage
        let mean = statistics.pointer, rstd = statistics.pointer + 1
        guard let embedding = stage.embedding, let positions = embedding.positionEmbeddings,
              let finalLN = stage.finalLayerNorm else { preconditionFailure("decoding needs the whole model") }
        var x = stream.pointer, next = stream.pointer + c
        var position: Int32 = token
        Embedding.forward(out: x, tokens: &position, wte: p + embedding.wordEmbeddings,
                          wpe: p + positions + length * c, batch: 1, seqLength: 1, channels: c)
        for (l, layer) in stage.layers.enumerated() {
            let buffers = TransformerLayerBuffers(
                ln1: normed.pointer, ln1Mean: mean, ln1Rstd: rstd, qkv: qkv.pointer, attention: attention.pointer,
                residual2: residual.pointer, ln2: normed.pointer, ln2Mean: mean, ln2Rstd: rstd, fc: hidden.pointer,
                gelu: activated.pointer, output: next)
            layer.forward(input: x, buffers: buffers, rows: 1, params: p, precision: .fp32, region: model.region) { qkv, out in
                attendToCache(layer: l, qkv: qkv, out: out)
            }
            swap(&x, &next)
        }
        LayerNorm.forward(out: normed.pointer, mean: mean, rstd: rstd, inp: x, weight: p + finalLN.weight,
                          bias: p + finalLN.bias, rows: 1, channels: c, eps: config.layerNormEpsilon)
        embedding.outputLayer.forward(out: logitsBuffer.pointer, inp: normed.pointer, params: p, rows: 1, precision: .fp32)
        length += 1
        return logits
    }

    /// The attention core of one token at position `length` in layer `layer`: appends its key
    /// and value to the cache and attends over positions `0...length`.
    private func attendToCache(layer: Int, qkv: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let config = model.config
        let c = config.hiddenSize, heads = config.numAttentionHeads, d = c / heads
        let t = length, maxT = config.maxPositionEmbeddings
        let scale = 1 / Float(d).squareRoot()
        let layerKeys = keys.pointer + layer * maxT * c, layerValues = values.pointer + layer * maxT * c
        for h in 0..<heads {
            let q = qkv + h * 3 * d
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
            let headOut = out + h * d
            headOut.update(repeating: 0, count: d)
            for j in 0...t {
                let weight = scores.pointer[j] / total
                let v = layerValues + j * c + h * d
                for k in 0..<d { headOut[k] += weight * v[k] }
            }
        }
    }
}
