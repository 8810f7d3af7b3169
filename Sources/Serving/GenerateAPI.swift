import FileSupport
import Models
import Tokenizer

/// Megatron-LM's text generation API, `PUT /api` (`tools/run_text_generation_server.py`):
/// `prompts` (strings), `tokens_to_generate` (default 64; 0 scores the prompts and needs
/// `logprobs`), `temperature` (0 < t <= 100, default 1), `top_k` (0-1000), `top_p` (0-1, not with
/// `top_k`), `logprobs`, `random_seed`, `add_BOS` (prepend the end-of-text token; required for an
/// empty prompt), `stop_token` (default: end-of-text). Answers `text` (each prompt followed by its
/// generated text), `tokens`, `segments` (each token as text) and, with `logprobs`, `logprobs`
/// (every token's after the first).
struct GenerateCall {
    let prompts: [[Int32]]
    let request: CompletionRequest

    init(_ fields: RequestFields, tokenizer: Tokenizer, maxPromptTokens: Int, limits: ServerLimits) throws(ServeError) {
        guard case let .array(items)? = fields.body["prompts"] else {
            throw .badRequest(fields.has("prompts") ? "prompts is not a list of strings" : "prompts argument required")
        }
        if fields.has("max_len") { throw .badRequest("max_len is no longer used; replace with tokens_to_generate") }
        if fields.has("sentences") { throw .badRequest("sentences is no longer used; replace with prompts") }
        guard !items.isEmpty else { throw .badRequest("prompts is empty") }
        guard items.count <= limits.maxPrompts else { throw .badRequest("at most \(limits.maxPrompts) prompts per request") }
        let addBOS = try fields.bool("add_BOS", default: false)
        let endOfText = tokenizer.endOfDocumentID
        if addBOS && endOfText == nil { throw .badRequest("add_BOS needs an <|endoftext|> token, which this tokenizer lacks") }
        var prompts = [[Int32]]()
        for item in items {
            guard case let .string(text) = item else { throw .badRequest("prompts is not a list of strings") }
            if text.isEmpty && !addBOS { throw .badRequest("empty prompts require add_BOS=true") }
            let ids = (addBOS ? [endOfText!] : []) + tokenizer.encode(text)
            guard ids.count <= maxPromptTokens else {
                throw .badRequest("prompt \(prompts.count) has \(ids.count) tokens; the model reads at most \(maxPromptTokens)")
            }
            prompts.append(ids)
        }
        self.prompts = prompts
        let tokens = try fields.integer("tokens_to_generate", default: 64, in: 0...limits.maxNewTokens)!
        let logprobs = try fields.bool("logprobs", default: false)
        if tokens == 0 && !logprobs { throw .badRequest("tokens_to_generate=0 implies logprobs should be true") }
        let temperature = try fields.number("temperature", default: 1, in: 0...100)
        guard temperature > 0 else { throw .badRequest("temperature must be a positive number less than or equal to 100") }
        let topK = try fields.integer("top_k", default: 0, in: 0...1000)!
        let topP = try fields.number("top_p", default: 0, in: 0...1)
        if topK > 0 && topP > 0 { throw .badRequest("cannot set both top_k and top_p") }
        let seed = try fields.integer("random_seed", default: nil, in: 0...Int(Int64.max)).map(UInt64.init)
            ?? UInt64.random(in: 0...UInt64.max)
        let stop = try fields.integer("stop_token", default: endOfText.map(Int.init), in: 0...Int(Int32.max)).map { Int32($0) }
        request = CompletionRequest(prompt: [], maxTokens: tokens,
                                    sampling: SamplingOptions(temperature: Float(temperature), topK: topK, topP: Float(topP)),
                                    seed: seed, logprobs: logprobs ? 0 : nil, echo: true, stopToken: stop)
    }

    func response(_ completions: [Completion], tokenizer: Tokenizer) -> JSONValue {
        let tokens = completions.map { $0.prompt + $0.generated }
        var fields: [(key: String, value: JSONValue)] = [
            ("text", .array(completions.map { .string(((try? tokenizer.decode($0.prompt.map(\.id))) ?? "") + $0.text) })),
            ("tokens", .array(tokens.map { .array($0.map { .number(Double($0.id)) }) })),
            ("segments", .array(tokens.map { .array($0.map { .string((try? tokenizer.decode([$0.id])) ?? "") }) })),
        ]
        if request.logprobs != nil {
            fields.append(("logprobs", .array(tokens.map { .array($0.dropFirst().map { .number($0.logprob ?? 0) }) })))
        }
        return .object(fields)
    }
}
