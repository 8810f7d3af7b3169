import Kernels
@testable import Models
import Testing

/// The up-front memory figures are the sizes the model really allocates.
@Suite struct GPTMemoryTests {
    static let config = GPTConfig(numLayers: 3, hiddenSize: 48, numAttentionHeads: 4, maxPositionEmbeddings: 40, vocabSize: 301)

    static let recomputations: [ActivationRecomputation] = [
        .none, ActivationRecomputation(granularity: .selective), ActivationRecomputation(granularity: .full),
        ActivationRecomputation(granularity: .full, method: .uniform, numLayers: 2),
        ActivationRecomputation(granularity: .full, method: .block, numLayers: 1),
    ]

    /// GPT, and BERT with each kind of head: masked LM with and without the sentence-order head,
    /// and a classification head (no logits over the vocabulary), with and without dropout.
    static let models: [GPTConfig] = [config] + [
        (BERTSettings(), 0), (BERTSettings(binaryHead: false), 0), (BERTSettings(head: .classification(classes: 3)), 0),
        (BERTSettings(head: .multipleChoice(choices: 3)), 0.1),
    ].map { settings, dropout in
        var bert = config
        bert.bert = settings
        bert.hiddenDropout = Float(dropout)
        return bert
    }

    @Test(arguments: [(1, true), (1, false), (2, true), (4, false)], recomputations)
    func activationAndScratchBytesAreWhatIsAllocated(layout: (tensorParallel: Int, head: Bool), recomputation: ActivationRecomputation) {
        let (t, head) = layout
        // Sequence parallelism needs the sequence to divide over the ranks: 16 tokens then.
        let shapes = [(seqLength: 17, sequenceParallel: false), (seqLength: 16, sequenceParallel: t > 1)]
        for model in Self.models {
          let name = model.bert.map { "BERT \($0.head) binary head \($0.binaryHead)" } ?? "GPT"
          for precision in ComputePrecision.allCases {
            for (seqLength, sequenceParallel) in shapes {
              let acts = GPTActivations(config: model, batch: 3, seqLength: seqLength, tensorParallel: t, layerCount: 3,
                                        head: head, recomputation: recomputation, precision: precision,
                                        sequenceParallel: sequenceParallel)
              #expect(GPTMemory.activationBytes(config: model, batch: 3, seqLength: seqLength, tensorParallel: t, layerCount: 3,
                                                head: head, recomputation: recomputation, precision: precision,
                                                sequenceParallel: sequenceParallel)
                      == Double(acts.allocatedBytes), "\(name) \(precision) SP \(sequenceParallel)")
              let scratch = GPTScratch(config: model, batch: 3, seqLength: seqLength, tensorParallel: t,
                                       recomputation: recomputation, layersPerChunk: 3, precision: precision, head: head,
                                       sequenceParallel: sequenceParallel)
              #expect(GPTMemory.scratchBytes(config: model, batch: 3, seqLength: seqLength, tensorParallel: t,
                                             threads: ThreadPool.current.threadCount, recomputation: recomputation,
                                             layersPerChunk: 3, precision: precision, head: head, sequenceParallel: sequenceParallel)
                      == Double(scratch.allocatedBytes), "\(name) \(precision) SP \(sequenceParallel)")
            }
          }
        }
    }

    /// Sequence parallelism divides a layer's LayerNorm and residual activations by t, which is
    /// what it is for: with TP 4 a layer saves less with it than without.
    @Test func sequenceParallelLayersSaveLess() {
        let without = GPTMemory.layerBytes(config: Self.config, batch: 3, seqLength: 16, tensorParallel: 4)
        let with = GPTMemory.layerBytes(config: Self.config, batch: 3, seqLength: 16, tensorParallel: 4, sequenceParallel: true)
        #expect(with < 0.6 * without)
    }

    /// bf16 keeps the LayerNorm and fc1 outputs in bf16: a layer saves less than in fp32.
    @Test func bf16LayersSaveLessThanFP32() {
        let fp32 = GPTMemory.layerBytes(config: Self.config, batch: 3, seqLength: 17, tensorParallel: 1)
        let bf16 = GPTMemory.layerBytes(config: Self.config, batch: 3, seqLength: 17, tensorParallel: 1, precision: .bf16)
        #expect(bf16 < 0.8 * fp32)
    }

    @Test func absurdShapesDoNotOverflow() {
        let huge = GPTConfig(numLayers: 1_000_000, hiddenSize: 32768, numAttentionHeads: 64, maxPositionEmbeddings: 100_000_000,
                             vocabSize: 50257)
        let bytes = GPTMemory.activationBytes(config: huge, batch: 8, seqLength: 100_000_000, tensorParallel: 1,
                                              layerCount: 1_000_000, head: true)
        #expect(bytes.isFinite && bytes > 1e21)
    }
}
