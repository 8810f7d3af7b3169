import FileSupport
import Models
import Tokenizer

/// OpenAI's `POST /v1/completions` (what lm-evaluation-harness's `local-completions` model
/// sends): `prompt` as a string, a list of strings, a list of token ids or a list of such lists;
/// `max_tokens` (0 scores the prompt only), `temperature`, `top_p`, `top_k`, `seed`, `stop`,
/// `logprobs` (alternatives per position), `echo`, `stream`, `n` (completions per prompt) and
/// `best_of` (candidates per prompt, of which the `n` with the highest log-probability per
/// generated token come back, best first).
struct CompletionsCall {
    let prompts: [[Int32]]
    let request: CompletionRequest
    let stream: Bool
    let model: String
    /// Completions per prompt: choice `i * n + j` is prompt `i`'s `j`-th (the `j`-th best of
    /// `bestOf` candidates; with `bestOf == n`, the one sampled with `seed + j`).
    let n: Int
    /// Candidates per prompt (at least `n`); candidate `j` is sampled with `seed + j`.
    let bestOf: Int

    init(_ fields: RequestFields, tokenizer: Tokenizer, maxPromptTokens: Int, limits: ServerLimits) throws(ServeError) {
        guard let prompt = fields.body["prompt"] else { throw .badRequest("prompt is required") }
        prompts = try Self.prompts(prompt, tokenizer: tokenizer, maxTokens: maxPromptTokens, limits: limits)
        n = try fields.integer("n", default: 1, in: 1...limits.maxPrompts)!
        guard prompts.count * n <= limits.maxPrompts else {
            throw .badRequest("\(prompts.count) prompts x n \(n) exceed \(limits.maxPrompts) completions per request")
        }
        bestOf = try fields.integer("best_of", default: n, in: 1...limits.maxPrompts)!
        guard bestOf >= n else { throw .badRequest("best_of (\(bestOf)) must be at least n (\(n))") }
        guard prompts.count * bestOf <= limits.maxPrompts else {
            throw .badRequest("\(prompts.count) prompts x best_of \(bestOf) exceed \(limits.maxPrompts) completions per request")
        }
        if case let .string(name)? = fields.body["model"] { model = name } else { model = "megatron" }
        let maxTokens = try fields.integer("max_tokens", default: 16, in: 0...limits.maxNewTokens)!
        let temperature = try fields.number("temperature", default: 1, in: 0...100)
        let topP = try fields.number("top_p", default: 1, in: 0...1)
        let topK = try fields.integer("top_k", default: 0, in: 0...1_000_000)!
        let logprobs = try fields.integer("logprobs", in: 0...20)
        let echo = try fields.bool("echo", default: false)
        stream = try fields.bool("stream", default: false)
        let stop = try fields.strings("stop")
        guard stop.count <= 4 else { throw .badRequest("stop takes at most 4 strings") }
        let seed = try fields.integer("seed", default: 0, in: 0...Int(Int64.max))!
        request = CompletionRequest(prompt: [], maxTokens: maxTokens,
                                    sampling: SamplingOptions(temperature: Float(temperature), topK: topK,
                                                              topP: topP >= 1 ? 0 : Float(topP)),
                                    seed: UInt64(seed), logprobs: logprobs, echo: echo, stop: stop,
                                    stopToken: tokenizer.endOfDocumentID)
        if stream && echo && logprobs != nil { throw .badRequest("stream with echo and logprobs is not supported") }
        if stream && bestOf > n { throw .badRequest("best_of greater than n cannot be streamed") }
    }

    /// The completions to run: each prompt `bestOf` times, the `j`-th with `seed + j` (in choice
    /// order when `bestOf == n`). Candidates to rank have their generated tokens scored.
    var requests: [CompletionRequest] {
        var candidate = request
        candidate.scoresGeneration = bestOf > n
        return candidate.applied(to: prompts, copies: bestOf)
    }

    /// The choices among the completions of `requests`: for each prompt, the best `n` of its
    /// `bestOf` candidates (`best`).
    func choices(_ completions: [Completion]) -> [Completion] {
        guard bestOf > n else { return completions }
        return stride(from: 0, to: completions.count, by: bestOf).flatMap { Self.best(n, of: completions[$0..<$0 + bestOf]) }
    }

    /// The `n` of `candidates` with the highest mean log-probability per token (OpenAI's "log
    /// probability per token"), counting the end-of-text token that stopped a candidate as one of
    /// its tokens (so that one stopping at once is not scored 0, the best possible); best first,
    /// ties in sampling order.
    static func best(_ n: Int, of candidates: ArraySlice<Completion>) -> [Completion] {
        func score(_ completion: Completion) -> Double {
            let logprobs = completion.generated.map { $0.logprob ?? 0 } + (completion.stopLogprob.map { [$0] } ?? [])
            return logprobs.reduce(0, +) / Double(max(1, logprobs.count))
        }
        return candidates.indices.sorted { a, b in
            let (x, y) = (score(candidates[a]), score(candidates[b]))
            return x != y ? x > y : a < b
        }.prefix(n).map { candidates[$0] }
    }

    /// The prompts as token ids, checked against the vocabulary and the model's length.
    static func prompts(_ value: JSONValue, tokenizer: Tokenizer, maxTokens: Int, limits: ServerLimits) throws(ServeError) -> [[Int32]] {
        var prompts = [[Int32]]()
        func ids(_ values: [JSONValue]) throws(ServeError) -> [Int32] {
            var result = [Int32]()
            for value in values {
                guard case let .number(x) = value, x == x.rounded(), x >= 0, x < Double(tokenizer.vocabularySize) else {
                    throw .badRequest("prompt token ids must be integers in 0..<\(tokenizer.vocabularySize)")
                }
                result.append(Int32(x))
            }
            return result
        }
        switch value {
        case let .string(text): prompts = [tokenizer.encode(text)]
        case let .array(items) where items.allSatisfy({ if case .number = $0 { true } else { false } }) && !items.isEmpty:
            prompts = [try ids(items)]
        case let .array(items) where !items.isEmpty:
            for item in items {
                switch item {
                case let .string(text): prompts.append(tokenizer.encode(text))
                case let .array(values): prompts.append(try ids(values))
                default: throw .badRequest("prompt must be a string, a list of strings, a list of token ids or a list of such lists")
                }
            }
        default: throw .badRequest("prompt must be a string, a list of strings, a list of token ids or a list of such lists")
        }
        guard prompts.count <= limits.maxPrompts else { throw .badRequest("at most \(limits.maxPrompts) prompts per request") }
        for (index, prompt) in prompts.enumerated() {
            if prompt.isEmpty { throw .badRequest("prompt \(index) is empty") }
            if prompt.count > maxTokens {
                throw .badRequest("prompt \(index) has \(prompt.count) tokens; the model reads at most \(maxTokens)")
            }
        }
        return prompts
    }

    /// The answer for `completions` (one per request of `requests`): the `choices`, and the usage
    /// of every candidate.
    func response(_ completions: [Completion], tokenizer: Tokenizer, id: String, created: Int) -> JSONValue {
        let choices = self.choices(completions).enumerated().map { index, completion -> JSONValue in
            let promptText = (try? tokenizer.decode(completion.prompt.map(\.id))) ?? ""
            let shown = (request.echo ? completion.prompt : []) + completion.generated
            var fields: [(key: String, value: JSONValue)] = [
                ("index", .number(Double(index))), ("text", .string((request.echo ? promptText : "") + completion.text)),
            ]
            fields.append(("logprobs", request.logprobs == nil ? .null : Self.logprobs(shown, tokenizer: tokenizer)))
            fields.append(("finish_reason", .string(completion.finishReason)))
            return .object(fields)
        }
        let promptTokens = completions.reduce(0) { $0 + $1.prompt.count }
        let generatedTokens = completions.reduce(0) { $0 + $1.generated.count }
        return .object([
            ("id", .string(id)), ("object", .string("text_completion")), ("created", .number(Double(created))),
            ("model", .string(model)), ("choices", .array(choices)),
            ("usage", .object([("prompt_tokens", .number(Double(promptTokens))),
                               ("completion_tokens", .number(Double(generatedTokens))),
                               ("total_tokens", .number(Double(promptTokens + generatedTokens)))])),
        ])
    }

    /// OpenAI's `logprobs` object: tokens, their log-probabilities (null for the first prompt
    /// token), the alternatives as `{token: logprob}` and each token's character offset.
    static func logprobs(_ tokens: [ScoredToken], tokenizer: Tokenizer) -> JSONValue {
        var offsets = [JSONValue](), offset = 0
        let strings = tokens.map { (try? tokenizer.decode([$0.id])) ?? "" }
        for text in strings {
            offsets.append(.number(Double(offset)))
            offset += text.unicodeScalars.count
        }
        return .object([
            ("tokens", .array(strings.map { .string($0) })),
            ("token_logprobs", .array(tokens.map { $0.logprob.map { .number($0) } ?? .null })),
            ("top_logprobs", .array(tokens.map { token in
                token.logprob == nil ? .null
                    : .object(token.top.map { ((try? tokenizer.decode([$0.id])) ?? "", .number($0.logprob)) })
            })),
            ("text_offset", .array(offsets)),
        ])
    }
}
