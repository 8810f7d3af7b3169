import Kernels
import Parameters
import Testing

/// The lookup from bf16 tables gives exactly the fp32 lookup of the widened tables: whole
/// vocabulary or a tensor-parallel rank's range (tokens outside it: the position row or zeros),
/// with and without positions, at widths that do and do not fill the 16-lane vectors.
@Suite struct EmbeddingBF16Tests {
    @Test(arguments: [(48, 0, 23, true), (40, 0, 23, true), (40, 9, 7, true), (40, 9, 7, false), (33, 0, 23, false)])
    func bf16TablesLookUpTheirWidenedValues(channels c: Int, vocabStart: Int, vocabCount: Int, positions: Bool) {
        let batch = 3, seqLength = 5, n = batch * seqLength
        var random = RandomGenerator(seed: 11)
        var words = [Float](repeating: 0, count: vocabCount * c), table = [Float](repeating: 0, count: seqLength * c)
        random.fillNormal(&words, count: words.count, std: 1)
        random.fillNormal(&table, count: table.count, std: 1)
        let tokens = (0..<n).map { _ in Int32(random.next() % 23) }
        let wordsBF16 = words.map(BFloat16.init), tableBF16 = table.map(BFloat16.init)
        let widenedWords = wordsBF16.map(\.float), widenedTable = tableBF16.map(\.float)
        var expected = [Float](repeating: .nan, count: n * c), out = [Float](repeating: .nan, count: n * c)
        Embedding.forward(out: &expected, tokens: tokens, wte: widenedWords, wpe: positions ? widenedTable : nil, batch: batch,
                          seqLength: seqLength, channels: c, vocabStart: vocabStart, vocabCount: vocabCount)
        tableBF16.withUnsafeBufferPointer { positionRows in
            Embedding.forward(out: &out, tokens: tokens, wte: wordsBF16, wpe: positions ? positionRows.baseAddress : nil,
                              batch: batch, seqLength: seqLength, channels: c, vocabStart: vocabStart, vocabCount: vocabCount)
        }
        #expect(zip(out, expected).allSatisfy { $0.bitPattern == $1.bitPattern })
        // The rows really came from the bf16 values: the fp32 tables' sums differ somewhere.
        var unrounded = [Float](repeating: 0, count: n * c)
        Embedding.forward(out: &unrounded, tokens: tokens, wte: words, wpe: positions ? table : nil, batch: batch,
                          seqLength: seqLength, channels: c, vocabStart: vocabStart, vocabCount: vocabCount)
        #expect(zip(out, unrounded).contains { $0 != $1 })
    }
}
