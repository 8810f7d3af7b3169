import Dispatch
import Evaluation
import FileSupport
import Models
@testable import Serving
import Synchronization
import Testing
import TestSupport
import Tokenizer
import Training

/// `megatron serve` over real loopback HTTP: the fixture GPT-2 of the evaluation tests and the
/// test tokenizer behind `MegatronServer`, on a free port.
@Suite(.serialized) struct ServerTests {
    static let repository = repositoryRoot()
    static let tokenizer = try! Tokenizer.load(tokenizerFile: repository + "/Tests/DataTests/Fixtures/tokenizer/tokenizer.json")
    static func model() throws -> GPTModel {
        try HuggingFaceCheckpoint.read(directory: repository + "/Tests/EvaluationTests/Fixtures/hf")
    }

    /// Runs `body` with a client of a server on a free port, then stops the server.
    static func withServer(limits: ServerLimits = ServerLimits(), _ body: (LoopbackClient) throws -> Void) async throws {
        let server = MegatronServer(engine: CompletionEngine(model: try model(), tokenizer: tokenizer), limits: limits,
                                    modelName: "fixture")
        let port = Mutex(0)
        let running = Task {
            try await server.application(host: "127.0.0.1", port: 0) { bound in port.withLock { $0 = bound } }.runService()
        }
        while port.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(10)) }
        defer { running.cancel() }
        try body(LoopbackClient(port: port.withLock { $0 }))
    }

    static func json(_ reply: LoopbackClient.Reply) throws -> JSONValue { try JSONValue.parse(reply.body) }

    static func element(_ value: JSONValue?, _ index: Int) -> JSONValue? {
        guard case let .array(values)? = value, values.indices.contains(index) else { return nil }
        return values[index]
    }

    @Test func healthAndModels() async throws {
        try await Self.withServer { client in
            #expect(try client.send("GET", "/health").status == 200)
            let models = try client.send("GET", "/v1/models")
            #expect(models.status == 200 && models.body.contains("\"fixture\""))
            #expect(try client.send("GET", "/nowhere").status == 404)
        }
    }

    /// lm-eval's `local-completions` log-likelihood request (token ids, `echo`, `logprobs: 1`,
    /// `max_tokens: 1`): the continuation's summed log-probabilities and greedy flag are what
    /// `evaluate --task` computes for the same pair.
    @Test func echoedLogprobsAreTheScorersLogLikelihoods() async throws {
        let context = Self.tokenizer.encode("The Devil's Dictionary defines a lawyer as"), continuation = Self.tokenizer.encode(" one skilled")
        let expected = try LogLikelihoodScorer(model: try Self.model()).score([LogLikelihoodRequest(context: context, continuation: continuation)])[0]
        try await Self.withServer { client in
            let ids = (context + continuation).map(String.init).joined(separator: ",")
            let reply = try client.send("POST", "/v1/completions", body: #"{"prompt": [[\#(ids)]], "max_tokens": 1, "temperature": 0, "logprobs": 1, "echo": true, "seed": 1234}"#)
            #expect(reply.status == 200)
            guard case let .array(choices)? = try Self.json(reply)["choices"], case let .array(logprobs)? = choices[0]["logprobs"]?["token_logprobs"],
                  case let .array(top)? = choices[0]["logprobs"]?["top_logprobs"] else {
                Issue.record("no logprobs in \(reply.body)")
                return
            }
            #expect(logprobs.count == context.count + continuation.count + 1 && logprobs[0] == .null)
            var sum = 0.0, greedy = true
            for index in context.count..<(context.count + continuation.count) {
                guard case let .number(value) = logprobs[index], case let .object(alternatives) = top[index],
                      case let .number(best)? = alternatives.first?.value else { continue }
                sum += value
                greedy = greedy && value == best
            }
            #expect(abs(sum - expected.logLikelihood) < 1e-3, "\(sum) vs \(expected.logLikelihood)")
            #expect(greedy == expected.isGreedy)
        }
    }

    /// Greedy completions are the model's greedy continuation, streamed or not.
    @Test func greedyCompletionStreamedOrNot() async throws {
        let prompt = Self.tokenizer.encode("A lawyer is")
        let generated = try GPTInference(model: try Self.model()).generate(prompt: prompt, count: 6, vocabularySize: Self.tokenizer.vocabularySize,
                                                                         options: SamplingOptions(temperature: 0), seed: 0)
        let text = try Self.tokenizer.decode(generated)
        try await Self.withServer { client in
            let reply = try client.send("POST", "/v1/completions", body: #"{"prompt": "A lawyer is", "max_tokens": 6, "temperature": 0}"#)
            guard case let .array(choices)? = try Self.json(reply)["choices"] else { Issue.record("\(reply.body)"); return }
            #expect(choices[0]["text"] == .string(text))
            let stream = try client.send("POST", "/v1/completions", body: #"{"prompt": "A lawyer is", "max_tokens": 6, "temperature": 0, "stream": true}"#)
            #expect(stream.headers["content-type"] == "text/event-stream")
            let events = stream.body.split(separator: "\n\n").map { String($0.dropFirst("data: ".count)) }
            #expect(events.last == "[DONE]")
            let pieces = try events.dropLast().map { Self.element(try JSONValue.parse($0)["choices"], 0)?["text"] }
            #expect(pieces.map { if case let .string(s)? = $0 { s } else { "" } }.joined() == text)
            let echoed = try client.send("POST", "/v1/completions", body: #"{"prompt": "A lawyer is", "max_tokens": 6, "temperature": 0, "stream": true, "echo": true}"#)
            let echoedPieces = try echoed.body.split(separator: "\n\n").map { String($0.dropFirst("data: ".count)) }.dropLast()
                .map { Self.element(try JSONValue.parse($0)["choices"], 0)?["text"] }
            #expect(echoedPieces.map { if case let .string(s)? = $0 { s } else { "" } }.joined() == "A lawyer is" + text)
        }
    }

    /// `n` completions per prompt: choice `i * n + j` is prompt `i` sampled with `seed + j`, as a
    /// request of its own with that seed gets it; greedy copies agree; streamed, each choice's
    /// pieces come under its own index.
    @Test func nCompletionsPerPrompt() async throws {
        func texts(_ reply: LoopbackClient.Reply) throws -> [String] {
            guard case let .array(choices)? = try Self.json(reply)["choices"] else { return [] }
            return choices.map { if case let .string(text)? = $0["text"] { text } else { "?" } }
        }
        try await Self.withServer { client in
            let reply = try client.send("POST", "/v1/completions",
                                        body: #"{"prompt": ["A lawyer is", "Love"], "max_tokens": 6, "temperature": 0.9, "top_k": 50, "seed": 7, "n": 3}"#)
            #expect(reply.status == 200, "\(reply.body)")
            let batched = try texts(reply)
            #expect(batched.count == 6)
            var alone = [String]()
            for prompt in ["A lawyer is", "Love"] {
                for seed in 7..<10 {
                    alone += try texts(try client.send("POST", "/v1/completions",
                                                       body: #"{"prompt": "\#(prompt)", "max_tokens": 6, "temperature": 0.9, "top_k": 50, "seed": \#(seed)}"#))
                }
            }
            #expect(batched == alone)
            #expect(Set(batched[0..<3]).count > 1, "three seeds, three samples: \(batched)")
            let greedy = try texts(try client.send("POST", "/v1/completions", body: #"{"prompt": "War", "max_tokens": 4, "temperature": 0, "n": 2}"#))
            #expect(greedy.count == 2 && greedy[0] == greedy[1])
            let stream = try client.send("POST", "/v1/completions",
                                         body: #"{"prompt": "Love", "max_tokens": 6, "temperature": 0.9, "top_k": 50, "seed": 7, "n": 3, "stream": true}"#)
            var streamed = ["", "", ""]
            for event in stream.body.split(separator: "\n\n").map({ String($0.dropFirst("data: ".count)) }).dropLast() {
                let choice = Self.element(try JSONValue.parse(event)["choices"], 0)
                if case let .number(index)? = choice?["index"], case let .string(text)? = choice?["text"] { streamed[Int(index)] += text }
            }
            #expect(streamed == Array(batched[3..<6]))
        }
    }

    /// `best_of` candidates per prompt, sampled with `seed + j` as `n` would sample them; the `n`
    /// with the highest mean log-probability per generated token come back, best first, with
    /// log-probabilities only when asked for; usage counts every candidate.
    @Test func bestOfReturnsTheMostLikelyCandidates() async throws {
        try await Self.withServer { client in
            let sampling = #""max_tokens": 5, "temperature": 1.0, "seed": 11"#
            let all = try Self.json(try client.send("POST", "/v1/completions",
                                                    body: #"{"prompt": ["A lawyer is", "Love"], \#(sampling), "n": 4, "logprobs": 0}"#))
            let best = try client.send("POST", "/v1/completions", body: #"{"prompt": ["A lawyer is", "Love"], \#(sampling), "n": 2, "best_of": 4}"#)
            #expect(best.status == 200, "\(best.body)")
            let reply = try Self.json(best)
            guard case let .array(candidates)? = all["choices"], case let .array(chosen)? = reply["choices"] else {
                Issue.record("no choices: \(best.body)")
                return
            }
            #expect(candidates.count == 8 && chosen.count == 4)
            func meanLogprob(_ choice: JSONValue) -> Double {
                guard case let .array(values)? = choice["logprobs"]?["token_logprobs"] else { return -.infinity }
                let numbers = values.compactMap { if case let .number(x) = $0 { x } else { nil } }
                return numbers.reduce(0, +) / Double(max(1, numbers.count))
            }
            for prompt in 0..<2 {
                let ranked = candidates[prompt * 4..<prompt * 4 + 4].sorted { meanLogprob($0) > meanLogprob($1) }
                #expect(chosen[prompt * 2..<prompt * 2 + 2].map { $0["text"] } == ranked.prefix(2).map { $0["text"] })
                #expect(Set(candidates[prompt * 4..<prompt * 4 + 4].map { meanLogprob($0) }).count > 1, "distinct candidates")
            }
            #expect(chosen.allSatisfy { $0["logprobs"] == .null })
            #expect(reply["usage"]?["completion_tokens"] == all["usage"]?["completion_tokens"])
        }
    }

    /// best_of's ranking counts the end-of-text token that stopped a candidate: one that stops at
    /// once, at a low log-probability, is not taken for the best (as a mean over no tokens would).
    @Test func bestOfCountsTheStopToken() {
        func candidate(_ logprobs: [Double], stop: Double?) -> Completion {
            Completion(prompt: [], generated: logprobs.map { ScoredToken(id: 1, logprob: $0, top: []) }, text: "\(logprobs)",
                       finishReason: stop == nil ? "length" : "stop", stopLogprob: stop)
        }
        let candidates = [candidate([], stop: -9), candidate([-1, -3], stop: nil), candidate([-1], stop: -2.5),
                          candidate([-2, -2], stop: nil)]
        #expect(CompletionsCall.best(3, of: candidates[...]).map(\.text) == ["[-1.0]", "[-1.0, -3.0]", "[-2.0, -2.0]"],
                "means -1.75 (the stop token counted), -2 and -2 (ties in sampling order)")
        #expect(CompletionsCall.best(4, of: candidates[...]).last?.text == "[]")
    }

    @Test func megatronGenerateAPI() async throws {
        try await Self.withServer { client in
            let reply = try client.send("PUT", "/api", body: #"{"prompts": ["A lawyer is", "Love"], "tokens_to_generate": 4, "logprobs": true, "top_k": 1, "random_seed": 3}"#)
            #expect(reply.status == 200)
            let answer = try Self.json(reply)
            guard case let .array(texts)? = answer["text"], case let .array(tokens)? = answer["tokens"],
                  case let .array(segments)? = answer["segments"], case let .array(logprobs)? = answer["logprobs"] else {
                Issue.record("\(reply.body)")
                return
            }
            #expect(texts.count == 2)
            if case let .string(first) = texts[0] { #expect(first.hasPrefix("A lawyer is")) }
            for i in 0..<2 {
                guard case let .array(t) = tokens[i], case let .array(s) = segments[i], case let .array(l) = logprobs[i] else { continue }
                #expect(s.count == t.count && l.count == t.count - 1)
            }
        }
    }

    /// Malformed requests get a 400 naming the problem; the server keeps serving.
    @Test(arguments: [
        ("POST", "/v1/completions", #"{"prompt": "x", "max_tokens": "ten"}"#, "max_tokens must be an integer"),
        ("POST", "/v1/completions", #"{"prompt": "x", "max_tokens": -1}"#, "max_tokens must be between 0"),
        ("POST", "/v1/completions", #"{"prompt": [5, 99999]}"#, "prompt token ids must be integers in 0..<2048"),
        ("POST", "/v1/completions", #"{"max_tokens": 3}"#, "prompt is required"),
        ("POST", "/v1/completions", #"{"prompt": "x", "temperature": -1}"#, "temperature must be between 0"),
        ("POST", "/v1/completions", "{not json", "the body is not valid JSON"),
        ("PUT", "/api", #"{"prompts": ["", "y"]}"#, "empty prompts require add_BOS=true"),
        ("PUT", "/api", #"{"prompts": ["x"], "top_k": 5, "top_p": 0.5}"#, "cannot set both top_k and top_p"),
        ("PUT", "/api", #"{"prompts": "x"}"#, "prompts is not a list of strings"),
        ("PUT", "/api", #"{"prompts": ["x"], "tokens_to_generate": 0}"#, "tokens_to_generate=0 implies logprobs"),
        ("POST", "/v1/completions", #"{"prompt": "x", "n": 0}"#, "n must be between 1"),
        ("POST", "/v1/completions", #"{"prompt": ["x", "y"], "n": 40}"#, "2 prompts x n 40 exceed 64 completions per request"),
        ("POST", "/v1/completions", #"{"prompt": "x", "n": 3, "best_of": 2}"#, "best_of (2) must be at least n (3)"),
        ("POST", "/v1/completions", #"{"prompt": ["x", "y"], "best_of": 40}"#, "2 prompts x best_of 40 exceed 64 completions"),
        ("POST", "/v1/completions", #"{"prompt": "x", "best_of": 2, "stream": true}"#, "best_of greater than n cannot be streamed"),
    ])
    func malformedRequestsAreRefusedByName(method: String, path: String, body: String, message: String) async throws {
        try await Self.withServer { client in
            let reply = try client.send(method, path, body: body)
            #expect(reply.status == 400, "\(reply.body)")
            #expect(reply.body.contains(message), "\(reply.body)")
            #expect(try client.send("GET", "/health").status == 200)
        }
    }

    @Test func aPromptLongerThanTheModelAndAHugeBodyAreRefused() async throws {
        var limits = ServerLimits()
        limits.maxBodyBytes = 4096
        try await Self.withServer(limits: limits) { client in
            let long = Array(repeating: "7", count: 200).joined(separator: ",")
            let reply = try client.send("POST", "/v1/completions", body: #"{"prompt": [\#(long)]}"#)
            #expect(reply.status == 400 && reply.body.contains("the model reads at most 128"))
            let huge = try client.send("POST", "/v1/completions", body: #"{"prompt": "\#(String(repeating: "a", count: 5000))"}"#)
            #expect(huge.status == 413)
        }
    }

    /// A full queue refuses at once instead of waiting.
    @Test func aFullQueueRefusesAtOnce() async throws {
        let queue = InferenceQueue(engine: 0, capacity: 1)
        let release = DispatchSemaphore(value: 0)
        let held = try queue.start { _ in release.wait() }
        #expect(throws: ServeError.busy) { _ = try queue.start { _ in 1 } }
        release.signal()
        try await held.value
        #expect(try await queue.run { $0 + 1 } == 1)
    }

    /// Prompts decoded side by side complete as each does alone: greedy and sampled, with stop
    /// strings, log-probabilities, the end-of-text token and the model's last position.
    @Test func promptsDecodedTogetherCompleteAsEachAlone() throws {
        let engine = CompletionEngine(model: try Self.model(), tokenizer: Self.tokenizer)
        var requests = [CompletionRequest]()
        for (index, text) in ["A lawyer is", "Love", "The Devil's Dictionary", "War"].enumerated() {
            requests.append(CompletionRequest(prompt: Self.tokenizer.encode(text), maxTokens: 6 + index,
                                              sampling: SamplingOptions(temperature: index % 2 == 0 ? 0 : 0.9, topK: 20),
                                              seed: UInt64(index), logprobs: index == 1 ? 3 : nil, stop: index == 2 ? ["ok"] : [],
                                              stopToken: Self.tokenizer.endOfDocumentID))
        }
        requests.append(CompletionRequest(prompt: Array(repeating: 7, count: 125), maxTokens: 10))  // 3 positions left
        requests.append(CompletionRequest(prompt: [5], maxTokens: 0))
        requests.append(CompletionRequest(prompt: Self.tokenizer.encode("A cynic is"), maxTokens: 4, logprobs: 2, echo: true))
        let together = try engine.completeTogether(requests)
        for (request, result) in zip(requests, together) {
            let alone = try engine.complete(request)
            #expect(result.generated.map(\.id) == alone.generated.map(\.id) && result.text == alone.text
                    && result.finishReason == alone.finishReason, "\(request.prompt.prefix(3))")
            for (a, b) in zip(result.generated, alone.generated) {
                #expect(abs((a.logprob ?? 0) - (b.logprob ?? 0)) < 1e-4 && a.top.map(\.id) == b.top.map(\.id))
            }
        }
        #expect(together[4].generated.count == 3 && together[5].generated.isEmpty)
    }

    /// Prompts of different clients waiting together decode in one batch, each with its own answer.
    @Test func waitingPromptsOfDifferentClientsDecodeTogether() async throws {
        let engine = CompletionEngine(model: try Self.model(), tokenizer: Self.tokenizer)
        let queue = InferenceQueue(engine: engine, capacity: 16)
        let batcher = RequestBatcher(queue: queue, capacity: 16)
        let texts = ["A lawyer is", "Love", "War", "Politics is", "Hope"]
        let requests = texts.map { CompletionRequest(prompt: Self.tokenizer.encode($0), maxTokens: 5) }
        let alone = try requests.map { try engine.complete($0) }
        let release = DispatchSemaphore(value: 0)
        let held = try queue.start { _ in release.wait() }  // the worker is busy while the clients arrive
        let clients = requests.map { request in Task { try await batcher.submit([request]).completions()[0] } }
        while batcher.load < requests.count { try await Task.sleep(for: .milliseconds(5)) }
        release.signal()
        try await held.value
        for (client, expected) in zip(clients, alone) {
            #expect(try await client.value.generated.map(\.id) == expected.generated.map(\.id))
        }
        #expect(engine.largestBatch == requests.count)
    }

    /// A prompt that arrives while others decode joins them at the next step (continuous
    /// batching) and completes as it would alone; more prompts than slots wait for a free one.
    @Test func arrivalsJoinARunningBatch() throws {
        let engine = CompletionEngine(model: try Self.model(), tokenizer: Self.tokenizer)
        let first = CompletionRequest(prompt: Self.tokenizer.encode("A lawyer is"), maxTokens: 30)
        let later = CompletionRequest(prompt: Self.tokenizer.encode("Love"), maxTokens: 5, sampling: SamplingOptions(temperature: 0.8),
                                      seed: 3)
        let alone = try [first, later].map { try engine.complete($0) }
        var results = [Completion?](repeating: nil, count: 2), steps = 0, laterDoneAtStep = 0, firstDoneAtStep = 0
        engine.run { room in
            steps += 1
            switch steps {
            case 1: return [CompletionJob(request: first) { results[0] = try? $0.get(); firstDoneAtStep = steps }]
            case 10: return [CompletionJob(request: later) { results[1] = try? $0.get(); laterDoneAtStep = steps }]
            default: return []
            }
        }
        #expect(results[0]?.generated.map(\.id) == alone[0].generated.map(\.id))
        #expect(results[1]?.generated.map(\.id) == alone[1].generated.map(\.id))
        #expect(laterDoneAtStep > 10 && laterDoneAtStep < firstDoneAtStep, "the later prompt ran beside the first")

        let many = (0..<11).map { CompletionRequest(prompt: Self.tokenizer.encode("War \($0)"), maxTokens: 2 + $0 % 4) }
        let batched = try engine.completeTogether(many)
        for (request, result) in zip(many, batched) {
            #expect(result.generated.map(\.id) == (try engine.complete(request)).generated.map(\.id))
        }
        #expect(engine.largestBatch == CompletionEngine.maxBatch)
    }
}
