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
        switch self {
        case .fp32:
            Embedding.forward(out: out, tokens: tokens, wte: p + words, wpe: positions.map { p + $0 }, batch: batch,
                              seqLength: seqLength, channels: c, vocabStart: vocabStart, vocabCount: vocabCount)
        case .bf16(let operands):
            Embedding.forward(out: out, tokens: tokens, wte: operands.weights + words, wpe: positions.map { operands.weights + $0 },
                              batch: batch, seqLength: seqLength, channels: c, vocabStart: vocabStart, vocabCount: vocabCount)
        case .fp16(let operands):
            Embedding.forward(out: out, tokens: tokens, wte: operands.weights + words, wpe: positions.map { operands.weights + $0 },
                              batch: batch, seqLength: seqLength, channels: c, vocabStart: vocabStart, vocabCount: vocabCount)
        }
    }

    /// Adds row `rows[i]` of the table at layout offset `table` (`[*, c]`) into embedded row `i`,
    /// for `count` rows, from the weights this precision computes with (as `embed`): BERT's
    /// token types, or the positions of the tokens a decoding step appends.
    func addRows(_ embedded: UnsafeMutablePointer<Float>, rows: UnsafePointer<Int32>, table: Int, params p: FP32Weights,
                 count: Int, channels c: Int) {
        switch self {
        case .fp32:
            BERTTokenTypes.forward(embedded, types: rows, table: p + table, rows: count, channels: c)
        case .bf16(let operands):
            GPU.hostWillRead()
            var row = [Float](repeating: 0, count: c)
            for i in 0..<count {
                BFloat16Conversion.widenSerial(out: &row, inp: operands.weights + table + Int(rows[i]) * c, count: c)
                Residual.addInPlace(embedded + i * c, row, count: c)
            }
        case .fp16(let operands):
            BERTTokenTypes.forward(embedded, types: rows, table: operands.weights + table, rows: count, channels: c)
        }
    }
}
