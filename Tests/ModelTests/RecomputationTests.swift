import Distributed
import Kernels
import Models
import Parameters
import Testing

/// Recomputation re-runs the same kernels on the same inputs in the same order: the loss and
/// every gradient are bit-identical to the run that keeps every activation.
@Suite struct RecomputationTests {
    static let config = GPTConfig(numLayers: 4, hiddenSize: 32, numAttentionHeads: 4, maxPositionEmbeddings: 16, vocabSize: 96)

    static let policies: [ActivationRecomputation] = [
        ActivationRecomputation(granularity: .selective),
        ActivationRecomputation(granularity: .full, method: .uniform, numLayers: 1),
        ActivationRecomputation(granularity: .full, method: .uniform, numLayers: 3),
        ActivationRecomputation(granularity: .full, method: .uniform, numLayers: 4),
        ActivationRecomputation(granularity: .full, method: .block, numLayers: 1),
        ActivationRecomputation(granularity: .full, method: .block, numLayers: 3),
    ]

    static func batch() -> (tokens: [Int32], targets: [Int32]) {
        var random = RandomGenerator(seed: 7)
        let tokens = (0..<(2 * 16)).map { _ in Int32(random.next() % 96) }
        let targets = (0..<(2 * 16)).map { _ in Int32(random.next() % 96) }
        return (tokens, targets)
    }

    /// Loss and gradients of two micro-batches accumulated (the second reuses the buffers).
    static func run(_ recomputation: ActivationRecomputation, tensorParallel: Communicator? = nil,
                    precision: ComputePrecision = .fp32) throws -> (losses: [Double], grads: [Float]) {
        let model = try GPTModel(config: config, seed: 3, tensorParallel: tensorParallel, recomputation: recomputation,
                                 precision: precision)
        let (tokens, targets) = batch()
        var losses = [Double]()
        for shift in 0..<2 {
            let shifted = targets.map { ($0 + Int32(shift)) % 96 }
            losses.append(try model.forward(tokens: tokens, targets: shifted, batch: 2, seqLength: 16).mean)
            model.backward(gradientScale: 0.5)
        }
        return (losses, model.grads.buffer.array)
    }

    @Test(arguments: policies)
    func lossesAndGradientsAreBitIdentical(_ recomputation: ActivationRecomputation) throws {
        for precision in ComputePrecision.allCases {
            let reference = try Self.run(.none, precision: precision)
            let recomputed = try Self.run(recomputation, precision: precision)
            #expect(recomputed.losses == reference.losses, "\(recomputation) in \(precision)")
            #expect(recomputed.grads == reference.grads, "\(recomputation) in \(precision)")
        }
    }

    @Test func tensorParallelRecomputationIsBitIdenticalToItsOwnKeptRun() throws {
        let recomputation = ActivationRecomputation(granularity: .full, method: .uniform, numLayers: 2)
        let runs = try ThreadCommunicator.run(size: 2) { group in
            (try Self.run(.none, tensorParallel: group), try Self.run(recomputation, tensorParallel: group))
        }
        for (kept, recomputed) in runs {
            #expect(recomputed.losses == kept.losses && recomputed.grads == kept.grads)
        }
    }

    @Test func groupsThatDoNotFitAChunkAreAnError() throws {
        #expect(throws: ConfigurationError.invalid(flag: "--recompute-num-layers",
                                                   reason: "5 does not fit the 4 layers of a model chunk (pipeline stage)")) {
            try GPTModel(config: Self.config, recomputation: ActivationRecomputation(granularity: .full, method: .block, numLayers: 5))
        }
        let part = try GPTPipelinePart(numLayers: 4, stages: 2, stage: 0)
        #expect(throws: ConfigurationError.self) {
            try GPTModel(config: Self.config, part: part, recomputation: ActivationRecomputation(granularity: .full, numLayers: 3))
        }
    }

    @Test func savedActivationsShrink() {
        func bytes(_ recomputation: ActivationRecomputation) -> Double {
            GPTMemory.activationBytes(config: Self.config, batch: 2, seqLength: 16, tensorParallel: 1, layerCount: 4, head: false,
                                      recomputation: recomputation)
        }
        let kept = bytes(.none)
        #expect(bytes(ActivationRecomputation(granularity: .selective)) < kept)
        #expect(bytes(ActivationRecomputation(granularity: .full, numLayers: 1)) < bytes(ActivationRecomputation(granularity: .selective)))
        #expect(bytes(ActivationRecomputation(granularity: .full, numLayers: 4)) < bytes(ActivationRecomputation(granularity: .full, numLayers: 1)))
    }
}
