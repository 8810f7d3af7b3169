#if canImport(Glibc)
import Glibc
#endif
import FileSupport
import Models

/// One evaluated document: its prompt, each pair's log-likelihood and greedy flag, and the
/// predictions (`--output-file` writes one per line).
public struct ExampleOutcome: Sendable {
    public var index: Int
    public var prompt: TaskPrompt
    public var results: [LogLikelihoodResult]
    /// The gold index (multiple choice and multiple input).
    public var gold: Int
    /// argmax of the log-likelihoods, and of them divided by each choice's length in characters.
    public var prediction: Int
    public var normalizedPrediction: Int
    /// A rolling task's document length in words and UTF-8 bytes (0 otherwise).
    public var words = 0
    public var bytes = 0

    /// The example as a JSON line.
    public var json: JSONValue {
        var fields: [(key: String, value: JSONValue)] = [
            ("index", .number(Double(index))),
            ("contexts", .array(prompt.contexts.map { .string($0) })),
            ("continuations", .array(prompt.continuations.map { .string($0) })),
            ("loglikelihoods", .array(results.map { .number($0.logLikelihood) })),
            ("is_greedy", .array(results.map { .bool($0.isGreedy) })),
            ("gold", .number(Double(gold))), ("prediction", .number(Double(prediction))),
            ("prediction_norm", .number(Double(normalizedPrediction))),
        ]
        if words > 0 || bytes > 0 { fields += [("words", .number(Double(words))), ("bytes", .number(Double(bytes)))] }
        return .object(fields)
    }
}

/// A task's score: lm-eval's metrics with their standard errors.
public struct TaskScore: Sendable {
    public var task: String
    public var numFewShot: Int
    public var examples: [ExampleOutcome]
    /// `acc` and, for multiple choice, `acc_norm`; for a last-word task `acc` and `perplexity`.
    public var metrics: [(name: String, value: Double, standardError: Double?)]

    public var json: JSONValue {
        var fields: [(key: String, value: JSONValue)] = [("task", .string(task)), ("num_fewshot", .number(Double(numFewShot))),
                                                          ("examples", .number(Double(examples.count)))]
        for metric in metrics {
            fields.append((metric.name, .number(metric.value)))
            if let error = metric.standardError { fields.append((metric.name + "_stderr", .number(error))) }
        }
        return .object(fields)
    }
}

/// `megatron evaluate --task`: builds every document's prompt, scores all requests in batches,
/// and aggregates as lm-evaluation-harness does.
public struct TaskEvaluation {
    public var builder: TaskPromptBuilder
    public let tokenizer: RequestTokenizer
    public let scorer: LogLikelihoodScorer

    public init(builder: TaskPromptBuilder, tokenizer: RequestTokenizer, scorer: LogLikelihoodScorer) {
        self.builder = builder
        self.tokenizer = tokenizer
        self.scorer = scorer
    }

    /// Scores `documents` (the first `limit` of them when given); `progress(done, total)` counts
    /// requests.
    public mutating func run(_ documents: [JSONValue], limit: Int? = nil,
                             progress: ((Int, Int) -> Void)? = nil) throws -> TaskScore {
        let task = builder.task
        let chosen = Array(documents.prefix(limit ?? documents.count))
        var prompts = [(prompt: TaskPrompt, formatted: FormattedDocument)]()
        for (index, document) in chosen.enumerated() {
            let formatted = try task.format(document, line: index + 1)
            prompts.append((builder.prompt(for: document, formatted: formatted), formatted))
        }
        // Each context/continuation pair is one request, or a rolling task's document one per window.
        let maxLength = scorer.model.config.maxPositionEmbeddings
        let pairs = prompts.flatMap { entry in
            zip(entry.prompt.contexts, entry.prompt.continuations).map { context, continuation in
                task.kind == .rollingLogLikelihood ? tokenizer.rollingRequests(continuation, maxLength: maxLength)
                    : [tokenizer.request(context: context, continuation: continuation)]
            }
        }
        let requests = pairs.flatMap { $0 }
        let scored = try scorer.score(requests) { progress?($0, requests.count) }
        var results = [LogLikelihoodResult](), next = 0
        for pair in pairs {
            let parts = scored[next..<(next + pair.count)]
            next += pair.count
            results.append(LogLikelihoodResult(logLikelihood: parts.reduce(0) { $0 + $1.logLikelihood },
                                               isGreedy: parts.allSatisfy(\.isGreedy)))
        }
        var examples = [ExampleOutcome](), offset = 0
        for (index, entry) in prompts.enumerated() {
            let count = entry.prompt.contexts.count
            let scored = Array(results[offset..<(offset + count)])
            offset += count
            let lengths = entry.formatted.choices.map { Double($0.unicodeScalars.count) }
            let normalized = entry.formatted.choices.isEmpty ? [] : zip(scored, lengths).map { $0.logLikelihood / $1 }
            examples.append(ExampleOutcome(index: index, prompt: entry.prompt, results: scored, gold: entry.formatted.gold,
                                           prediction: Self.argmax(scored.map(\.logLikelihood)),
                                           normalizedPrediction: Self.argmax(normalized),
                                           words: entry.formatted.words, bytes: entry.formatted.bytes))
        }
        return TaskScore(task: task.name, numFewShot: builder.numFewShot, examples: examples,
                         metrics: Self.metrics(examples, kind: task.kind))
    }

    /// numpy's `argmax`: the first maximum (0 for an empty list).
    static func argmax(_ values: [Double]) -> Int {
        values.indices.max { values[$0] < values[$1] || (values[$0] == values[$1] && $0 > $1) } ?? 0
    }

    static func metrics(_ examples: [ExampleOutcome], kind: EvaluationTask.Kind)
        -> [(name: String, value: Double, standardError: Double?)] {
        switch kind {
        case .loglikelihood:
            let accuracy = examples.map { $0.results[0].isGreedy ? 1.0 : 0 }
            let meanLogLikelihood = examples.reduce(0) { $0 + $1.results[0].logLikelihood } / Double(max(examples.count, 1))
            return [("acc", mean(accuracy), standardError(accuracy)), ("perplexity", exp(-meanLogLikelihood), nil)]
        case .multipleChoice, .multipleInput:
            let accuracy = examples.map { $0.prediction == $0.gold ? 1.0 : 0 }
            let normalized = examples.map { $0.normalizedPrediction == $0.gold ? 1.0 : 0 }
            return [("acc", mean(accuracy), standardError(accuracy)), ("acc_norm", mean(normalized), standardError(normalized))]
        case .rollingLogLikelihood:
            // lm-eval's weighted_perplexity and bits_per_byte: sums over documents, then divided.
            let logLikelihood = examples.reduce(0) { $0 + $1.results[0].logLikelihood }
            let words = Double(examples.reduce(0) { $0 + $1.words }), bytes = Double(examples.reduce(0) { $0 + $1.bytes })
            return [("word_perplexity", exp(-logLikelihood / words), nil), ("byte_perplexity", exp(-logLikelihood / bytes), nil),
                    ("bits_per_byte", -logLikelihood / bytes / log(2), nil)]
        }
    }

    static func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(max(values.count, 1)) }

    /// lm-eval's `mean_stderr`: the sample standard deviation over sqrt(n).
    static func standardError(_ values: [Double]) -> Double? {
        guard values.count > 1 else { return nil }
        let mu = mean(values)
        let variance = values.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(values.count - 1)
        return (variance / Double(values.count)).squareRoot()
    }
}
