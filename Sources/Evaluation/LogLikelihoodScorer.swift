#if canImport(Glibc)
import Glibc
#endif
import Kernels
import Models

/// The log-likelihood of a continuation after a context, both as token ids: what
/// lm-evaluation-harness's `loglikelihood` request asks of a model.
public struct LogLikelihoodRequest: Sendable, Equatable {
    public var context: [Int32]
    public var continuation: [Int32]

    public init(context: [Int32], continuation: [Int32]) {
        self.context = context
        self.continuation = continuation
    }
}

/// The answer to a `LogLikelihoodRequest`.
public struct LogLikelihoodResult: Sendable, Equatable {
    /// Sum of the continuation tokens' log-probabilities (natural log).
    public var logLikelihood: Double
    /// Whether every continuation token is the model's most likely next token.
    public var isGreedy: Bool
}

/// Scores log-likelihood requests with a whole (single-rank) model as lm-evaluation-harness's
/// `hf` model does: the model reads the last `maxPositionEmbeddings + 1` tokens of context and
/// continuation less the final one, and the continuation's tokens are scored from the logits at
/// the positions before them (log-softmax over the vocabulary the model predicts: the true
/// vocabulary for an imported Hugging Face model, the padded one for a Megatron-trained model).
///
/// Requests are scored in batches of up to `batchSize` padded on the right to a common length
/// (causal attention: padding after a sequence changes nothing before it), longest first, so that
/// a batch wastes little padding; results come back in request order.
public struct LogLikelihoodScorer {
    public let model: GPTModel
    /// Requests per forward.
    public let batchSize: Int
    /// At most this many tokens (batch x length) per forward, bounding the logits buffer.
    public let maxTokensPerForward: Int

    public init(model: GPTModel, batchSize: Int = 8, maxTokensPerForward: Int = 8192) {
        precondition(model.part.isWhole && model.tensorParallelSize == 1, "scoring runs a whole single-rank model")
        self.model = model
        self.batchSize = max(1, batchSize)
        self.maxTokensPerForward = max(1, maxTokensPerForward)
    }

    /// Results in the order of `requests`; `progress(done)` after every batch.
    public func score(_ requests: [LogLikelihoodRequest], progress: ((Int) -> Void)? = nil)
        throws(GPTInputError) -> [LogLikelihoodResult] {
        let windows = requests.map(window)
        let order = windows.indices.sorted { windows[$0].tokens.count > windows[$1].tokens.count }
        var results = [LogLikelihoodResult?](repeating: nil, count: requests.count)
        var start = 0
        while start < order.count {
            let length = windows[order[start]].tokens.count
            let count = min(batchSize, max(1, maxTokensPerForward / max(length, 1)), order.count - start)
            let batch = Array(order[start..<(start + count)])
            let scored = try scoreBatch(batch.map { windows[$0] })
            for (index, result) in zip(batch, scored) { results[index] = result }
            start += count
            progress?(start)
        }
        return results.map { $0! }
    }

    /// What the model reads for a request and where its continuation is scored.
    struct Window {
        var tokens: [Int32]
        /// The continuation tokens, predicted at positions `tokens.count - continuation.count ..< tokens.count`.
        var continuation: [Int32]
    }

    func window(_ request: LogLikelihoodRequest) -> Window {
        let whole = request.context + request.continuation
        let limit = model.config.maxPositionEmbeddings + 1
        let kept = whole.suffix(limit).dropLast()
        let continuation = Array(request.continuation.suffix(kept.count))
        return Window(tokens: Array(kept), continuation: continuation)
    }

    private func scoreBatch(_ windows: [Window]) throws(GPTInputError) -> [LogLikelihoodResult] {
        let length = try model.forward(padded: windows.map(\.tokens))
        let vocab = model.config.paddedVocabSize
        let columns = model.config.maskPaddedVocabulary ? model.config.vocabSize : vocab
        let logits = UnsafePointer(model.logits)
        return windows.enumerated().map { b, window in
            let first = window.tokens.count - window.continuation.count
            var sum = 0.0, greedy = true
            for (k, target) in window.continuation.enumerated() {
                let row = logits + (b * length + first + k) * vocab
                let (logSoftmax, argmax) = Self.logSoftmax(row: row, columns: columns, at: Int(target))
                sum += logSoftmax
                greedy = greedy && argmax == Int(target)
            }
            return LogLikelihoodResult(logLikelihood: sum, isGreedy: greedy)
        }
    }

    /// `log_softmax(row)[target]` (in Float64, as the reference computes it in fp32 and we sum in
    /// Float64) and the row's first maximum.
    static func logSoftmax(row: UnsafePointer<Float>, columns: Int, at target: Int) -> (Double, Int) {
        var maximum = row[0], argmax = 0
        for j in 1..<columns where row[j] > maximum {
            maximum = row[j]
            argmax = j
        }
        var sum = 0.0
        let m = Double(maximum)
        for j in 0..<columns { sum += exp(Double(row[j]) - m) }
        return (Double(row[target]) - m - log(sum), argmax)
    }
}
