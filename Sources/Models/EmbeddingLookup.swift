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

    /// Adds BERT's token-type rows (`[types, c]` at layout offset `table`) into `rows` embedded
    /// rows, from the weights this precision computes with (as `embed`).
    func addTokenTypes(_ embedded: UnsafeMutablePointer<Float>, types: UnsafePointer<Int32>, table: Int, typeCount: Int,
                       params p: FP32Weights, rows: Int, channels c: Int) {
        switch self {
        case .fp32:
            BERTTokenTypes.forward(embedded, types: types, table: p + table, rows: rows, channels: c)
        case .bf16(let operands):
            GPU.hostWillRead()
            var widened = [Float](repeating: 0, count: typeCount * c)
            BFloat16Conversion.widenSerial(out: &widened, inp: operands.weights + table, count: typeCount * c)
            BERTTokenTypes.forward(embedded, types: types, table: widened, rows: rows, channels: c)
        case .fp16(let operands):
            BERTTokenTypes.forward(embedded, types: types, table: operands.weights + table, rows: rows, channels: c)
        }
    }
}
