import Kernels
import Parameters

/// Incremental decoding with a key/value cache, of one sequence or several side by side (so the
/// weights are read once for all of them): each `append` runs the new tokens through the model
/// (one per sequence, or a prompt's many at once), each attending over the keys and values cached
/// for its sequence's earlier positions, and returns the next-token logits. Gives the same logits as a full `GPTModel.forward` over the whole sequence
/// (to float rounding) at a cost linear, not quadratic, in the generated length. The transformer
/// layers are the model's own (`TransformerLayer`); only the attention core differs.
///
/// A bf16 model decodes with bf16 GEMMs and a bf16 key/value cache (half the memory; exact, as
/// the QKV output is rounded to bf16 anyway); fp32 and fp16 models keep an fp32 cache.
public final class GPTInference {
    public let model: GPTModel
    /// Sequences decoded side by side (each with its own cache and position).
    public let sequences: Int
    private let keys: KeyValueCache    // [sequences, layers, maxPositions, channels], head h at h * headDim
    private let values: KeyValueCache
    /// One widened cache row (bf16 cache).
    private let row: FloatBuffer
    private let scores: FloatBuffer
    /// The per-row buffers of one forward, grown to the most rows a forward has taken.
    private var rows: RowBuffers
    /// Tokens processed so far by each sequence (its next token's position).
    public private(set) var lengths: [Int]

    /// Tokens processed so far by sequence 0 (the next token's position).
    public var length: Int { lengths[0] }

    /// `model` must hold every weight (no tensor parallelism). `sequences` sequences can be
    /// decoded together: one forward takes tokens of each, reading every weight once.
    public init(model: GPTModel, sequences: Int = 1) {
        precondition(model.tensorParallelSize == 1 && model.part.isWhole, "KV-cached decoding runs on a whole (single-rank) model")
        precondition(sequences >= 1, "decoding needs at least one sequence")
        self.model = model
        self.sequences = sequences
        let c = model.config.hiddenSize, t = model.config.maxPositionEmbeddings
        keys = KeyValueCache(precision: model.precision, count: sequences * model.config.numLayers * t * c)
        values = KeyValueCache(precision: model.precision, count: sequences * model.config.numLayers * t * c)
        row = FloatBuffer(count: c / model.config.numAttentionHeads)
        scores = FloatBuffer(count: t)
        rows = RowBuffers(config: model.config, precision: model.precision, rows: sequences, sequences: sequences)
        lengths = Array(repeating: 0, count: sequences)
    }

    /// Forgets every cached sequence.
    public func reset() { lengths = Array(repeating: 0, count: sequences) }

    /// Forgets sequence `slot`'s cache.
    public func reset(slot: Int) { lengths[slot] = 0 }

    /// The logits after the last appended token (`paddedVocabSize` values; of the first
    /// sequence's row when several sequences were appended).
    public var logits: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: rows.logits.pointer, count: model.config.paddedVocabSize)
    }

    /// Runs `token` at sequence 0's next position and returns the logits for the next token.
    @discardableResult
    public func append(_ token: Int32) throws(GPTInputError) -> UnsafeBufferPointer<Float> {
        try append([token], slots: [0])
        return logits
    }

    /// Runs `tokens[r]` at the next position of sequence `slots[r]`, all in one forward. A slot
    /// may take several rows (a prompt fed at once): its rows take its next positions in order,
    /// each attending to the ones before. Returns the logits `[distinct slots, paddedVocabSize]`
    /// after each distinct slot's last row, in the order the slots first appear.
    @discardableResult
    public func append(_ tokens: [Int32], slots: [Int]) throws(GPTInputError) -> UnsafeBufferPointer<Float> {
        precondition(tokens.count == slots.count && !tokens.isEmpty, "one slot per token")
        let config = model.config
        var positions = [Int](), next = lengths, lastRow = [Int: Int](), order = [Int]()
        for (r, (token, slot)) in zip(tokens, slots).enumerated() {
            guard next[slot] < config.maxPositionEmbeddings else {
                throw .sequenceTooLong(seqLength: next[slot] + 1, maxPositionEmbeddings: config.maxPositionEmbeddings)
            }
            guard token >= 0 && Int(token) < config.paddedVocabSize else {
                throw .tokenOutOfRange(position: next[slot], id: Int(token), vocabSize: config.paddedVocabSize)
            }
            positions.append(next[slot])
            next[slot] += 1
            if lastRow[slot] == nil { order.append(slot) }
            lastRow[slot] = r
        }
        let n = tokens.count, c = config.hiddenSize
        precondition(order.count <= sequences, "more slots than sequences")
        if n > rows.capacity { rows = RowBuffers(config: config, precision: model.precision, rows: n, sequences: sequences) }
        let b = rows
        let p = model.fp32Weights, stage = model.stage
        let mean = b.statistics.pointer, rstd = b.statistics.pointer + n
        guard let embedding = stage.embedding, let positionTable = embedding.positionEmbeddings,
              let finalLN = stage.finalLayerNorm else { preconditionFailure("decoding needs the whole model") }
        let precision = model.linearPrecision(operand: b.operand)
        var x = b.stream.pointer, other = b.stream.pointer + b.capacity * c
        // The rows' tokens in one lookup, then each row's position.
        precision.embed(out: x, tokens: tokens, words: embedding.wordEmbeddings, positions: nil, params: p, batch: 1,
                        seqLength: n, channels: c, vocabStart: embedding.vocabStart, vocabCount: embedding.vocabCount)
        precision.addRows(x, rows: positions.map { Int32($0) }, table: positionTable, params: p, count: n, channels: c)
        precision.roundInPlace(x, count: n * c)
        for (l, layer) in stage.layers.enumerated() {
            let buffers = TransformerLayerBuffers(
                ln1: b.normed.pointer, ln1Mean: mean, ln1Rstd: rstd, qkv: b.qkv.pointer, attention: b.attention.pointer,
                residual2: b.residual.pointer, ln2: b.normed.pointer, ln2Mean: mean, ln2Rstd: rstd, fc: b.hidden.pointer,
                gelu: b.activated.pointer, output: other)
            layer.forward(input: x, buffers: buffers, rows: n, params: p, precision: precision,
                          region: model.region.withoutSequenceParallel) { qkv, out in
                for r in 0..<n {  // in row order: a slot's earlier rows are in its cache before its later ones attend
                    attendToCache(layer: l, slot: slots[r], position: positions[r], qkv: qkv + r * 3 * c, out: out + r * c)
                }
            }
            swap(&x, &other)
        }
        // The head only for each slot's last row (gathered when a slot took several rows).
        let m = order.count
        if m < n {
            for (k, slot) in order.enumerated() { (other + k * c).update(from: x + lastRow[slot]! * c, count: c) }
        }
        LayerNorm.forward(out: b.normed.pointer, mean: mean, rstd: rstd, inp: m < n ? other : x, weight: p + finalLN.weight,
                          bias: p + finalLN.bias, rows: m, channels: c, eps: config.layerNormEpsilon)
        embedding.outputLayer.forward(out: b.logits.pointer, inp: b.normed.pointer, params: p, rows: m, precision: precision,
                                      roundsOutput: false)
        lengths = next
        return UnsafeBufferPointer(start: b.logits.pointer, count: m * config.paddedVocabSize)
    }

    /// Takes the first `count` tokens of sequence `row` of the model's last whole-model forward
    /// (`GPTModel.forward(padded:)`) as sequence `slot`'s cached positions: each layer's keys and
    /// values are copied from the QKV that forward kept, so decoding goes on after them without
    /// reading them again (what the decoder's prefill would compute from the same layers, to
    /// rounding: GEMMs over other row counts sum in another order, which a bf16 result can round
    /// the other way). Returns false, changing nothing, when that forward did not keep every
    /// layer's QKV (recomputation) or does not hold `count` tokens of `row`.
    public func adoptForward(row: Int, count: Int, into slot: Int) -> Bool {
        let config = model.config
        guard let acts = model.activations, acts.forwarded, row < acts.batch, count >= 1, count <= acts.seqLength,
              count <= config.maxPositionEmbeddings, acts.layers.count == config.numLayers,
              acts.layers.allSatisfy({ $0 != nil }) else { return false }
        let c = config.hiddenSize, heads = config.numAttentionHeads, d = c / heads, maxT = config.maxPositionEmbeddings
        for (l, layer) in acts.layers.enumerated() {
            let layer = layer!, layerStart = (slot * config.numLayers + l) * maxT * c
            for t in 0..<count {
                let qkvRow = (row * acts.seqLength + t) * 3 * c, cacheRow = layerStart + t * c
                for h in 0..<heads {  // head h's query, key and value lie at h * 3d in its row
                    if layer.keepsBF16 {
                        let source = layer.bf16QKV.pointer + qkvRow + h * 3 * d
                        keys.write(at: cacheRow + h * d, fromBF16: source + d, count: d)
                        values.write(at: cacheRow + h * d, fromBF16: source + 2 * d, count: d)
                    } else {
                        let source = layer.qkv.pointer + qkvRow + h * 3 * d
                        keys.write(at: cacheRow + h * d, from: source + d, count: d)
                        values.write(at: cacheRow + h * d, from: source + 2 * d, count: d)
                    }
                }
            }
        }
        lengths[slot] = count
        return true
    }

    /// The attention core of one token of sequence `slot` at `position` in layer `layer`:
    /// appends its key and value to the sequence's cache and attends over its positions so far.
    private func attendToCache(layer: Int, slot: Int, position t: Int, qkv: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let config = model.config
        let c = config.hiddenSize, heads = config.numAttentionHeads, d = c / heads
        let maxT = config.maxPositionEmbeddings
        let scale = 1 / Float(d).squareRoot()
        let layerStart = (slot * config.numLayers + layer) * maxT * c
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

/// The buffers of one decoding forward over up to `capacity` rows.
private final class RowBuffers {
    let capacity: Int
    /// The bf16 or fp16 GEMM operand (nil in fp32).
    let operand: LowPrecisionBuffer?
    /// The residual stream: the layer input and output alternate between the two halves.
    let stream: FloatBuffer
    let normed: FloatBuffer, qkv: FloatBuffer, attention: FloatBuffer, residual: FloatBuffer
    let hidden: FloatBuffer, activated: FloatBuffer, statistics: FloatBuffer, logits: FloatBuffer

    /// `sequences`: the most distinct sequences in a forward (rows of logits).
    init(config: GPTConfig, precision: ComputePrecision, rows n: Int, sequences: Int) {
        let c = config.hiddenSize, ffn = config.ffnHiddenSize
        capacity = n
        operand = LowPrecisionBuffer(precision, count: n * max(c, ffn))
        stream = FloatBuffer(count: 2 * n * c)
        normed = FloatBuffer(count: n * c)
        qkv = FloatBuffer(count: n * 3 * c)
        attention = FloatBuffer(count: n * c)
        residual = FloatBuffer(count: n * c)
        hidden = FloatBuffer(count: n * ffn)
        activated = FloatBuffer(count: n * ffn)
        statistics = FloatBuffer(count: 2 * n)
        logits = FloatBuffer(count: min(n, sequences) * config.paddedVocabSize)
    }
}

/// The keys or the values of every layer and position: fp32, or bf16 for a bf16 model.
private enum KeyValueCache {
    case fp32(FloatBuffer)
    case bf16(BFloat16Buffer)

    /// Not zeroed: a position is written before it is read, and untouched positions (most of a
    /// long cache) then take no resident memory.
    init(precision: ComputePrecision, count: Int) {
        self = precision == .bf16 ? .bf16(BFloat16Buffer(count: count, zeroed: false))
            : .fp32(FloatBuffer(count: count, zeroed: false))
    }

    /// Stores `count` values at `offset` (rounded to bf16 in a bf16 cache).
    func write(at offset: Int, from values: UnsafePointer<Float>, count: Int) {
        switch self {
        case .fp32(let buffer): (buffer.pointer + offset).update(from: values, count: count)
        case .bf16(let buffer): BFloat16Conversion.roundSerial(out: buffer.pointer + offset, inp: values, count: count)
        }
    }

    /// Stores `count` bf16 values at `offset` (widened in an fp32 cache).
    func write(at offset: Int, fromBF16 values: UnsafePointer<BFloat16>, count: Int) {
        switch self {
        case .fp32(let buffer): BFloat16Conversion.widenSerial(out: buffer.pointer + offset, inp: values, count: count)
        case .bf16(let buffer): (buffer.pointer + offset).update(from: values, count: count)
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
