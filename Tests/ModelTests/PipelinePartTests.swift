import Kernels
import Models
import Parameters
import Testing

/// Pipeline stages of a GPT: which layers each chunk holds, and the chunks run one after another
/// (activations passed forward, their gradients back, by hand) equal the whole model.
@Suite struct PipelinePartTests {
    @Test func layersOfStagesAndVirtualStages() throws {
        let plain = try (0..<4).map { try GPTPipelinePart(numLayers: 8, stages: 4, stage: $0) }
        #expect(plain.map(\.chunkLayers) == [[0..<2], [2..<4], [4..<6], [6..<8]])
        #expect(plain.map(\.holdsEmbedding) == [true, false, false, false])
        #expect(plain.map(\.holdsHead) == [false, false, false, true])
        #expect(plain.map(\.holdsWordEmbedding) == [true, false, false, true])
        let interleaved = try (0..<2).map { try GPTPipelinePart(numLayers: 8, stages: 2, stage: $0, chunks: 2) }
        #expect(interleaved.map(\.chunkLayers) == [[0..<2, 4..<6], [2..<4, 6..<8]])
        #expect(interleaved[0].embeds(chunk: 0) && !interleaved[0].embeds(chunk: 1))
        #expect(interleaved[1].computesLoss(chunk: 1) && !interleaved[1].computesLoss(chunk: 0))
        #expect(throws: ConfigurationError.invalid(flag: "--pipeline-model-parallel-size", reason: "4 stages do not divide --num-layers 6")) {
            try GPTPipelinePart(numLayers: 6, stages: 4, stage: 0)
        }
        #expect(throws: ConfigurationError.self) { try GPTPipelinePart(numLayers: 8, stages: 2, stage: 0, chunks: 3) }
        #expect(throws: ConfigurationError.self) { try GPTPipelinePart(numLayers: 8, stages: 2, stage: 2) }
        // A part cut from another depth is refused by the model.
        let config = GPTConfig(numLayers: 8, hiddenSize: 32, numAttentionHeads: 2, maxPositionEmbeddings: 8, vocabSize: 100)
        #expect(throws: ConfigurationError.self) {
            try GPTModel(config: config, part: try GPTPipelinePart(numLayers: 4, stages: 2, stage: 1))
        }
    }

    @Test func stagesPartitionTheParameters() throws {
        let config = GPTConfig(numLayers: 4, hiddenSize: 32, numAttentionHeads: 2, maxPositionEmbeddings: 8, vocabSize: 100)
        let whole = Set(GPTModel.parameterSpecs(config).map(\.name))
        var seen = [String: Int]()
        for stage in 0..<2 {
            let part = try GPTPipelinePart(numLayers: 4, stages: 2, stage: stage, chunks: 2)
            for spec in GPTModel.parameterSpecs(config, part: part) { seen[spec.name, default: 0] += 1 }
        }
        #expect(Set(seen.keys) == whole)
        // Only the tied word embedding is on two stages (the first and the last).
        #expect(seen.filter { $0.value > 1 }.map(\.key) == ["embedding.word_embeddings.weight"])
    }

    /// p = 2, v = 2: virtual stages 0..3 run in order on one thread.
    @Test func chunksInOrderEqualTheWholeModel() throws {
        let config = GPTConfig(numLayers: 4, hiddenSize: 32, numAttentionHeads: 2, maxPositionEmbeddings: 8, vocabSize: 100)
        var random = RandomGenerator(seed: 3)
        let (batch, seq) = (2, 8)
        let tokens = (0..<batch * seq).map { _ in Int32(random.next() % 100) }
        let targets = (0..<batch * seq).map { _ in Int32(random.next() % 100) }
        let whole = try GPTModel(config: config, seed: 11)
        let wholeLoss = try whole.forward(tokens: tokens, targets: targets, batch: batch, seqLength: seq).mean
        whole.backward(gradientScale: 0.5)

        let stages = try (0..<2).map { stage in
            try GPTModel(config: config, seed: 11, part: try GPTPipelinePart(numLayers: 4, stages: 2, stage: stage, chunks: 2))
        }
        let order = [(0, 0), (1, 0), (0, 1), (1, 1)]  // (stage, chunk) by virtual stage
        let acts = order.map { stages[$0.0].makeActivations(chunk: $0.1, batch: batch, seqLength: seq) }
        var loss = 0.0
        for (s, (stage, chunk)) in order.enumerated() {
            try stages[stage].load(tokens: tokens, targets: targets, lossMask: nil, into: acts[s])
            if s > 0 { acts[s].input.update(from: acts[s - 1].output, count: acts[s].hiddenCount) }
            if let totals = stages[stage].forward(chunk: chunk, activations: acts[s]) { loss = totals.mean }
        }
        #expect(loss == wholeLoss)
        for (s, (stage, chunk)) in order.enumerated().reversed() {
            if s < order.count - 1 { acts[s].outputGradient.update(from: acts[s + 1].inputGradient, count: acts[s].hiddenCount) }
            stages[stage].backward(chunk: chunk, activations: acts[s], gradientScale: 0.5)
        }
        // Every stage's gradients equal the whole model's; the word embedding's are the sum of
        // the first stage's (input) and the last's (output layer), so only rounding differs.
        let name = "embedding.word_embeddings.weight"
        for model in stages {
            for spec in model.layout.specs where spec.name != name {
                #expect(model.grads.values(spec.name) == whole.grads.values(spec.name), "\(spec.name)")
            }
        }
        let summed = zip(stages[0].grads.values(name), stages[1].grads.values(name)).map { $0 + $1 }
        let expected = whole.grads.values(name)
        let error = zip(summed, expected).map { abs($0 - $1) }.max()!
        #expect(error <= 1e-6 * expected.map(abs).max()!)
    }
}
