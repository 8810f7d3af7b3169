#if canImport(Glibc)
import Glibc
#endif
import Parameters

/// How the next token is chosen from the logits (Megatron's generation options).
public struct SamplingOptions: Sendable, Equatable {
    /// Logits are divided by this; 0 means greedy (argmax).
    public var temperature: Float = 1
    /// Keep only the k most likely tokens (0: all).
    public var topK = 0
    /// Keep the smallest set of most likely tokens whose probability reaches p (0: all).
    public var topP: Float = 0

    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
    }

    /// Checks the options like Megatron: top-k and top-p together are an error; NaN, infinite or
    /// out-of-range values are errors naming the flag and the value.
    public func validate() throws(ConfigurationError) {
        guard temperature.isFinite, temperature >= 0 else {
            throw .invalid(flag: "--temperature", reason: "must be a finite number >= 0, got \(temperature)")
        }
        guard topK >= 0 else { throw .invalid(flag: "--top-k", reason: "must be >= 0, got \(topK)") }
        guard topP >= 0 && topP <= 1 else { throw .invalid(flag: "--top-p", reason: "must be in [0, 1], got \(topP)") }
        guard topK == 0 || topP == 0 else { throw .invalid(flag: "--top-p", reason: "cannot be used together with --top-k") }
    }

    /// Whether the choice is deterministic (argmax).
    public var isGreedy: Bool { temperature == 0 || topK == 1 }
}

public enum Sampler {
    /// Picks the next token among the first `vocabularySize` logits (the padding ids beyond the
    /// tokenizer's vocabulary are never chosen).
    public static func next(logits: UnsafeBufferPointer<Float>, vocabularySize: Int, options: SamplingOptions,
                            random: inout RandomGenerator) -> Int32 {
        let n = min(vocabularySize, logits.count)
        if options.isGreedy {
            var best = 0
            for i in 1..<n where logits[i] > logits[best] { best = i }
            return Int32(best)
        }
        var candidates = (0..<n).map { (id: Int32($0), logit: logits[$0] / options.temperature) }
        if options.topK > 0 || options.topP > 0 {
            candidates.sort { $0.logit > $1.logit }
        }
        if options.topK > 0 { candidates.removeLast(max(0, candidates.count - options.topK)) }
        let largest = candidates.map(\.logit).max()!
        var probabilities = candidates.map { Double(exp($0.logit - largest)) }
        var total = probabilities.reduce(0, +)
        if options.topP > 0 {
            var cumulative = 0.0
            var keep = probabilities.count
            for (i, probability) in probabilities.enumerated() {
                cumulative += probability / total
                if cumulative >= Double(options.topP) {
                    keep = i + 1
                    break
                }
            }
            probabilities.removeLast(probabilities.count - keep)
            candidates.removeLast(candidates.count - keep)
            total = probabilities.reduce(0, +)
        }
        var draw = Double(random.nextUniform()) * total
        for (i, probability) in probabilities.enumerated() {
            draw -= probability
            if draw <= 0 { return candidates[i].id }
        }
        return candidates[candidates.count - 1].id
    }
}

extension GPTInference {
    /// Feeds `prompt`, then samples up to `count` tokens (stopping after `stop` when given, or at
    /// the model's last position); returns the generated tokens.
    public func generate(prompt: [Int32], count: Int, vocabularySize: Int, options: SamplingOptions,
                         seed: UInt64, stop: Int32? = nil) throws(GPTInputError) -> [Int32] {
        try generate(prompts: [prompt], count: count, vocabularySize: vocabularySize, options: options, seed: seed, stop: stop)[0]
    }

    /// `generate(prompt:...)` for several non-empty prompts at once, one sequence each (at most
    /// `sequences`), decoded side by side by a `BatchDecoder`. Each sequence samples with its own
    /// generator seeded with `seed`, as a `generate(prompt:...)` of it alone would, and stops
    /// where its tokens fill the model.
    public func generate(prompts: [[Int32]], count: Int, vocabularySize: Int, options: SamplingOptions,
                         seed: UInt64, stop: Int32? = nil) throws(GPTInputError) -> [[Int32]] {
        precondition(prompts.count <= sequences && prompts.allSatisfy { !$0.isEmpty }, "one non-empty prompt per sequence")
        let decoder = BatchDecoder(inference: self)
        var generated = prompts.map { _ in [Int32]() }
        guard count > 0 else { return generated }
        for i in prompts.indices {
            var random = RandomGenerator(seed: seed)
            decoder.add(prompt: prompts[i]) { logits in
                let token = Sampler.next(logits: logits, vocabularySize: vocabularySize, options: options, random: &random)
                generated[i].append(token)
                return token != stop && generated[i].count < count ? token : nil
            }
        }
        try decoder.run()
        return generated
    }
}
