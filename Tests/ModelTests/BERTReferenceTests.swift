import Kernels
import Models
import Parameters
import Testing
import TestSupport

/// The Swift BERT against `scripts/reference/bert_model_fixtures.py` (float64): post-LN against
/// Hugging Face's `BertForPreTraining`, pre-LN (Megatron's rearrangement) against the PyTorch
/// reference written there. A batch of three sequences with padding, two segments and masked
/// positions: masked-LM and sentence-order logits, both losses, every gradient of their sum.
@Suite struct BERTReferenceTests {
    @Test(arguments: ["post", "pre"])
    func logitsLossesAndGradientsMatch(_ name: String) throws {
        let fixture = try BERTReferenceFixture()
        let model = try fixture.model(name)
        let losses = try model.forward(bert: fixture.batch)
        let mlm = Double(try fixture.file.floats("\(name).mlm_loss")[0])
        let sop = Double(try fixture.file.floats("\(name).sop_loss")[0])
        let n = fixture.batch.batch * fixture.batch.seqLength
        let logits = Array(UnsafeBufferPointer(start: model.logits, count: n * model.config.paddedVocabSize))
        let logitsError = relativeError(logits, try fixture.file.floats("\(name).mlm_logits"))
        let binaryError = relativeError(model.sequenceLogits, try fixture.file.floats("\(name).sop_logits"))
        print("BERT \(name)-LN: masked-LM loss \(losses.maskedLM!.mean) (reference \(mlm)), sentence order \(losses.sentenceOrder!.mean) (\(sop)); logits \(logitsError), binary logits \(binaryError)")
        #expect(abs(losses.maskedLM!.mean - mlm) / mlm < 1e-5)
        #expect(abs(losses.sentenceOrder!.mean - sop) / sop < 1e-5)
        #expect(logitsError < 1e-5 && binaryError < 1e-5)
        let worst = try Self.backwardMatches(model, fixture, name)
        print("BERT \(name)-LN: worst gradient \(worst.name) \(worst.error) over \(model.layout.specs.count) tensors")
    }

    /// The fine-tuning heads against Hugging Face's `BertForSequenceClassification` (3 classes,
    /// a label per sequence) and `BertForMultipleChoice` (the 3 sequences are one question's
    /// choices), on the post-LN encoder: logits, loss and every gradient.
    @Test(arguments: [("classify", BERTHead.classification(classes: 3)), ("choice", BERTHead.multipleChoice(choices: 3))])
    func fineTuningHeadsMatchHuggingFace(name: String, head: BERTHead) throws {
        let fixture = try BERTReferenceFixture()
        let model = try fixture.model(name, head: head)
        var batch = fixture.batch
        let labels = try fixture.file.integers("\(name).labels").map { Int32($0) }
        batch.sequenceLabels = labels + Array(repeating: -100, count: batch.batch - labels.count)
        let loss = try model.forward(bert: batch).task!.mean
        let expected = Double(try fixture.file.floats("\(name).loss")[0])
        let logitsError = relativeError(model.sequenceLogits, try fixture.file.floats("\(name).logits"))
        #expect(abs(loss - expected) / expected < 1e-5 && logitsError < 1e-5, "loss \(loss) vs \(expected), logits \(logitsError)")
        let worst = try Self.backwardMatches(model, fixture, name)
        print("BERT \(name): loss \(loss) (reference \(expected)), logits \(logitsError), worst gradient \(worst.name) \(worst.error)")
    }

    /// Runs the backward of the last forward and expects every gradient within 1e-5 relative
    /// (norm-wise) of case `name`'s; returns the worst.
    static func backwardMatches(_ model: GPTModel, _ fixture: BERTReferenceFixture, _ name: String) throws -> (error: Double, name: String) {
        model.zeroGrad()
        model.backward()
        var worst = (error: 0.0, name: "")
        for (index, spec) in model.layout.specs.enumerated() {
            let gradient = Array(UnsafeBufferPointer(start: model.grads.pointer(at: index), count: spec.count))
            let error = relativeError(gradient, try fixture.file.floats("\(name).g.\(spec.name)"))
            #expect(error < 1e-5, "\(spec.name): \(error)")
            if error > worst.error { worst = (error, spec.name) }
        }
        return worst
    }

    /// Out-of-range inputs are named before anything runs.
    @Test func badInputsAreNamed() throws {
        let fixture = try BERTReferenceFixture()
        let model = try fixture.model("pre")
        var batch = fixture.batch
        batch.tokenTypes[5] = 2
        #expect(throws: GPTInputError.bertInputOutOfRange(field: "token type", index: 5, value: 2, accepted: "0..<2")) {
            try model.forward(bert: batch)
        }
        batch = fixture.batch
        batch.lengths[1] = 0
        #expect(throws: GPTInputError.self) { try model.forward(bert: batch) }
        batch = fixture.batch
        batch.sequenceLabels.removeLast()
        #expect(throws: GPTInputError.bertInputCount(field: "sequence labels", count: 2, expected: 3)) {
            try model.forward(bert: batch)
        }
    }
}
