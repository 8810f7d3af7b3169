import FileSupport
import Models
import Parameters
import Testing
@testable import Training

/// `megatron convert` against transformers' GPT2LMHeadModel (fixture from
/// `scripts/reference/hf_interop.py generate`: odd sizes, perturbed LayerNorms).
@Suite struct HuggingFaceInteropTests {
    static let fixtures: String = {
        var path = #filePath
        path = String(path[..<path.lastIndex(of: "/")!])
        return path + "/Fixtures"
    }()

    @Test func importedModelGivesTransformersLogits() throws {
        let model = try HuggingFaceCheckpoint.read(directory: Self.fixtures + "/hf")
        #expect(model.config.vocabSize == 301 && model.config.paddedVocabSize == 384)
        let reference = try SafeTensorsFile(path: Self.fixtures + "/reference.safetensors")
        let tokens = try reference.integers("tokens").map { Int32($0) }
        let expected = try reference.floats("logits")
        try model.forward(tokens: tokens, targets: [Int32](repeating: 0, count: tokens.count), batch: 1, seqLength: tokens.count)
        var worst: Float = 0, scale: Float = 0
        for t in 0..<tokens.count {
            for v in 0..<301 {
                worst = max(worst, abs(model.logits[t * 384 + v] - expected[t * 301 + v]))
                scale = max(scale, abs(expected[t * 301 + v]))
            }
        }
        print("HF import: max |logit - transformers| = \(worst) (logits up to \(scale))")
        #expect(worst <= 1e-5 * max(1, scale))
    }

    @Test func exportThenImportIsExact() throws {
        let model = try HuggingFaceCheckpoint.read(directory: Self.fixtures + "/hf")
        let directory = "/tmp/megatron-hf-\(UInt32.random(in: 0...UInt32.max))"
        try HuggingFaceCheckpoint.write(model, to: directory, eosTokenID: 300)
        let back = try HuggingFaceCheckpoint.read(directory: directory)
        let n = model.layout.totalCount
        #expect((0..<n).allSatisfy { model.params.buffer.pointer[$0] == back.params.buffer.pointer[$0] })
        #expect(back.config == model.config)
    }

    @Test func unsupportedConfigsAreClearErrors() throws {
        let directory = "/tmp/megatron-hf-bad-\(UInt32.random(in: 0...UInt32.max))"
        try Directory.create(directory)
        try AtomicFile.write(Array(#"{"model_type": "llama", "n_layer": 2}"#.utf8), to: directory + "/config.json")
        #expect(throws: TrainingError.self) { try HuggingFaceCheckpoint.read(directory: directory) }
        try AtomicFile.write(Array(#"{"model_type": "gpt2", "n_layer": 2, "n_embd": 8, "n_head": 2, "n_positions": 4, "vocab_size": 10}"#.utf8),
                             to: directory + "/config.json")
        do {
            _ = try HuggingFaceCheckpoint.read(directory: directory)
            Issue.record("a missing model.safetensors must fail")
        } catch {
            #expect("\(error)".contains("model.safetensors"))
        }
    }
}
