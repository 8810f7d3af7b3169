import Models

/// Model and batch shape of one benchmark.
public struct BenchShape: Codable, Sendable {
    public var name: String
    public var vocab: Int, seqLength: Int, layers: Int, hidden: Int, heads: Int, microBatch: Int

    public init(name: String, vocab: Int, seqLength: Int, layers: Int, hidden: Int, heads: Int, microBatch: Int) {
        self.name = name
        self.vocab = vocab
        self.seqLength = seqLength
        self.layers = layers
        self.hidden = hidden
        self.heads = heads
        self.microBatch = microBatch
    }

    /// The GPT of this shape.
    public var gptConfig: GPTConfig {
        GPTConfig(numLayers: layers, hiddenSize: hidden, numAttentionHeads: heads,
                  maxPositionEmbeddings: seqLength, vocabSize: vocab)
    }

    /// Model FLOPs of one step (forward + backward, no recomputation), Narayanan et al. 2021.
    public var modelFLOPsPerStep: Double {
        gptConfig.modelFLOPs(batch: microBatch, seqLength: seqLength)
    }
}
