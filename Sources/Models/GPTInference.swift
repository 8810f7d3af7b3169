import Kernels
import Parameters

/// Incremental decoding with a key/value cache: each `append` runs one new token through the
/// model, attending over the keys and values cached for the earlier positions, and returns the
/// next-token logits. Gives the same logits as a full `GPTModel.forward` over the whole sequence
/// (to float rounding) at a cost linear, not quadratic, in the generated length. The transformer
/// layers are the model's own (`TransformerLayer`); only the attention core differs.
///
/// A bf16 model decodes with bf16 GEMMs and a bf16 key/value cache (half the memory; exact, as
/// the QKV output is rounded to bf16 anyway); fp32 and fp16 models keep an fp32 cache.
public final class GPTInference {
    public let model: GPTModel
    private let keys: KeyValueCache    // [layers, maxPositions, channels], head h at h * headDim
    private let values: KeyValueCache
    /// The bf16 or fp16 GEMM operand (nil in fp32).
    private let operand: LowPrecisionBuffer?
    /// One widened cache row (bf16 cache).
    private let row: FloatBuffer
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
        keys = KeyValueCache(precision: model.precision, count: model.config.numLayers * t * c)
        values = KeyValueCache(precision: model.precision, count: model.config.numLayers * t * c)
        operand = LowPrecisionBuffer(model.precision, count: max(c, model.config.ffnHiddenSize))
        row = FloatBuffer(count: c / model.config.numAttentionHeads)
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
        let precision = model.linearPrecision(operand: operand)
        var x = stream.pointer, next = stream.pointer + c
        var position: Int32 = token
        Embedding.forward(out: x, tokens: &position, wte: p + embedding.wordEmbeddings,
                          wpe: p + positions + length * c, batch: 1, seqLength: 1, channels: c)
        precision.roundInPlace(x, count: c)
        for (l, layer) in stage.layers.enumerated() {
            let buffers = TransformerLayerBuffers(
                ln1: normed.pointer, ln1Mean: mean, ln1Rstd: rstd, qkv: qkv.pointer, attention: attention.pointer,
                residual2: residual.pointer, ln2: normed.pointer, ln2Mean: mean, ln2Rstd: rstd, fc: hidden.pointer,
                gelu: activated.pointer, output: next)
            layer.forward(input: x, buffers: buffers, rows: 1, params: p, precision: precision,
                          region: model.region.withoutSequenceParallel) { qkv, out in
                attendToCache(layer: l, qkv: qkv, out: out)
            }
            swap(&x, &next)
        }
        LayerNorm.forward(out: normed.pointer, mean: mean, rstd: rstd, inp: x, weight: p + finalLN.weight,
                          bias: p + finalLN.bias, rows: 1, channels: c, eps: config.layerNormEpsilon)
        embedding.outputLayer.forward(out: logitsBuffer.pointer, inp: normed.pointer, params: p, rows: 1, precision: precision,
                                      roundsOutput: false)
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
        let layerStart = layer * maxT * c
        for h in 0..<heads {
            let q = qkv + h * 3 * d
            keys.write(at: layerStart + t * c + h * d, from: q + d, count: d)
            values.write(at: layerStart + t * c + h * d, from: q + 2 * d, count: d)
            var largest = -Float.infinity
            for j in 0...t {
                let score = vectorDot(q, keys.read(at: layerStart + j * c + h * d, count: d, into: row.pointer), d) * scale
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
                let v = values.read(at: layerStart + j * c + h * d, count: d, into: row.pointer)
                for k in 0..<d { headOut[k] += weight * v[k] }
            }
        }
    }
}

/// The keys or the values of every layer and position: fp32, or bf16 for a bf16 model.
private enum KeyValueCache {
    case fp32(FloatBuffer)
    case bf16(BFloat16Buffer)

    init(precision: ComputePrecision, count: Int) {
        self = precision == .bf16 ? .bf16(BFloat16Buffer(count: count)) : .fp32(FloatBuffer(count: count))
    }

    /// Stores `count` values at `offset` (rounded to bf16 in a bf16 cache).
    func write(at offset: Int, from values: UnsafePointer<Float>, count: Int) {
        switch self {
        case .fp32(let buffer): (buffer.pointer + offset).update(from: values, count: count)
        case .bf16(let buffer): BFloat16Conversion.roundSerial(out: buffer.pointer + offset, inp: values, count: count)
        }
    }

    /// The `count` values at `offset`: in place (fp32), or widened into `scratch` (bf16).
    func read(at offset: Int, count: Int, into scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        switch self {
        case .fp32(let buffer): return UnsafePointer(buffer.pointer + offset)
        case .bf16(let buffer):
            BFloat16Conversion.widenSerial(out: scratch, inp: buffer.pointer + offset, count: count)
            return UnsafePointer(scratch)
        }
    }
}
