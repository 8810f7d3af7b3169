#if canImport(Glibc)
import Glibc
#endif
import Datasets
import Models

/// Loss and perplexity of a model on data, as `megatron evaluate` reports them.
public struct EvaluationResult: Sendable, Equatable {
    /// Tokens whose prediction was scored.
    public var tokens: Int
    /// Mean negative log-likelihood per scored token (nats).
    public var loss: Double
    /// `exp(loss)`.
    public var perplexity: Double { exp(min(loss, 700)) }
    /// WikiText-style word-level perplexity, `exp(loss * (tokens - 1) / (words - 1))` over the
    /// text's tokens and space-separated words (nil for datasets).
    public var wordPerplexity: Double?
}

public enum Evaluation {
    /// Scores a text tokenized as one document: consecutive windows of `windowTokens` = seq + 1
    /// tokens overlapping by one (the last may be shorter), so every token after the first is
    /// predicted once; the loss is the mean over all of them.
    public static func text(model: GPTModel, tokens: [Int32], sequenceLength: Int, words: Int) throws -> EvaluationResult {
        guard tokens.count >= 2 else { throw TrainingError.data("the text has fewer than two tokens") }
        var sum = 0.0
        var scored = 0
        var start = 0
        while start < tokens.count - 1 {
            let end = min(start + sequenceLength, tokens.count - 1)
            let inputs = Array(tokens[start..<end])
            let targets = Array(tokens[(start + 1)...end])
            let totals = try inputs.withUnsafeBufferPointer { x in
                try targets.withUnsafeBufferPointer { y in
                    try model.forward(tokens: x.baseAddress!, targets: y.baseAddress!, batch: 1, seqLength: inputs.count)
                }
            }
            sum += totals.weightedLoss
            scored += inputs.count
            start = end
        }
        let loss = sum / Double(scored)
        let ratio = Double(tokens.count - 1) / Double(max(words - 1, 1))
        return EvaluationResult(tokens: scored, loss: loss, wordPerplexity: exp(min(loss * ratio, 700)))
    }

    /// Words as WikiText evaluations count them: the stripped text split on single spaces.
    public static func wordCount(_ text: String) -> Int {
        let trimmed = text.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed()
        return String(trimmed).split(separator: " ", omittingEmptySubsequences: false).count
    }

    /// Mean loss over the samples of `source` (all of them, or the first `maxSamples`), in
    /// micro-batches of `microBatchSize`; each scored token counts equally.
    public static func dataset(model: GPTModel, source: GPTSampleSource, microBatchSize: Int,
                               maxSamples: Int? = nil) throws -> EvaluationResult {
        let count = min(source.count, maxSamples ?? source.count) / microBatchSize * microBatchSize
        guard count > 0 else { throw TrainingError.data("the dataset has fewer samples than one micro-batch") }
        var loader = MicroBatchLoader(source: source, microBatchSize: microBatchSize)
        var sum = 0.0, weight = 0.0
        while loader.consumedSamples < count, let batch = loader.next() {
            let totals = try model.forward(batch)
            sum += totals.weightedLoss
            weight += totals.weight
        }
        return EvaluationResult(tokens: Int(weight), loss: sum / max(weight, 1), wordPerplexity: nil)
    }
}
