import Models
import Testing

/// A model shape whose tensors or byte counts would not fit `Int` (from flags, a checkpoint's
/// metadata or a Hugging Face config) is an error naming the size, not an overflow trap later.
@Suite struct GPTConfigBoundsTests {
    static func config(layers: Int = 2, hidden: Int = 32, ffn: Int? = nil, positions: Int = 16,
                       vocab: Int = 64, epsilon: Float = 1e-5) -> GPTConfig {
        GPTConfig(numLayers: layers, hiddenSize: hidden, numAttentionHeads: 4, maxPositionEmbeddings: positions,
                  vocabSize: vocab, layerNormEpsilon: epsilon, ffnHiddenSize: ffn)
    }

    @Test func sizesBeyondTheLimitsAreErrors() {
        #expect(throws: ConfigurationError.invalid(flag: "--hidden-size",
                                                   reason: "10000000000 is more than this implementation supports (at most 16777216)")) {
            try Self.config(hidden: 10_000_000_000, ffn: 4).validate()
        }
        #expect(throws: ConfigurationError.invalid(flag: "--num-layers",
                                                   reason: "1000000000000 is more than this implementation supports (at most 65536)")) {
            try Self.config(layers: 1_000_000_000_000).validate()
        }
        #expect(throws: ConfigurationError.invalid(flag: "--vocab-size",
                                                   reason: "4294967296 is more than this implementation supports (at most 2147483647)")) {
            try Self.config(vocab: 1 << 32).validate()
        }
    }

    @Test func tooManyParametersIsAnError() throws {
        // Every width within its limit, but 65,536 layers of width 2^22 are 1.4e19 parameters.
        let error = try #require(throws: ConfigurationError.self) {
            try Self.config(layers: 1 << 16, hidden: 1 << 22).validate()
        }
        #expect(error.description.hasPrefix("invalid --hidden-size: the model would have about"))
        // A 1T-parameter shape is fine.
        try GPTConfig(numLayers: 128, hiddenSize: 25600, numAttentionHeads: 160, maxPositionEmbeddings: 2048,
                      vocabSize: 51200).validate()
    }

    @Test func layerNormEpsilonMustBePositiveAndFinite() throws {
        for epsilon in [Float(0), -1, .nan, .infinity] {
            #expect(throws: ConfigurationError.self) { try Self.config(epsilon: epsilon).validate() }
        }
        try Self.config(epsilon: 1e-12).validate()
    }
}
