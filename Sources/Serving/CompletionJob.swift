import Models
import Parameters

/// A request handed to `CompletionEngine.run`, with where its text and result go.
public struct CompletionJob {
    public var request: CompletionRequest
    /// Receives the generated text as it grows (each call the characters added since the last).
    public var onText: ((String) -> Void)?
    /// Called once, with the completion or the error that ended it.
    public var done: (Result<Completion, any Error>) -> Void

    public init(request: CompletionRequest, onText: ((String) -> Void)? = nil,
                done: @escaping (Result<Completion, any Error>) -> Void) {
        self.request = request
        self.onText = onText
        self.done = done
    }
}

extension CompletionEngine {
    /// One request's generation so far.
    private final class Generation {
        let job: CompletionJob
        var prompt: [ScoredToken]
        var random: RandomGenerator
        var generated: [ScoredToken] = []
        var text = ""
        var finish = "length"
        var stopLogprob: Double?

        init(_ job: CompletionJob) {
            self.job = job
            prompt = job.request.prompt.map { ScoredToken(id: $0, logprob: nil, top: []) }
            random = RandomGenerator(seed: job.request.seed)
        }

        /// Whether the prompt's log-probabilities are asked for (echo with `logprobs`).
        var scoresPrompt: Bool { job.request.echo && job.request.logprobs != nil }

        func deliver(_ error: (any Error)?) {
            if let error { return job.done(.failure(error)) }
            job.done(.success(Completion(prompt: prompt, generated: generated, text: text, finishReason: finish,
                                         stopLogprob: stopLogprob)))
        }
    }

    /// Scores the prompts of `jobs` that ask for it (echo with log-probabilities), together, then
    /// starts each job's decoding in `decoder`, or delivers it at once when it generates nothing
    /// (or its prompt could not be scored). A scored prompt that generates goes on from its
    /// scoring forward: its first token is chosen from that forward's logits (all that lm-eval's
    /// log-likelihood request needs) and the decoder takes the prompt's keys and values from it,
    /// without reading the prompt again.
    func start(_ jobs: [CompletionJob], in decoder: BatchDecoder) {
        let generations = jobs.map { job in
            precondition(!job.request.prompt.isEmpty, "an empty prompt reaches the engine")
            return Generation(job)
        }
        let scored = generations.filter(\.scoresPrompt)
        var decoding = Set<Int>()  // indices in `scored` started from their scoring forward
        var outcomes = scorePrompts(scored.map { generation in
            let request = generation.job.request
            // As the decoder, no token after a prompt that fills the model's positions.
            let generates = request.maxTokens > 0 && request.prompt.count < model.config.maxPositionEmbeddings
            return PromptToScore(tokens: request.prompt, alternatives: request.logprobs!, keepsNextLogits: generates)
        }) { index, row, prompt in
            guard let nextLogits = prompt.nextLogits else { return }
            let generation = scored[index], tokens = generation.job.request.prompt
            generation.prompt = prompt.tokens
            decoding.insert(index)
            nextLogits.withUnsafeBufferPointer { logits in
                decoder.add(prompt: tokens, logits: logits,
                            cachedBy: { inference, slot in inference.adoptForward(row: row, count: tokens.count, into: slot) },
                            choose: { [self] logits in choose(logits, for: generation) }, finished: { generation.deliver($0) })
            }
        }.enumerated().makeIterator()
        for generation in generations {
            if generation.scoresPrompt {  // the outcomes come in the order of `scored`
                let (index, outcome) = outcomes.next()!
                switch outcome {
                case _ where decoding.contains(index): continue
                case let .success(prompt): generation.prompt = prompt.tokens
                case let .failure(error):
                    generation.deliver(error)
                    continue
                }
            }
            if generation.job.request.maxTokens == 0 {
                generation.deliver(nil)
            } else {
                decoder.add(prompt: generation.job.request.prompt, choose: { [self] logits in choose(logits, for: generation) },
                            finished: { generation.deliver($0) })
            }
        }
    }

    /// The next token of `generation` from `logits`: sampled, scored and appended, its text
    /// streamed; returns it when the generation goes on.
    private func choose(_ logits: UnsafeBufferPointer<Float>, for generation: Generation) -> Int32? {
        let request = generation.job.request
        let id = Sampler.next(logits: logits, vocabularySize: vocabularySize, options: request.sampling, random: &generation.random)
        // A log-softmax over the vocabulary only when log-probabilities are asked for.
        let scores = request.logprobs != nil || request.scoresGeneration
        if id == request.stopToken {
            generation.finish = "stop"
            if scores { generation.stopLogprob = score(id, logits: logits, alternatives: nil).logprob }
            return nil
        }
        generation.generated.append(scores ? score(id, logits: logits, alternatives: request.logprobs)
                                           : ScoredToken(id: id, logprob: nil, top: []))
        let previous = generation.text
        generation.text = (try? tokenizer.decode(generation.generated.map(\.id))) ?? generation.text
        if let cut = Self.firstStop(request.stop, in: generation.text) {
            generation.text = String(generation.text[..<cut])
            generation.finish = "stop"
        }
        let text = generation.text
        if let onText = generation.job.onText, text.count > previous.count, text.hasPrefix(previous) {
            onText(String(text.dropFirst(previous.count)))
        }
        return generation.finish == "stop" || generation.generated.count >= request.maxTokens ? nil : id
    }
}
