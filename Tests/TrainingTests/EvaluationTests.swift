#if canImport(Glibc)
import Glibc
#endif
import Models
import Parameters
import Testing
@testable import Training

@Suite struct EvaluationTests {
    @Test func textWindowsScoreEveryTokenOnce() throws {
        let config = GPTConfig(numLayers: 1, hiddenSize: 32, numAttentionHeads: 2, maxPositionEmbeddings: 64, vocabSize: 100)
        let model = try GPTModel(config: config, seed: 3)
        var random = RandomGenerator(seed: 5)
        let tokens = (0..<50).map { _ in Int32(random.next() % 100) }
        // One window covering everything equals a single forward pass.
        let whole = try Evaluation.text(model: model, tokens: tokens, sequenceLength: 64, words: 10)
        let single = try model.forward(tokens: Array(tokens.dropLast()), targets: Array(tokens.dropFirst()),
                                       batch: 1, seqLength: 49)
        #expect(whole.tokens == 49 && abs(whole.loss - single.mean) < 1e-9)
        // Windows of 16 (+1) tokens overlapping by one: 16 + 16 + 16 + 1 predictions, summed.
        let windowed = try Evaluation.text(model: model, tokens: tokens, sequenceLength: 16, words: 10)
        var sum = 0.0
        for start in stride(from: 0, to: 49, by: 16) {
            let end = min(start + 16, 49)
            sum += try model.forward(tokens: Array(tokens[start..<end]), targets: Array(tokens[(start + 1)...end]),
                                     batch: 1, seqLength: end - start).weightedLoss
        }
        #expect(windowed.tokens == 49 && abs(windowed.loss - sum / 49) < 1e-9)
        #expect(abs(windowed.wordPerplexity! - exp(windowed.loss * 49 / 9)) < 1e-6 * windowed.wordPerplexity!)
        #expect(Evaluation.wordCount("  The quick  fox. \n") == 4)  // "The", "quick", "", "fox."
    }
}
