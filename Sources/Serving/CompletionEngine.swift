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
    /// Each generated token's log-probability is computed even without `logprobs`, and the stop
    /// token's too (`Completion.stopLogprob`): what `best_of` ranks candidates by.
    public var scoresGeneration = false

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

extension CompletionRequest {
    /// These settings for each of `prompts`, `copies` times each in prompt order, copy `j` sampled
    /// with `seed + j` (OpenAI's `n`).
    func applied(to prompts: [[Int32]], copies: Int = 1) -> [CompletionRequest] {
        prompts.flatMap { prompt in
            (0..<copies).map { j in
                var request = self
                request.prompt = prompt
                request.seed = seed &+ UInt64(j)
                return request
            }
        }
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
    /// The log-probability of the end-of-text token that ended the generation, when generated
    /// tokens are scored (`logprobs` or `scoresGeneration`).
    public var stopLogprob: Double? = nil
}

/// Runs completions on one whole (single-rank) model: the prompts whose log-probabilities are
/// asked for go through full forwards first, those that join together batched (`PromptScoring`);
/// generation is key/value-cached decoding in the slots
/// of a `BatchDecoder`, where requests join and leave at any step (`run(next:)`, continuous
/// batching). Not thread-safe: the server confines it to one worker (`InferenceQueue`).
public final class CompletionEngine {
    public let model: GPTModel
    public let tokenizer: Tokenizer
    /// Decoding slots (`maxBatch` sequences), made on first use.
    private var decoder: BatchDecoder?
    /// The most prompts decoded together so far.
    public internal(set) var largestBatch = 0
    /// Full forwards run to score prompts (echo with log-probabilities) so far.
    public internal(set) var scoringForwards = 0
    /// Prompt tokens the decoder has read so far (a scored prompt's are taken from its scoring forward).
    public var promptTokensDecoded: Int { decoder?.promptTokensRead ?? 0 }
    /// The ids a completion may produce: the tokenizer's.
    public var vocabularySize: Int { tokenizer.vocabularySize }
    /// Most prompts decoded side by side.
    public static let maxBatch = 8

    public init(model: GPTModel, tokenizer: Tokenizer) {
        self.model = model
        self.tokenizer = tokenizer
    }

    /// Longest prompt the model reads.
    public var maxPromptTokens: Int { model.config.maxPositionEmbeddings }

    /// Completes `request`; `onText` receives the generated text as it grows (each call the
    /// characters added since the last; a stop string is never sent).
    public func complete(_ request: CompletionRequest, onText: ((String) -> Void)? = nil) throws -> Completion {
        try completeTogether([request], onText: onText.map { send in { _, text in send(text) } })[0]
    }

    /// Completes `requests` side by side, up to `maxBatch` at a time (a request starts as soon as
    /// a slot is free), each as it would complete alone; `onText(index, text)` as in `complete`.
    public func completeTogether(_ requests: [CompletionRequest], onText: ((Int, String) -> Void)? = nil) throws -> [Completion] {
        var results = [Result<Completion, any Error>?](repeating: nil, count: requests.count)
        var next = 0
        run { room in
            let taken = requests.indices.dropFirst(next).prefix(room)
            next += taken.count
            return taken.map { index in
                CompletionJob(request: requests[index], onText: onText.map { send in { send(index, $0) } }) { results[index] = $0 }
            }
        }
        return try results.map { try $0!.get() }
    }

    /// Runs jobs as they come until none is left: before every step `next(room)` hands over up
    /// to `room` new jobs, which start at once (continuous batching); each job's `done` is called
    /// once, with its completion or the error that ended it.
    public func run(next: (_ room: Int) -> [CompletionJob]) {
        let decoder = self.decoder ?? BatchDecoder(inference: GPTInference(model: model, sequences: Self.maxBatch))
        self.decoder = decoder
        while true {
            let jobs = next(decoder.freeSlots)
            start(jobs, in: decoder)
            largestBatch = max(largestBatch, decoder.activeCount)
            if decoder.activeCount == 0 {
                if jobs.isEmpty { return }
                continue
            }
            try? decoder.step()  // an error reaches each of the step's jobs through `finished`
        }
    }

    /// Where the first of `stops` begins in `text`.
    static func firstStop(_ stops: [String], in text: String) -> String.Index? {
        stops.compactMap { stop in stop.isEmpty ? nil : text.firstRange(of: stop)?.lowerBound }.min()
    }
}
