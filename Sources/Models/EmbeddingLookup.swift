import Accelerator
import Kernels

extension LinearPrecision {
    /// Looks `batch x seqLength` tokens up in the word embedding at layout offset `words`
    /// (`vocabCount` rows from `vocabStart`) and adds the position rows at `positions` (nil: this
    /// rank adds none), in the weights this precision computes with: the fp32 ones, or the bf16
    /// (fp16) copy, as Megatron's bf16 and fp16 models embed from their low-precision weights.
    /// The caller rounds the sum with the rest of the embedding output.
    func embed(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>, words: Int, positions: Int?,
               params p: FP32Weights, batch: Int, seqLength: Int, channels c: Int, vocabStart: Int, vocabCount: Int) {
        if case .bf16(let operands) = self {
            Embedding.forward(out: out, tokens: tokens, wte: operands.weights + words, wpe: positions.map { operands.weights + $0 },
                              batch: batch, seqLength: seqLength, channels: c, vocabStart: vocabStart, vocabCount: vocabCount)
        } else {
            Embedding.forward(out: out, tokens: tokens, wte: floatWeights(p, at: words), wpe: positions.map { floatWeights(p, at: $0) },
                              batch: batch, seqLength: seqLength, channels: c, vocabStart: vocabStart, vocabCount: vocabCount)
        }
    }

    /// Adds row `rows[i]` of the table at layout offset `table` (`[*, c]`) into embedded row `i`,
    /// for `count` rows, from the weights this precision computes with (as `embed`): BERT's
    /// token types, or the positions of the tokens a decoding step appends.
    func addRows(_ embedded: UnsafeMutablePointer<Float>, rows: UnsafePointer<Int32>, table: Int, params p: FP32Weights,
                 count: Int, channels c: Int) {
        guard case .bf16(let operands) = self else {
            return BERTTokenTypes.forward(embedded, types: rows, table: floatWeights(p, at: table), rows: count, channels: c)
        }
        GPU.hostWillRead()
        withUnsafeTemporaryAllocation(of: Float.self, capacity: c) { row in
            for i in 0..<count {
                BFloat16Conversion.widenSerial(out: row.baseAddress!, inp: operands.weights + table + Int(rows[i]) * c, count: c)
                Residual.addInPlace(embedded + i * c, row.baseAddress!, count: c)
            }
        }
    }

    /// The values at layout offset `offset` in fp32 storage: the fp32 weights, or fp16's copy
    /// (fp16 values held in fp32). bf16 has none.
    private func floatWeights(_ p: FP32Weights, at offset: Int) -> UnsafePointer<Float> {
        switch self {
        case .fp32: p + offset
        case .fp16(let operands): operands.weights + offset
        case .bf16: preconditionFailure("bf16 weights are not held in fp32")
        }
    }
}
