#if canImport(Glibc)
import Glibc
#endif
import Kernels
import Models
import Parameters
import Tokenizer

/// What a client asks of one prompt, in either API.
public struct CompletionRequest: Sendable, Equatable {
    public var prompt: [Int32]
    /// Tokens to generate (0: score the prompt only).
    public var maxTokens: Int
    public var sampling: SamplingOptions
    public var seed: UInt64
    /// Alternatives to report at each position (0: only the chosen token's log-probability),
    /// nil: no log-probabilities.
    public var logprobs: Int?
    /// Whether the prompt's tokens (and their log-probabilities) come back too.
    public var echo: Bool
    /// Generation stops before the first of these strings (OpenAI's `stop`) ...
    public var stop: [String]
    /// ... or after this token (the end-of-text token), which is not returned.
    public var stopToken: Int32?

    public init(prompt: [Int32], maxTokens: Int, sampling: SamplingOptions = SamplingOptions(temperature: 0), seed: UInt64 = 0,
                logprobs: Int? = nil, echo: Bool = false, stop: [String] = [], stopToken: Int32? = nil) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.seed = seed
        self.logprobs = logprobs
        self.echo = echo
        self.stop = stop
        self.stopToken = stopToken
    }
}

/// One token with its log-probability and the most likely alternatives at its position.
public struct ScoredToken: Sendable, Equatable {
    public var id: Int32
    /// nil for the first prompt token (nothing predicts it).
    public var logprob: Double?
    /// The `logprobs` most likely tokens at this position, most likely first.
    public var top: [(id: Int32, logprob: Double)]

    public static func == (a: ScoredToken, b: ScoredToken) -> Bool {
        a.id == b.id && a.logprob == b.logprob && a.top.map(\.id) == b.top.map(\.id) && a.top.map(\.logprob) == b.top.map(\.logprob)
    }
}

/// What the model made of one prompt.
public struct Completion: Sendable, Equatable {
    /// The prompt's tokens (scored when log-probabilities were asked for and `echo` is set).
    public var prompt: [ScoredToken]
    public var generated: [ScoredToken]
    /// The generated text (up to a stop string, which is not included).
    public var text: String
    /// "stop" (a stop string or the end-of-text token) or "length".
    public var finishReason: String
}

/// Runs completions on one whole (single-rank) model: the prompt through a full forward when its
/// log-probabilities are asked for (one batched pass, whose last position also gives the first
/// generated token), then key/value-cached decoding (`GPTInference`). Not thread-safe: the
/// server confines it to one worker (`InferenceQueue`).
public final class CompletionEngine {
    public let model: GPTModel
    public let tokenizer: Tokenizer
    private let inference: GPTInference
    /// The decoder of several sequences (`completeTogether`), made on first use.
    private var batched: GPTInference?
    /// The most prompts decoded together so far.
    public internal(set) var largestBatch = 0
    /// The ids a completion may produce: the tokenizer's.
    public var vocabularySize: Int { tokenizer.vocabularySize }

    public init(model: GPTModel, tokenizer: Tokenizer) {
        self.model = model
        self.tokenizer = tokenizer
        inference = GPTInference(model: model)
    }

    /// A decoder of at least `count` sequences (kept for the next batch).
    func batchInference(for count: Int) -> GPTInference {
        if let batched, batched.sequences >= count { return batched }
        let made = GPTInference(model: model, sequences: max(count, Self.maxBatch))
        batched = made
        return made
    }

    /// Longest prompt the model reads.
    public var maxPromptTokens: Int { model.config.maxPositionEmbeddings }

    /// Completes `request`; `onText` receives the generated text as it grows (each call the
    /// characters added since the last; a stop string is never sent).
    public func complete(_ request: CompletionRequest, onText: ((String) -> Void)? = nil) throws -> Completion {
        precondition(!request.prompt.isEmpty, "an empty prompt reaches the engine")
        var random = RandomGenerator(seed: request.seed)
        let scoresPrompt = request.echo && request.logprobs != nil
        var prompt = request.prompt.map { ScoredToken(id: $0, logprob: nil, top: []) }
        var logits: [Float]
        if scoresPrompt {
            logits = try scorePrompt(&prompt, alternatives: request.logprobs ?? 0)
        } else if request.maxTokens > 0 {
            inference.reset()
            var last = UnsafeBufferPointer<Float>(start: nil, count: 0)
            for token in request.prompt { last = try inference.append(token) }
            logits = Array(last)
        } else {
            logits = []
        }
        var generated = [ScoredToken](), finish = "length", text = ""
        var cached = !scoresPrompt  // whether the KV cache holds the sequence so far
        while generated.count < request.maxTokens {
            let id = logits.withUnsafeBufferPointer {
                Sampler.next(logits: $0, vocabularySize: vocabularySize, options: request.sampling, random: &random)
            }
            if id == request.stopToken {
                finish = "stop"
                break
            }
            generated.append(logits.withUnsafeBufferPointer { score(id, logits: $0, alternatives: request.logprobs) })
            let previous = text
            text = (try? tokenizer.decode(generated.map(\.id))) ?? text
            if let cut = Self.firstStop(request.stop, in: text) {
                text = String(text[..<cut])
                finish = "stop"
            }
            if let onText, text.count > previous.count, text.hasPrefix(previous) { onText(String(text.dropFirst(previous.count))) }
            if finish == "stop" { break }
            let position = request.prompt.count + generated.count
            guard generated.count < request.maxTokens else { break }
            guard position < model.config.maxPositionEmbeddings else { break }
            if !cached {  // the prompt went through a full forward: fill the cache once
                inference.reset()
                for token in request.prompt { try inference.append(token) }
                for token in generated.dropLast() { try inference.append(token.id) }
                cached = true
            }
            logits = Array(try inference.append(id))
        }
        if request.logprobs == nil {
            for i in generated.indices { generated[i].logprob = nil }
        }
        return Completion(prompt: prompt, generated: generated, text: text, finishReason: finish)
    }

    /// Scores every prompt token after the first with one forward; returns the last position's logits.
    private func scorePrompt(_ prompt: inout [ScoredToken], alternatives: Int) throws -> [Float] {
        let tokens = prompt.map(\.id), n = tokens.count
        let targets = [Int32](repeating: CrossEntropy.ignoreIndex, count: n)
        try tokens.withUnsafeBufferPointer { x in
            try targets.withUnsafeBufferPointer { y in
                _ = try model.forward(tokens: x.baseAddress!, targets: y.baseAddress!, batch: 1, seqLength: n)
            }
        }
        let vocab = model.config.paddedVocabSize
        for i in 1..<max(n, 1) {
            prompt[i] = score(tokens[i], logits: UnsafeBufferPointer(start: model.logits + (i - 1) * vocab, count: vocab),
                              alternatives: alternatives)
        }
        return Array(UnsafeBufferPointer(start: model.logits + (n - 1) * vocab, count: vocab))
    }

    /// `id`'s log-probability under `logits` (over the tokenizer's ids) and the top alternatives.
    func score(_ id: Int32, logits: UnsafeBufferPointer<Float>, alternatives: Int?) -> ScoredToken {
        let n = min(vocabularySize, logits.count)
        var maximum = logits[0]
        for j in 1..<n where logits[j] > maximum { maximum = logits[j] }
        var sum = 0.0
        for j in 0..<n { sum += exp(Double(logits[j] - maximum)) }
        let logNormalizer = Double(maximum) + log(sum)
        var top = [(id: Int32, logprob: Double)]()
        if let k = alternatives, k > 0 {
            top = (0..<n).sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }.prefix(k)
                .map { (Int32($0), Double(logits[$0]) - logNormalizer) }
        }
        return ScoredToken(id: id, logprob: Double(logits[Int(id)]) - logNormalizer, top: top)
    }

    /// Where the first of `stops` begins in `text`.
    static func firstStop(_ stops: [String], in text: String) -> String.Index? {
        stops.compactMap { stop in stop.isEmpty ? nil : text.firstRange(of: stop)?.lowerBound }.min()
    }
}
