import Datasets
import FileSupport

/// The strings lm-evaluation-harness scores for one document: pairs of context and continuation.
public struct TaskPrompt: Sendable, Equatable {
    public var contexts: [String]
    public var continuations: [String]
}

/// lm-evaluation-harness's prompt construction for a task (`fewshot_context` and
/// `construct_requests`, plain text, no chat template): each of `numFewShot` examples drawn by
/// Python's `random.Random(seed).sample` from the few-shot pool, in the order documents are
/// evaluated, as `text + " " + answer + "\n\n"`, then the document's text; multiple choice scores
/// `" " + choice` after it, a last-word task its target, a multiple-input task `" " + target`
/// after each choice's text. With `excludesEvaluated` (lm-eval's few-shot split named and equal
/// to the evaluated one) the evaluated document is left out of its own examples as lm-eval does:
/// one more is drawn and documents equal to it removed. Without it (lm-eval's default when a task
/// has only a test split) a document may be drawn as its own example.
public struct TaskPromptBuilder {
    public let task: EvaluationTask
    let pool: [(document: JSONValue, formatted: FormattedDocument)]
    let numFewShot: Int
    let excludesEvaluated: Bool
    var random: PythonRandom

    /// `fewShotPool` holds the pool's documents (empty for zero-shot); `excludesEvaluated` says
    /// the pool is the evaluated file and a document must not be its own example.
    public init(task: EvaluationTask, fewShotPool: [JSONValue], numFewShot: Int, seed: Int,
                excludesEvaluated: Bool = false) throws(TaskError) {
        self.task = task
        guard task.kind != .rollingLogLikelihood || numFewShot == 0 else { throw .noFewShotForRollingTask(task.name) }
        var pool = [(document: JSONValue, formatted: FormattedDocument)]()
        if numFewShot > 0 {
            for (index, document) in fewShotPool.enumerated() {
                pool.append((document, try task.format(document, line: index + 1)))
            }
            let available = pool.count - (excludesEvaluated ? 1 : 0)
            guard numFewShot <= available else { throw .notEnoughFewShotExamples(wanted: numFewShot, available: available) }
        }
        self.pool = pool
        self.numFewShot = numFewShot
        self.excludesEvaluated = excludesEvaluated
        random = PythonRandom(seed: seed)
    }

    /// The prompt of `document` (formatted as `formatted`); draws its few-shot examples, so call
    /// it for the documents in their evaluation order.
    public mutating func prompt(for document: JSONValue, formatted: FormattedDocument) -> TaskPrompt {
        let prefix = examples(excluding: document).map { example in
            example.texts[task.kind == .multipleInput ? example.gold : 0] + " " + answer(example) + "\n\n"
        }.joined()
        switch task.kind {
        case .loglikelihood:
            return TaskPrompt(contexts: [prefix + formatted.texts[0]], continuations: [formatted.target])
        case .multipleChoice:
            let context = prefix + formatted.texts[0]
            return TaskPrompt(contexts: Array(repeating: context, count: formatted.choices.count),
                              continuations: formatted.choices.map { " " + $0 })
        case .multipleInput:
            return TaskPrompt(contexts: formatted.texts.map { prefix + $0 },
                              continuations: Array(repeating: " " + formatted.target, count: formatted.texts.count))
        case .rollingLogLikelihood:
            return TaskPrompt(contexts: [""], continuations: [formatted.target])
        }
    }

    /// A few-shot example's answer as lm-eval writes it after the delimiter.
    private func answer(_ example: FormattedDocument) -> String {
        task.kind == .multipleChoice ? example.choices[example.gold] : example.target
    }

    /// lm-eval's `ContextSampler.sample`.
    private mutating func examples(excluding document: JSONValue) -> [FormattedDocument] {
        guard numFewShot > 0 else { return [] }
        let indices = Array(pool.indices)
        guard excludesEvaluated else { return random.sample(indices, count: numFewShot).map { pool[$0].formatted } }
        var drawn = random.sample(indices, count: numFewShot + 1).filter { pool[$0].document != document }
        drawn = Array(drawn.prefix(numFewShot))
        if drawn.count < numFewShot {
            drawn = random.sample(indices.filter { pool[$0].document != document }, count: numFewShot)
        }
        return drawn.map { pool[$0].formatted }
    }
}

/// lm-evaluation-harness's `hf` model's tokenization of a request (`_encode_pair`): trailing
/// whitespace of the context moves to the front of the continuation, the continuation's tokens are
/// those of context + continuation after the context's, and an empty context is the
/// end-of-text token.
public struct RequestTokenizer {
    let encode: (String) -> [Int32]
    let endOfText: Int32

    public init(endOfText: Int32, encode: @escaping (String) -> [Int32]) {
        self.encode = encode
        self.endOfText = endOfText
    }

    public func request(context: String, continuation: String) -> LogLikelihoodRequest {
        if context.isEmpty { return LogLikelihoodRequest(context: [endOfText], continuation: encode(continuation)) }
        let trimmed = PythonText.rstrip(context)
        let moved = String(context.unicodeScalars.dropFirst(trimmed.unicodeScalars.count))
        let whole = encode(trimmed + moved + continuation)
        let contextTokens = encode(trimmed)
        return LogLikelihoodRequest(context: contextTokens, continuation: Array(whole.dropFirst(contextTokens.count)))
    }

    /// lm-eval's `loglikelihood_rolling` requests for `text` (`get_rolling_token_windows` with a
    /// context of one token, made disjoint): the text's tokens in consecutive windows of
    /// `maxLength`, the first after the end-of-text token, each later one after the token before
    /// it; the last window, if short, reads back as far as a whole window would. Every token is
    /// scored exactly once; an empty text makes no request.
    public func rollingRequests(_ text: String, maxLength: Int) -> [LogLikelihoodRequest] {
        let tokens = encode(text)
        guard !tokens.isEmpty else { return [] }
        let first = min(maxLength, tokens.count)
        var requests = [LogLikelihoodRequest(context: [endOfText], continuation: Array(tokens[..<first]))]
        var predicted = first
        while predicted < tokens.count {
            let count = min(tokens.count - predicted, maxLength)
            let end = predicted + count
            // The window reads tokens[end - maxLength - 1 ..< end - 1]; all but its last
            // count - 1 tokens are the context.
            let readStart = max(end - maxLength - 1, 0)
            requests.append(LogLikelihoodRequest(context: Array(tokens[readStart..<(end - count)]),
                                                 continuation: Array(tokens[(end - count)..<end])))
            predicted = end
        }
        return requests
    }
}
