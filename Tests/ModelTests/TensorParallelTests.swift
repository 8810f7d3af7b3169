import Distributed
import Kernels
import Models
import Parameters
import TestSupport
import Testing

/// Tensor-parallel layers, with and without sequence parallelism, against the single-rank model:
/// same seed, same batch, ranks as threads. Loss within 5e-8 and every gradient assembled from the shards within 2e-6 relative
/// (observed: 1.0e-8 and 6.3e-7).
@Suite struct TensorParallelTests {
    static let config = GPTConfig(numLayers: 2, hiddenSize: 64, numAttentionHeads: 4, maxPositionEmbeddings: 16,
                                  vocabSize: 200)  // padded to 256
    /// The same with the true vocabulary bounding the softmax: with TP 4 the last rank's range
    /// (192..<256) holds 8 valid ids, with TP 2 the second (128..<256) holds 72.
    static let maskedConfig = GPTConfig(numLayers: 2, hiddenSize: 64, numAttentionHeads: 4, maxPositionEmbeddings: 16,
                                        vocabSize: 200, maskPaddedVocabulary: true)

    static func batch() -> (tokens: [Int32], targets: [Int32], mask: [Float]) {
        var random = RandomGenerator(seed: 42)
        let n = 2 * 16
        let tokens = (0..<n).map { _ in Int32(random.next() % 200) }
        var targets = (0..<n).map { _ in Int32(random.next() % 200) }
        targets[5] = CrossEntropy.ignoreIndex
        let mask = (0..<n).map { $0 % 7 == 3 ? Float(0) : Float(1) }
        return (tokens, targets, mask)
    }

    @Test(arguments: [(2, false, false), (4, false, false), (2, true, false), (4, true, false), (2, false, true), (4, true, true)])
    func forwardAndBackwardMatchOneRank(tensorParallel t: Int, masked: Bool, sequenceParallel: Bool) throws {
        let (tokens, targets, mask) = Self.batch()
        let config = masked ? Self.maskedConfig : Self.config
        let reference = try GPTModel(config: config, seed: 9)
        let referenceLoss = try reference.forward(tokens: tokens, targets: targets, lossMask: mask, batch: 2, seqLength: 16).mean
        reference.backward(gradientScale: 1)

        let shards = try ThreadCommunicator.run(size: t) { comm -> (loss: Double, grads: [[Float]]) in
            let model = try GPTModel(config: config, seed: 9, tensorParallel: comm, sequenceParallel: sequenceParallel)
            let loss = try model.forward(tokens: tokens, targets: targets, lossMask: mask, batch: 2, seqLength: 16).mean
            model.backward(gradientScale: 1)
            model.allReduceSequenceParallelGradients()
            let grads = model.layout.specs.indices.map { model.grads.values(model.layout.specs[$0].name) }
            return (loss, grads)
        }
        for shard in shards { #expect(abs(shard.loss - referenceLoss) <= 5e-8 * abs(referenceLoss)) }
        var worst = 0.0
        for (index, spec) in reference.layout.specs.enumerated() {
            let kind = TensorShard(name: spec.name)
            let full = Self.assemble(shards.map { $0.grads[index] }, spec: spec)
            for rank in 0..<t where kind == .replicated {  // every rank computes the same full gradient
                #expect(relativeError(shards[rank].grads[index], shards[0].grads[index]) <= 1e-6, "\(spec.name)")
            }
            let error = relativeError(full, reference.grads.values(spec.name))
            worst = max(worst, error)
            #expect(error <= 2e-6, "\(spec.name): \(error)")
        }
        if masked { #expect(reference.grads.values(wordEmbeddingName)[(200 * 64)...].allSatisfy { $0 == 0 }) }
        print("TP \(t)\(sequenceParallel ? " SP" : "")\(masked ? " (true vocabulary)" : ""): loss \(shards[0].loss) vs \(referenceLoss), worst gradient relative error \(worst)")
    }

    /// The whole tensor `spec` from the tensor-parallel ranks' shards of it, in rank order.
    static func assemble(_ shards: [[Float]], spec: ParameterSpec) -> [Float] {
        let kind = TensorShard(name: spec.name)
        var full = [Float](repeating: 0, count: spec.count)
        for (rank, shard) in shards.enumerated() {
            shard.withUnsafeBufferPointer { shard in
                full.withUnsafeMutableBufferPointer { out in
                    kind.place(shard.baseAddress!, into: out.baseAddress!, fullShape: spec.shape, rank: rank, size: shards.count)
                }
            }
        }
        return full
    }
}
