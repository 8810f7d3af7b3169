import Kernels
import Models
import Optimizer
import Parameters
import Testing

@Suite struct GPTTrainingTests {
    static let tiny = GPTConfig(numLayers: 2, hiddenSize: 32, numAttentionHeads: 2, maxPositionEmbeddings: 16,
                                vocabSize: 100)

    @Test func tinyModelOverfitsOneBatch() throws {
        let model = try GPTModel(config: Self.tiny, seed: 42)
        let optimizer = AdamWOptimizer(layout: model.layout,
                                       hyperparameters: AdamW.Hyperparameters(learningRate: 3e-3, weightDecay: 0))
        let batch = 4, t = 16
        var rng = RandomGenerator(seed: 7)
        let data = (0..<(batch * (t + 1))).map { _ in Int32(rng.next() % 100) }
        var tokens = [Int32](), targets = [Int32]()
        for b in 0..<batch {
            tokens += data[(b * (t + 1))..<(b * (t + 1) + t)]
            targets += data[(b * (t + 1) + 1)..<((b + 1) * (t + 1))]
        }
        var losses: [Double] = []
        for _ in 0..<300 {
            model.zeroGrad()
            losses.append(try model.forward(tokens: tokens, targets: targets, batch: batch, seqLength: t).mean)
            if losses.last! < 0.1 { break }
            model.backward()
            optimizer.update(params: model.params, grads: model.grads)
        }
        print("overfit: loss \(losses.first!) -> \(losses.last!) in \(losses.count - 1) steps")
        #expect(losses.first! > 4)  // about ln(128) at init
        #expect(losses.last! < 0.1, "loss after \(losses.count) steps: \(losses.last!)")
    }

    @Test func paddedVocabularyFollowsMegatron() {
        var config = Self.tiny
        config.vocabSize = 50257
        #expect(config.paddedVocabSize == 50304)
        config.makeVocabSizeDivisibleBy = 128 * 8
        #expect(config.paddedVocabSize == 51200)
    }

    @Test func badInputIsRejectedWithAClearError() throws {
        let model = try GPTModel(config: Self.tiny)
        let tokens: [Int32] = [1, 2, 500, 3]
        let targets: [Int32] = [2, 3, 4, 5]
        #expect(throws: GPTInputError.tokenOutOfRange(position: 2, id: 500, vocabSize: 128)) {
            try model.forward(tokens: tokens, targets: targets, batch: 1, seqLength: 4)
        }
        #expect(throws: GPTInputError.sequenceTooLong(seqLength: 32, maxPositionEmbeddings: 16)) {
            try model.forward(tokens: [Int32](repeating: 0, count: 32), targets: [Int32](repeating: 0, count: 32),
                              batch: 1, seqLength: 32)
        }
        var bad = Self.tiny
        bad.numAttentionHeads = 3
        #expect(throws: ConfigurationError.self) { try GPTModel(config: bad) }
    }

    @Test func initializationFollowsMegatron() throws {
        let config = GPTConfig(numLayers: 4, hiddenSize: 64, numAttentionHeads: 4, maxPositionEmbeddings: 32, vocabSize: 300)
        let model = try GPTModel(config: config, seed: 3)
        func std(_ name: String) -> Float {
            let v = model.params.values(name)
            let mean = v.reduce(0, +) / Float(v.count)
            return (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(v.count)).squareRoot()
        }
        #expect(abs(std("embedding.word_embeddings.weight") - 0.02) < 0.001)
        #expect(abs(std("decoder.layers.0.mlp.linear_fc1.weight") - 0.02) < 0.001)
        #expect(abs(std("decoder.layers.3.mlp.linear_fc2.weight") - 0.02 / Float(8).squareRoot()) < 0.0005)
        #expect(model.params.values("decoder.layers.1.input_layernorm.weight").allSatisfy { $0 == 1 })
        #expect(model.params.values("decoder.layers.1.self_attention.linear_qkv.bias").allSatisfy { $0 == 0 })
        #expect(config.parameterCount == model.layout.totalCount)
    }
}
