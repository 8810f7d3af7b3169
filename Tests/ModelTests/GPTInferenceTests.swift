import Kernels
import Models
import Parameters
import Testing
import TestSupport

/// KV-cached decoding against full recomputation.
@Suite struct GPTInferenceTests {
    static func model(precision: ComputePrecision = .fp32) throws -> GPTModel {
        let config = GPTConfig(numLayers: 2, hiddenSize: 48, numAttentionHeads: 3, maxPositionEmbeddings: 24, vocabSize: 150)
        let model = try GPTModel(config: config, seed: 7, precision: precision)
        // Larger weights than the 0.02 init so that attention is far from uniform.
        var random = RandomGenerator(seed: 3)
        random.fillNormal(model.params.buffer.pointer, count: model.layout.totalCount, std: 0.2)
        return model
    }

    @Test func cachedLogitsEqualFullRecomputation() throws {
        let model = try Self.model()
        var random = RandomGenerator(seed: 11)
        let tokens = (0..<24).map { _ in Int32(random.next() % 150) }
        let targets = [Int32](repeating: 0, count: tokens.count)
        try model.forward(tokens: tokens, targets: targets, batch: 1, seqLength: tokens.count)
        let vocab = model.config.paddedVocabSize
        let full = Array(UnsafeBufferPointer(start: model.logits, count: tokens.count * vocab))
        let inference = GPTInference(model: model)
        var worst: Float = 0, scale: Float = 0
        for (t, token) in tokens.enumerated() {
            let logits = try inference.append(token)
            for v in 0..<vocab {
                worst = max(worst, abs(logits[v] - full[t * vocab + v]))
                scale = max(scale, abs(full[t * vocab + v]))
            }
        }
        print("KV cache: max |cached - full| = \(worst) (logits up to \(scale))")
        #expect(worst <= 1e-5 * max(1, scale))
        #expect(throws: GPTInputError.self) { try inference.append(1) }  // past the last position
    }

    /// A prompt fed at once (prefill: many rows of one slot in a forward) gives the logits of its
    /// last position as feeding it token by token does, in fp32 and in bf16, alone and beside a
    /// sequence that decodes one token; the positions and caches then continue as usual.
    @Test(arguments: [ComputePrecision.fp32, .bf16])
    func prefillEqualsTokenByToken(precision: ComputePrecision) throws {
        let model = try Self.model(precision: precision)
        var random = RandomGenerator(seed: 21)
        let prompt = (0..<13).map { _ in Int32(random.next() % 150) }, other: [Int32] = [4, 9]
        let vocab = model.config.paddedVocabSize
        let stepwise = GPTInference(model: model, sequences: 2)
        for token in prompt.dropLast() { try stepwise.append([token], slots: [0]) }
        try stepwise.append([other[0]], slots: [1])
        let expected = Array(try stepwise.append([prompt.last!, other[1]], slots: [0, 1]))
        let expectedNext = Array(try stepwise.append([7], slots: [0]))

        let prefill = GPTInference(model: model, sequences: 2)
        try prefill.append([other[0]], slots: [1])
        let logits = Array(try prefill.append(prompt + [other[1]], slots: Array(repeating: 0, count: prompt.count) + [1]))
        #expect(prefill.lengths == [13, 2])
        let tolerance = precision == .fp32 ? 1e-5 : 2e-2  // bf16: GEMMs over other row counts round differently
        #expect(relativeError(Array(logits[0..<vocab]), Array(expected[0..<vocab])) < tolerance)
        #expect(relativeError(Array(logits[vocab..<(2 * vocab)]), Array(expected[vocab..<(2 * vocab)])) < tolerance)
        #expect(relativeError(Array(try prefill.append([7], slots: [0])), expectedNext) < tolerance)
    }

    /// A sequence of a whole-model padded forward (the server's prompt scoring), adopted as a
    /// slot's cached positions, decodes on as the same prompt read by prefill does, in fp32 and
    /// bf16, beside another slot; a forward that kept no QKV (full recomputation), a row or length
    /// it does not hold, or no forward at all is refused without touching the slot.
    @Test(arguments: [ComputePrecision.fp32, .bf16])
    func adoptedForwardDecodesAsPrefill(precision: ComputePrecision) throws {
        let model = try Self.model(precision: precision)
        var random = RandomGenerator(seed: 31)
        let long = (0..<13).map { _ in Int32(random.next() % 150) }, prompt = (0..<9).map { _ in Int32(random.next() % 150) }
        let vocab = model.config.paddedVocabSize
        let prefill = GPTInference(model: model, sequences: 2)
        try prefill.append(prompt, slots: Array(repeating: 1, count: prompt.count))
        let expected = Array(try prefill.append([7, 3], slots: [1, 1])) + Array(try prefill.append([5], slots: [1]))

        let adopted = GPTInference(model: model, sequences: 2)
        #expect(!adopted.adoptForward(row: 0, count: 3, into: 1), "no forward yet")
        try model.forward(padded: [long, prompt])
        #expect(!adopted.adoptForward(row: 2, count: 3, into: 1) && !adopted.adoptForward(row: 1, count: 14, into: 1))
        #expect(adopted.lengths == [0, 0])
        try adopted.append([4], slots: [0])
        #expect(adopted.adoptForward(row: 1, count: prompt.count, into: 1))
        #expect(adopted.lengths == [1, prompt.count])
        let continued = Array(try adopted.append([7, 3], slots: [1, 1])) + Array(try adopted.append([5], slots: [1]))
        let tolerance = precision == .fp32 ? 1e-5 : 2e-2  // bf16: GEMMs over other row counts round differently
        #expect(relativeError(continued, expected) < tolerance)
        #expect(continued.count == 2 * vocab)

        let recomputed = try GPTModel(config: model.config, seed: 7, recomputation: ActivationRecomputation(granularity: .full),
                                      precision: precision)
        try recomputed.forward(padded: [prompt])
        #expect(!GPTInference(model: recomputed).adoptForward(row: 0, count: prompt.count, into: 0))
    }

    /// bf16 decoding (bf16 GEMMs, bf16 cache) against the full bf16 forward: equal at bf16's
    /// resolution (a one-row GEMM may sum in another order and round the other way), and
    /// different from fp32's logits by bf16 rounding, not more.
    @Test func bf16CachedLogitsTrackTheFullBF16Forward() throws {
        let model = try Self.model(precision: .bf16)
        let fp32 = try Self.model()
        var random = RandomGenerator(seed: 11)
        let tokens = (0..<24).map { _ in Int32(random.next() % 150) }
        let targets = [Int32](repeating: 0, count: tokens.count)
        try model.forward(tokens: tokens, targets: targets, batch: 1, seqLength: tokens.count)
        try fp32.forward(tokens: tokens, targets: targets, batch: 1, seqLength: tokens.count)
        let vocab = model.config.paddedVocabSize
        let full = Array(UnsafeBufferPointer(start: model.logits, count: tokens.count * vocab))
        let exact = Array(UnsafeBufferPointer(start: fp32.logits, count: tokens.count * vocab))
        let inference = GPTInference(model: model)
        var cached = [Float]()
        for token in tokens { cached += Array(try inference.append(token)) }
        let versusFull = relativeError(cached, full), versusFP32 = relativeError(cached, exact)
        print("bf16 KV cache: logits vs the full bf16 forward \(versusFull), vs fp32 \(versusFP32)")
        // Observed: 9.1e-4 and 3.5e-3.
        #expect(versusFull < 4e-3)
        #expect(versusFP32 < 1e-2 && versusFP32 > 1e-5)
    }

    @Test func greedyIsDeterministicAndSamplingFollowsTheSeed() throws {
        let model = try Self.model()
        let inference = GPTInference(model: model)
        let greedy = SamplingOptions(temperature: 0)
        let a = try inference.generate(prompt: [1, 2, 3], count: 10, vocabularySize: 150, options: greedy, seed: 1)
        let b = try inference.generate(prompt: [1, 2, 3], count: 10, vocabularySize: 150, options: greedy, seed: 99)
        #expect(a == b && a.count == 10)
        // Greedy picks the argmax of the full model's logits at every step.
        let sequence: [Int32] = [1, 2, 3] + a
        try model.forward(tokens: sequence, targets: [Int32](repeating: 0, count: sequence.count), batch: 1, seqLength: sequence.count)
        let vocab = model.config.paddedVocabSize
        for step in 0..<a.count {
            let row = UnsafeBufferPointer(start: model.logits + (2 + step) * vocab, count: 150)
            #expect(Int32(row.indices.max { row[$0] < row[$1] }!) == a[step])
        }
        let sampled = SamplingOptions(temperature: 1, topK: 5)
        let c = try inference.generate(prompt: [1], count: 12, vocabularySize: 150, options: sampled, seed: 5)
        let d = try inference.generate(prompt: [1], count: 12, vocabularySize: 150, options: sampled, seed: 5)
        let e = try inference.generate(prompt: [1], count: 12, vocabularySize: 150, options: sampled, seed: 6)
        #expect(c == d && c != e)
        #expect(c.allSatisfy { $0 < 150 })
        #expect(throws: ConfigurationError.self) { try SamplingOptions(topK: 5, topP: 0.9).validate() }
    }

    @Test func topKAndTopPKeepOnlyTheLikeliestTokens() {
        let logits: [Float] = [0, 5, 4, 3, -1, 2]
        var random = RandomGenerator(seed: 1)
        var seen = Set<Int32>()
        logits.withUnsafeBufferPointer { buffer in
            for _ in 0..<200 {
                seen.insert(Sampler.next(logits: buffer, vocabularySize: 6, options: SamplingOptions(topK: 2), random: &random))
            }
        }
        #expect(seen == [1, 2])
        seen = []
        logits.withUnsafeBufferPointer { buffer in
            for _ in 0..<200 {  // p(1) = 0.64, p(2) = 0.24: 0.8 is reached with two tokens
                seen.insert(Sampler.next(logits: buffer, vocabularySize: 6, options: SamplingOptions(topP: 0.8), random: &random))
            }
        }
        #expect(seen == [1, 2])
    }

    /// Several sequences decoded side by side, each at its own position, give each sequence's
    /// logits alone (to the rounding of a GEMM over more rows), and batched generation gives
    /// what generating each prompt alone gives.
    @Test func sequencesDecodedTogetherMatchEachAlone() throws {
        let model = try Self.model()
        var random = RandomGenerator(seed: 5)
        let streams = (0..<3).map { s in (0..<(10 + 4 * s)).map { _ in Int32(random.next() % 150) } }
        var alone = [[Float]]()
        for stream in streams {
            let inference = GPTInference(model: model)
            var logits = [Float]()
            for token in stream { logits += Array(try inference.append(token)) }
            alone.append(logits)
        }
        let together = GPTInference(model: model, sequences: 3)
        var logits = streams.map { _ in [Float]() }
        let vocab = model.config.paddedVocabSize
        for step in 0..<streams.map(\.count).max()! {
            let slots = streams.indices.filter { step < streams[$0].count }
            let rows = try together.append(slots.map { streams[$0][step] }, slots: slots)
            for (r, slot) in slots.enumerated() { logits[slot] += Array(rows[(r * vocab)..<((r + 1) * vocab)]) }
        }
        for s in streams.indices { #expect(relativeError(logits[s], alone[s]) < 1e-5, "sequence \(s)") }
        #expect(together.lengths == streams.map(\.count))

        let prompts: [[Int32]] = [[1, 2, 3], [7], [9, 9, 9, 9, 9, 9]]
        let greedy = SamplingOptions(temperature: 0)
        let batched = try together.generate(prompts: prompts, count: 8, vocabularySize: 150, options: greedy, seed: 1)
        let single = GPTInference(model: model)
        for (prompt, result) in zip(prompts, batched) {
            #expect(result == (try single.generate(prompt: prompt, count: 8, vocabularySize: 150, options: greedy, seed: 1)))
        }
        // Near the last position a sequence stops on its own: 24 positions, an 18-token prompt.
        let long = try together.generate(prompts: [Array(repeating: 4, count: 18), [5]], count: 20, vocabularySize: 150,
                                         options: greedy, seed: 1)
        #expect(long[0].count == 6 && long[1].count == 20)
    }
}
