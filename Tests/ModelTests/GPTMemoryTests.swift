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

    @Test(arguments: [(1, true), (1, false), (2, true), (4, false)], recomputations)
    func activationAndScratchBytesAreWhatIsAllocated(layout: (tensorParallel: Int, head: Bool), recomputation: ActivationRecomputation) {
        for precision in ComputePrecision.allCases {
            let (t, head) = layout
            let acts = GPTActivations(config: Self.config, batch: 3, seqLength: 17, tensorParallel: t, layerCount: 3, head: head,
                                      recomputation: recomputation, precision: precision)
            #expect(GPTMemory.activationBytes(config: Self.config, batch: 3, seqLength: 17, tensorParallel: t, layerCount: 3,
                                              head: head, recomputation: recomputation, precision: precision)
                    == Double(acts.allocatedBytes), "\(precision)")
            let scratch = GPTScratch(config: Self.config, batch: 3, seqLength: 17, tensorParallel: t, recomputation: recomputation,
                                     layersPerChunk: 3, precision: precision, head: head)
            #expect(GPTMemory.scratchBytes(config: Self.config, batch: 3, seqLength: 17, tensorParallel: t,
                                           threads: ThreadPool.current.threadCount, recomputation: recomputation,
                                           layersPerChunk: 3, precision: precision, head: head)
                    == Double(scratch.allocatedBytes), "\(precision)")
        }
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
