import Models
import Parameters

extension CompletionEngine {
    /// Most prompts decoded side by side.
    public static let maxBatch = 8

    /// Completes several requests together, up to `maxBatch` at a time, each as `complete` would
    /// alone: every step feeds each unfinished request its next prompt token or its last sampled
    /// one through one forward (`GPTInference` with several sequences), so the weights are read
    /// once per step for all of them. For requests that do not score their prompt (echo with
    /// log-probabilities goes through `complete`).
    public func completeTogether(_ requests: [CompletionRequest]) throws -> [Completion] {
        precondition(requests.allSatisfy { !($0.echo && $0.logprobs != nil) && !$0.prompt.isEmpty },
                     "completeTogether takes non-empty prompts that are not scored")
        var results = [Completion]()
        for start in stride(from: 0, to: requests.count, by: Self.maxBatch) {
            results += try decodeTogether(Array(requests[start..<min(start + Self.maxBatch, requests.count)]))
        }
        return results
    }

    /// One request's decoding state.
    private struct Decoding {
        var request: CompletionRequest
        var random: RandomGenerator
        var fed = 0
        /// The token the sequence takes next (nil: finished).
        var feed: Int32?
        var generated: [ScoredToken] = []
        var text = ""
        var finish = "length"
    }

    private func decodeTogether(_ requests: [CompletionRequest]) throws -> [Completion] {
        largestBatch = max(largestBatch, requests.count)
        let batch = batchInference(for: requests.count)
        batch.reset()
        let vocabulary = model.config.paddedVocabSize, maxPositions = model.config.maxPositionEmbeddings
        var states = requests.map { request in
            Decoding(request: request, random: RandomGenerator(seed: request.seed), feed: request.maxTokens > 0 ? request.prompt[0] : nil)
        }
        while true {
            let active = states.indices.filter { states[$0].feed != nil }
            guard !active.isEmpty else { break }
            let logits = try batch.append(active.map { states[$0].feed! }, slots: active)
            for (r, i) in active.enumerated() {
                states[i].fed += 1
                let prompt = states[i].request.prompt
                if states[i].fed < prompt.count {
                    states[i].feed = prompt[states[i].fed]
                    continue
                }
                states[i].feed = nil
                let row = UnsafeBufferPointer(rebasing: logits[(r * vocabulary)..<((r + 1) * vocabulary)])
                let request = states[i].request
                let id = Sampler.next(logits: row, vocabularySize: vocabularySize, options: request.sampling,
                                      random: &states[i].random)
                if id == request.stopToken {
                    states[i].finish = "stop"
                    continue
                }
                states[i].generated.append(score(id, logits: row, alternatives: request.logprobs))
                states[i].text = (try? tokenizer.decode(states[i].generated.map(\.id))) ?? states[i].text
                if let cut = Self.firstStop(request.stop, in: states[i].text) {
                    states[i].text = String(states[i].text[..<cut])
                    states[i].finish = "stop"
                    continue
                }
                let position = prompt.count + states[i].generated.count
                if states[i].generated.count < request.maxTokens && position < maxPositions { states[i].feed = id }
            }
        }
        return states.map { state in
            var generated = state.generated
            if state.request.logprobs == nil {
                for j in generated.indices { generated[j].logprob = nil }
            }
            return Completion(prompt: state.request.prompt.map { ScoredToken(id: $0, logprob: nil, top: []) },
                              generated: generated, text: state.text, finishReason: state.finish)
        }
    }
}
