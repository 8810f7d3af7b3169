import Kernels
@testable import Models
import Parameters
import Testing
import TestSupport

/// The whole-model forward reuses its activations for a micro-batch with fewer tokens (scoring
/// and evaluation change the shape every forward): what a reused set computes equals what a fresh
/// one does, whatever the larger forward left in it.
@Suite struct ActivationReuseTests {
    static func model(_ precision: ComputePrecision, dropout: Bool = false) throws -> GPTModel {
        let config = GPTConfig(numLayers: 2, hiddenSize: 48, numAttentionHeads: 3, maxPositionEmbeddings: 32, vocabSize: 150,
                               hiddenDropout: dropout ? 0.1 : 0, attentionDropout: dropout ? 0.1 : 0)
        let model = try GPTModel(config: config, seed: 7, precision: precision)
        var random = RandomGenerator(seed: 3)
        random.fillNormal(model.params.buffer.pointer, count: model.layout.totalCount, std: 0.2)
        model.weightsDidChange()
        return model
    }

    /// Loss, logits and gradients of `batch x length` random tokens.
    static func run(_ model: GPTModel, batch: Int, length: Int, seed: UInt64, dropoutSample: Int? = nil) throws
        -> (loss: Double, logits: [Float], grads: [Float]) {
        var random = RandomGenerator(seed: seed)
        let tokens = (0..<batch * length).map { _ in Int32(random.next() % 150) }
        let targets = (0..<batch * length).map { _ in Int32(random.next() % 150) }
        model.zeroGrad()
        let totals = try model.forward(tokens: tokens, targets: targets, batch: batch, seqLength: length,
                                       dropoutSample: dropoutSample)
        let logits = Array(UnsafeBufferPointer(start: model.logits, count: batch * length * model.config.paddedVocabSize))
        model.backward()
        return (totals.mean, logits, Array(UnsafeBufferPointer(start: model.grads.buffer.pointer, count: model.layout.totalCount)))
    }

    @Test(arguments: [ComputePrecision.fp32, .bf16])
    func aSmallerShapeInALargerSetMatchesAFreshSet(precision: ComputePrecision) throws {
        let reused = try Self.model(precision)
        _ = try Self.run(reused, batch: 4, length: 32, seed: 1)  // fills every buffer
        let allocated = try #require(reused.activations)
        for (batch, length) in [(3, 17), (1, 32), (2, 5)] {
            let a = try Self.run(reused, batch: batch, length: length, seed: 2)
            #expect(reused.activations === allocated, "the set was reallocated for \(batch) x \(length)")
            let b = try Self.run(try Self.model(precision), batch: batch, length: length, seed: 2)  // a set made for this shape
            #expect(a.loss == b.loss, "\(batch) x \(length)")
            #expect(a.logits == b.logits, "\(batch) x \(length)")
            #expect(a.grads == b.grads, "\(batch) x \(length)")
        }
        // And back to the shape it was allocated for.
        #expect(try Self.run(reused, batch: 4, length: 32, seed: 4).logits
                    == Self.run(try Self.model(precision), batch: 4, length: 32, seed: 4).logits)
    }

    /// Fewer tokens but longer sequences than the set was made for: the activations fit, the
    /// attention's per-thread `[T, T]` scratch does not and is made anew.
    @Test func longerSequencesInFewerTokens() throws {
        let reused = try Self.model(.fp32), fresh = try Self.model(.fp32)
        _ = try Self.run(reused, batch: 8, length: 8, seed: 1)
        let allocated = try #require(reused.activations)
        let a = try Self.run(reused, batch: 1, length: 32, seed: 2), b = try Self.run(fresh, batch: 1, length: 32, seed: 2)
        #expect(reused.activations === allocated)
        #expect(a.logits == b.logits && a.grads == b.grads)
    }

    @Test func trainingForwardWithDropoutMatchesAFreshSet() throws {
        let reused = try Self.model(.fp32, dropout: true), fresh = try Self.model(.fp32, dropout: true)
        _ = try Self.run(reused, batch: 4, length: 32, seed: 1, dropoutSample: 0)
        let a = try Self.run(reused, batch: 2, length: 24, seed: 2, dropoutSample: 8)
        let b = try Self.run(fresh, batch: 2, length: 24, seed: 2, dropoutSample: 8)
        #expect(a.loss == b.loss && a.grads == b.grads)
    }
}
