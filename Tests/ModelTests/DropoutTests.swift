import Distributed
import Kernels
import Models
import Parameters
import TestSupport
import Testing

/// Hidden and attention dropout (Megatron's `--hidden-dropout`, `--attention-dropout`): the
/// backward uses the forward's masks, recomputation replays them, any tensor-parallel split
/// (with or without sequence parallelism) draws what one rank draws, and an evaluation forward
/// drops nothing.
@Suite struct DropoutTests {
    static let config = GPTConfig(numLayers: 2, hiddenSize: 32, numAttentionHeads: 4, maxPositionEmbeddings: 16, vocabSize: 96,
                                  hiddenDropout: 0.2, attentionDropout: 0.3)

    static func batch() -> (tokens: [Int32], targets: [Int32]) {
        var random = RandomGenerator(seed: 11)
        let tokens = (0..<(2 * 16)).map { _ in Int32(random.next() % 96) }
        let targets = (0..<(2 * 16)).map { _ in Int32(random.next() % 96) }
        return (tokens, targets)
    }

    /// Loss and gradients of two training micro-batches (samples 40-41 and 42-43) accumulated.
    static func run(config: GPTConfig = config, recomputation: ActivationRecomputation = .none,
                    tensorParallel: Communicator? = nil, sequenceParallel: Bool = false,
                    precision: ComputePrecision = .fp32) throws -> (losses: [Double], grads: [[Float]]) {
        let model = try GPTModel(config: config, seed: 5, tensorParallel: tensorParallel, recomputation: recomputation,
                                 precision: precision, sequenceParallel: sequenceParallel)
        let (tokens, targets) = batch()
        var losses = [Double]()
        for sample in [40, 42] {
            losses.append(try model.forward(tokens: tokens, targets: targets, batch: 2, seqLength: 16, dropoutSample: sample).mean)
            model.backward(gradientScale: 0.5)
        }
        model.allReduceSequenceParallelGradients()
        return (losses, model.layout.specs.map { model.grads.values($0.name) })
    }

    /// Central differences of the loss (same masks: same samples) against the backward, on the
    /// parameters with the largest gradients of every tensor kind. fp32 differences of a loss
    /// near 4.5 resolve a gradient to about 1e-3 absolute. Weights of std 0.2, so that the
    /// output depends on what is dropped.
    @Test func gradientsMatchFiniteDifferencesUnderTheSameMasks() throws {
        var config = Self.config
        config.initMethodStd = 0.2
        let model = try GPTModel(config: config, seed: 5)
        let (tokens, targets) = Self.batch()
        func loss() throws -> Double {
            try model.forward(tokens: tokens, targets: targets, batch: 2, seqLength: 16, dropoutSample: 40).mean
        }
        let base = try loss()
        model.backward()
        let undropped = try model.forward(tokens: tokens, targets: targets, batch: 2, seqLength: 16).mean
        #expect(abs(undropped - base) > 1e-2, "dropout changed nothing: \(undropped) vs \(base)")
        #expect(try Self.expectCentralDifferences(model, loss: loss).count >= 8)
    }

    /// Checks the backward's gradients in `model.grads` against central differences of `loss`
    /// (the forward under the same masks), at the largest gradient of every tensor that has one
    /// above 5e-3; returns the tensors checked.
    static func expectCentralDifferences(_ model: GPTModel, loss: () throws -> Double) throws -> [String] {
        var checked = [String]()
        for spec in model.layout.specs {
            let grads = model.grads.values(spec.name)
            let largest = grads.indices.max { abs(grads[$0]) < abs(grads[$1]) }!
            guard abs(grads[largest]) > 5e-3 else { continue }
            let pointer = model.params.pointer(at: model.layout.index(of: spec.name)!) + largest
            let original = pointer.pointee, h: Float = 1e-2
            pointer.pointee = original + h
            model.weightsDidChange()
            let up = try loss()
            pointer.pointee = original - h
            model.weightsDidChange()
            let down = try loss()
            pointer.pointee = original
            model.weightsDidChange()
            let numeric = (up - down) / Double(2 * h)
            #expect(abs(numeric - Double(grads[largest])) <= 0.03 * abs(numeric) + 2e-3,
                    "\(spec.name)[\(largest)]: backward \(grads[largest]), differences \(numeric)")
            checked.append(spec.name)
        }
        return checked
    }

    /// Without a training sample (evaluation, generation) nothing is dropped: the same loss as
    /// the same model without dropout configured, and different samples draw different masks.
    @Test func onlyTrainingForwardsDrop() throws {
        var plain = Self.config
        plain.hiddenDropout = 0
        plain.attentionDropout = 0
        let (tokens, targets) = Self.batch()
        let dropped = try GPTModel(config: Self.config, seed: 5), reference = try GPTModel(config: plain, seed: 5)
        let evaluation = try dropped.forward(tokens: tokens, targets: targets, batch: 2, seqLength: 16).mean
        #expect(evaluation == (try reference.forward(tokens: tokens, targets: targets, batch: 2, seqLength: 16).mean))
        let first = try dropped.forward(tokens: tokens, targets: targets, batch: 2, seqLength: 16, dropoutSample: 0).mean
        let second = try dropped.forward(tokens: tokens, targets: targets, batch: 2, seqLength: 16, dropoutSample: 2).mean
        let again = try dropped.forward(tokens: tokens, targets: targets, batch: 2, seqLength: 16, dropoutSample: 0).mean
        #expect(first != second && first == again && first != evaluation)
    }

    /// The recomputed forward draws the same masks: bit-identical losses and gradients.
    @Test(arguments: [ComputePrecision.fp32, .bf16])
    func recomputationReplaysTheMasks(_ precision: ComputePrecision) throws {
        let reference = try Self.run(precision: precision)
        for recomputation in [ActivationRecomputation(granularity: .selective), ActivationRecomputation(granularity: .full),
                              ActivationRecomputation(granularity: .full, method: .block, numLayers: 1)] {
            let recomputed = try Self.run(recomputation: recomputation, precision: precision)
            #expect(recomputed.losses == reference.losses && recomputed.grads == reference.grads, "\(recomputation)")
        }
    }

    /// TP 2 and 4, with and without sequence parallelism, against one rank with the same
    /// dropouts: the masks are the same, so only summation order differs (tolerances as
    /// `TensorParallelTests`).
    @Test(arguments: [(2, false), (2, true), (4, true)])
    func tensorParallelDrawsTheMasksOfOneRank(tensorParallel t: Int, sequenceParallel: Bool) throws {
        let reference = try Self.run()
        let model = try GPTModel(config: Self.config, seed: 5)
        let shards = try ThreadCommunicator.run(size: t) { group in
            try Self.run(tensorParallel: group, sequenceParallel: sequenceParallel)
        }
        var worst = 0.0
        for (index, spec) in model.layout.specs.enumerated() {
            let full = TensorParallelTests.assemble(shards.map { $0.grads[index] }, spec: spec)
            let error = relativeError(full, reference.grads[index])
            worst = max(worst, error)
            #expect(error <= 2e-6, "\(spec.name): \(error)")
        }
        for shard in shards {
            for (a, b) in zip(shard.losses, reference.losses) { #expect(abs(a - b) <= 5e-8 * abs(b)) }
        }
        print("dropout, TP \(t)\(sequenceParallel ? " SP" : ""): worst gradient relative error \(worst)")
    }

    /// A fine-tuning head drops out the pooled output before its last layer in training: the
    /// evaluation forward is the reference's (Hugging Face's, dropout off), a training forward's
    /// logits differ, and under the same masks every gradient matches central differences (a
    /// backward that forgot the mask on the pooled gradient fails the pooler's). The task layer's
    /// weights are scaled up so that the pooler's gradients resolve.
    @Test(arguments: [("classify", BERTHead.classification(classes: 3)), ("choice", BERTHead.multipleChoice(choices: 3))])
    func taskHeadsDropThePooledOutput(name: String, head: BERTHead) throws {
        let fixture = try BERTReferenceFixture()
        let model = try fixture.model(name, head: head, hiddenDropout: 0.3)
        var batch = fixture.batch
        let labels = try fixture.file.integers("\(name).labels").map { Int32($0) }
        batch.sequenceLabels = labels + Array(repeating: -100, count: batch.batch - labels.count)
        _ = try model.forward(bert: batch)
        #expect(relativeError(model.sequenceLogits, try fixture.file.floats("\(name).logits")) < 1e-5)
        let taskWeight = model.layout.index(of: (name == "classify" ? "classification_head" : "multichoice_head") + ".weight")!
        let weights = model.params.pointer(at: taskWeight)
        for i in 0..<model.layout.specs[taskWeight].count { weights[i] *= 20 }
        model.weightsDidChange()
        let evaluation = try model.forward(bert: batch).task!.mean, undropped = model.sequenceLogits
        func loss() throws -> Double { try model.forward(bert: batch, dropoutSample: 11).task!.mean }
        let base = try loss()
        #expect(zip(model.sequenceLogits, undropped).contains { abs($0 - $1) > 1e-3 }, "dropout changed no logit")
        #expect(evaluation != base)
        model.zeroGrad()
        model.backward()
        let checked = try Self.expectCentralDifferences(model, loss: loss)
        #expect(checked.contains("pooler.dense.weight") && checked.count >= 8, "checked \(checked)")
    }
}
