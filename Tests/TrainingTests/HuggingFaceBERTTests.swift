import Models
import Parameters
import Testing
import TestSupport
@testable import Training

/// Hugging Face `BertForPreTraining` directories in and out: the fixture's `save_pretrained`
/// output imports as the reference post-LN model (same tensors, same losses), exports back to the
/// same tensors, and a pre-LN model is refused by name.
@Suite struct HuggingFaceBERTTests {
    @Test func importGivesTheReferenceModelAndItsLosses() throws {
        let fixture = try BERTReferenceFixture()
        let model = try HuggingFaceCheckpoint.read(directory: BERTReferenceFixture.huggingFaceDirectory)
        let reference = try fixture.model("post")
        #expect(model.config.bert == reference.config.bert && model.config.maskPaddedVocabulary)
        for (index, spec) in reference.layout.specs.enumerated() {
            let ours = model.layout.entry(spec.name).spec
            // The import pads the vocabulary to 128 rows with zeros; the reference keeps 97.
            let count = spec.count, padded = ours.count
            let imported = Array(UnsafeBufferPointer(start: model.params[spec.name], count: padded))
            let expected = Array(UnsafeBufferPointer(start: reference.params.pointer(at: index), count: count))
            #expect(Array(imported.prefix(count)) == expected, "\(spec.name)")
            #expect(imported.dropFirst(count).allSatisfy { $0 == 0 }, "\(spec.name) padding")
        }
        let losses = try model.forward(bert: fixture.batch)
        let mlm = Double(try fixture.file.floats("post.mlm_loss")[0]), sop = Double(try fixture.file.floats("post.sop_loss")[0])
        #expect(abs(losses.maskedLM!.mean - mlm) / mlm < 1e-5 && abs(losses.sentenceOrder!.mean - sop) / sop < 1e-5)
    }

    @Test func exportWritesTheSameTensorsAndAPreLNModelIsRefused() throws {
        let model = try HuggingFaceCheckpoint.read(directory: BERTReferenceFixture.huggingFaceDirectory)
        let directory = ResumeTests.temporaryDirectory()
        try HuggingFaceCheckpoint.write(model, to: directory)
        let original = try SafeTensorsFile(path: BERTReferenceFixture.huggingFaceDirectory + "/model.safetensors")
        let written = try SafeTensorsFile(path: directory + "/model.safetensors")
        #expect(Set(written.entries.keys) == Set(original.entries.keys))
        for name in original.entries.keys {
            #expect(try written.floats(name) == original.floats(name), "\(name)")
            #expect(written.entries[name]?.shape == original.entries[name]?.shape, "\(name)")
        }
        let again = try HuggingFaceCheckpoint.read(directory: directory)
        #expect(again.config == model.config)
        // Imported as a checkpoint, it loads for training and conversion, not as a GPT.
        try Checkpoint.saveImported(model, to: directory + "/checkpoint")
        #expect(try Checkpoint.loadModel(from: directory + "/checkpoint").model.config == model.config)
        #expect { _ = try Checkpoint.loadGPT(from: directory + "/checkpoint", command: "evaluate") } throws: {
            "\($0)".contains("this is a BERT checkpoint; `megatron evaluate` runs GPTs")
        }

        let pre = try GPTModel(config: try BERTReferenceFixture().config(postLayerNorm: false))
        #expect { try HuggingFaceCheckpoint.write(pre, to: directory + "/pre") } throws: {
            "\($0)".contains("this BERT is pre-LN")
        }
        let tuned = try GPTModel(config: try BERTReferenceFixture().config(postLayerNorm: true, head: .classification(classes: 3)))
        #expect { try HuggingFaceCheckpoint.write(tuned, to: directory + "/tuned") } throws: {
            "\($0)".contains("carries a fine-tuning head")
        }
    }
}
