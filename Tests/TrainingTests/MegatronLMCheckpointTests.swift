#if canImport(Glibc)
import Glibc
#endif
import FileSupport
import Foundation
import Models
import Parameters
import Testing
import TestSupport
@testable import TorchFormat
@testable import Training

/// Megatron-LM checkpoints read against megatron-core itself (fixtures by
/// `scripts/reference/megatron_lm_fixtures.py`: megatron-core's GPTModel with random weights,
/// 4 layers x 48 hidden x 4 heads, vocabulary 2112, perturbed LayerNorms and biases, saved by torch.save in
/// Megatron-LM's layout, whole and cut for TP 2 x PP 2).
@Suite struct MegatronLMCheckpointTests {
    static let fixtures = fixturesDirectory() + "/megatron-lm"
    static let expected: JSONValue = try! JSONValue.parse(utf8: try MappedFile.read(path: fixtures + "/expected.json"))
    static let expectedExactGELU: JSONValue = try! JSONValue.parse(utf8: try MappedFile.read(path: fixtures + "/expected-exact-gelu-ffn80.json"))
    static let expectedUntied: JSONValue = try! JSONValue.parse(utf8: try MappedFile.read(path: fixtures + "/expected-untied-eps1e-6.json"))

    static func integers(_ key: String, in expected: JSONValue = expected) -> [Int32] {
        guard case let .array(rows)? = expected[key] else { return [] }
        return rows.flatMap { row -> [Int32] in
            guard case let .array(values) = row else { return [] }
            return values.compactMap { if case let .number(x) = $0 { Int32(x) } else { nil } }
        }
    }

    static func numbers(_ value: JSONValue?) -> [Double] {
        if case let .number(x)? = value { return [x] }
        guard case let .array(values)? = value else { return [] }
        return values.flatMap { value -> [Double] in
            if case let .number(x) = value { return [x] }
            return numbers(value)
        }
    }

    /// megatron-core's loss, logits and every gradient of the mean loss, from the whole
    /// checkpoint and from its TP 2 x PP 2 shards (observed: loss 7.8e-8 relative, logits 5.4e-7,
    /// gradient norms 8.3e-7; fp32 on both sides, different summation orders).
    /// `tp1-exact-gelu-ffn80` is a model with Megatron-LM's `--no-bias-gelu-fusion` (the exact erf
    /// GELU) and `--ffn-hidden-size 80` (not 4h); `tp2pp2-untied-eps1e-6` one with
    /// `--untie-embeddings-and-output-weights` and `--norm-epsilon 1e-6`, cut for TP 2 x PP 2;
    /// `pp2-vp2` the first model saved by an interleaved run (2 stages x 2 model chunks); `dist-*`
    /// the same models in the torch_dist format, saved by megatron-core from TP x PP ranks.
    @Test(arguments: ["tp1", "tp2pp2", "pp2-vp2", "tp1-exact-gelu-ffn80", "tp2pp2-untied-eps1e-6",
                      "dist-tp1", "dist-tp2pp2", "dist-tp2pp2-untied-eps1e-6"])
    func givesMegatronCoresLossLogitsAndGradients(checkpoint: String) throws {
        let variant = checkpoint.hasSuffix("exact-gelu-ffn80"), untied = checkpoint.hasSuffix("untied-eps1e-6")
        let expected = variant ? Self.expectedExactGELU : untied ? Self.expectedUntied : Self.expected
        let (model, iteration) = try MegatronLMCheckpoint.read(directory: Self.fixtures + "/" + checkpoint)
        #expect(iteration == 7 && model.config.numLayers == 4 && model.config.paddedVocabSize == 2112)
        #expect(model.config.exactGELU == variant && model.config.ffnHiddenSize == (variant ? 80 : 192))
        #expect(model.config.untieEmbeddingsAndOutputWeights == untied && model.config.layerNormEpsilon == (untied ? 1e-6 : 1e-5))
        let tokens = Self.integers("tokens", in: expected), labels = Self.integers("labels", in: expected)
        let totals = try model.forward(tokens: tokens, targets: labels, batch: 2, seqLength: 12)
        let expectedLoss = Self.numbers(expected["mean_loss"]).first ?? .nan
        let lossError = abs(totals.mean - expectedLoss) / expectedLoss
        #expect(lossError < 1e-6, "loss \(totals.mean) vs \(expectedLoss)")
        let vocab = model.config.paddedVocabSize
        let logits = Array(UnsafeBufferPointer(start: model.logits, count: 3 * vocab))  // sequence 0, positions 0-2
        let logitsError = relativeError(logits, Self.numbers(expected["logits_first_positions"]))
        #expect(logitsError < 5e-6)
        model.backward()
        var worst = 0.0
        guard case let .object(norms)? = expected["gradient_norms"] else { Issue.record("no gradient norms"); return }
        #expect(norms.count == model.layout.specs.count)
        for (name, value) in norms {
            guard case let .number(expectedNorm) = value else { continue }
            let ours = model.grads.values(name).reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            worst = max(worst, abs(ours - expectedNorm) / max(expectedNorm, 1e-12))
        }
        #expect(worst < 1e-5)
        print("megatron-core \(checkpoint): loss relative error \(lossError), logits \(logitsError), worst gradient norm \(worst)")
    }

    /// The pickle's other contents (the args namespace with a torch dtype and an enum, numpy and
    /// torch RNG states) load as placeholders.
    @Test func theWholePickleLoads() throws {
        let file = try TorchFile(path: Self.fixtures + "/tp1/iter_0000007/mp_rank_00/model_optim_rng.pt")
        let root = try #require(file.root.entries)
        #expect(root["iteration"]?.int == 7 && root["checkpoint_version"]?.double == 3.0)
        let args = try #require(root["args"]?.entries)
        #expect(args["hidden_size"]?.int == 48 && args["tokenizer_type"]?.string == "GPT2BPETokenizer")
        guard case let .global(module, name)? = args["params_dtype"] else { Issue.record("params_dtype"); return }
        #expect(module == "torch" && name == "float32")
        let rng = try #require(root["rng_state"]?.items?.first?.entries)
        guard case let .tensor(state)? = rng["torch_rng_state"] else { Issue.record("torch_rng_state"); return }
        #expect(state.storage.dtype == .uint8 && state.shape.count == 1)
    }

    /// Damaged or foreign input is one error naming the file; nothing is read half-way.
    @Test func badInputIsNamed() throws {
        let directory = ResumeTests.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory + "/iter_0000001/mp_rank_00", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "1\n".write(toFile: directory + "/latest_checkpointed_iteration.txt", atomically: true, encoding: .utf8)
        let source = try MappedFile.read(path: Self.fixtures + "/tp1/iter_0000007/mp_rank_00/model_optim_rng.pt")
        let target = directory + "/iter_0000001/mp_rank_00/model_optim_rng.pt"
        for (bytes, message) in [(Array(source.prefix(source.count / 2)), "end-of-central-directory"),
                                 (Array("not a zip".utf8), "end-of-central-directory")] {
            try AtomicFile.write(bytes, to: target)
            #expect { _ = try MegatronLMCheckpoint.read(directory: directory) } throws: { error in
                "\(error)".contains(message) && "\(error)".contains("model_optim_rng.pt")
            }
        }
        // A pickle with an opcode torch.save never writes (INST) is refused with its offset.
        let bad: [UInt8] = [0x80, 0x02, 0x69] + Array("os\nsystem\n".utf8) + [0x2E]
        #expect(throws: PickleError.self) { try bad.withUnsafeBytes { try Unpickler.load($0) } }
        // Hostile pickles: nesting deeper than 1000, a length near Int.max, never a crash.
        let deep: [UInt8] = [0x80, 0x02, 0x29] + [UInt8](repeating: 0x85, count: 5000) + [0x2E]
        #expect { try deep.withUnsafeBytes { try Unpickler.load($0) } } throws: { "\($0)".contains("nested more than") }
        let long: [UInt8] = [0x80, 0x02, 0x8D] + [UInt8](repeating: 0xFF, count: 7) + [0x7F, 0x2E]
        #expect(throws: PickleError.self) { try long.withUnsafeBytes { try Unpickler.load($0) } }
        // Tensor views that do not fit their storage are never read.
        let storage = TorchStorage(dtype: .float32, key: "0", count: 12)
        #expect(TorchTensor(storage: storage, offset: 0, shape: [3, 4], stride: [4, 1]).fitsItsStorage)
        for (offset, shape, stride) in [(0, [3, 4], [-4, 1]), (-1, [12], [1]), (0, [-1], [1]), (0, [4, 4], [4, 1]),
                                        (0, [Int.max, 2], [0, 1]), (1, [12], [1])] {
            #expect(!TorchTensor(storage: storage, offset: offset, shape: shape, stride: stride).fitsItsStorage, "\(shape) \(stride)")
        }
        // A missing tracker target.
        try "9\n".write(toFile: directory + "/latest_checkpointed_iteration.txt", atomically: true, encoding: .utf8)
        #expect { _ = try MegatronLMCheckpoint.read(directory: directory) } throws: { "\($0)".contains("iter_0000009") }
    }

    /// A tensor-parallel shard missing from one rank's file is an error naming it, not a zero block.
    @Test func aMissingShardIsNamed() throws {
        let (model, _) = try MegatronLMCheckpoint.read(directory: Self.fixtures + "/tp1")
        let directory = ResumeTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try MegatronLMCheckpoint.write(model.params, config: model.config, iteration: 3, to: directory, tensorParallel: 2)
        let path = directory + "/iter_0000003/mp_rank_01/model_optim_rng.pt"
        let file = try TorchFile(path: path)
        let state = try #require(file.root.entries?["model"]?.entries)
        var kept = [(String, TorchSaveValue)]()
        for key in state.keys where key != "decoder.layers.2.mlp.linear_fc1.weight" {
            guard case let .tensor(tensor)? = state[key] else { kept.append((key, .none)); continue }
            kept.append((key, .tensor(shape: tensor.shape, values: try file.floats(tensor, name: key))))
        }
        try TorchSave.write(.dict([("args", MegatronLMCheckpoint.arguments(model.config, t: 2, p: 1, iteration: 3)),
                                   ("iteration", .int(3)), ("model", .orderedDict(kept))]), to: path)
        #expect { _ = try MegatronLMCheckpoint.read(directory: directory) } throws: {
            "\($0)".contains("decoder.layers.2.mlp.linear_fc1.weight is missing from tensor-parallel rank(s) [1]")
        }
    }

    /// ZIP64: with the 4 GiB limit lowered to 100 bytes, the tensors' entries, their offsets and
    /// the directory take ZIP64 fields and an end record as a checkpoint past 4 GiB would, and read
    /// back exactly (torch.load reads such a file too: checked by hand with torch 2.15). CRC-32
    /// (slicing-by-8) against its check value and a bytewise reference.
    @Test func zip64ArchivesReadBack() throws {
        let directory = ResumeTests.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let values = (0..<300).map { Float($0) * 0.25 - 7 }
        let path = directory + "/model_optim_rng.pt"
        try TorchSave.write(.dict([("iteration", .int(5)), ("model", .orderedDict([("w", .tensor(shape: [30, 10], values: values)),
                                                                                 ("b", .tensor(shape: [3], values: [1, 2, 3]))]))]),
                            to: path, zip64Above: 100)
        let bytes = try MappedFile.read(path: path)
        #expect(bytes.count > 1400)
        #expect(bytes.withUnsafeBytes { raw in (0..<(raw.count - 4)).contains { raw.loadUnaligned(fromByteOffset: $0, as: UInt32.self) == 0x0606_4B50 } })
        let file = try TorchFile(path: path)
        #expect(file.root.entries?["iteration"]?.int == 5)
        guard case let .tensor(w)? = file.root.entries?["model"]?.entries?["w"] else { Issue.record("no tensor"); return }
        #expect(try file.floats(w, name: "w") == values && w.shape == [30, 10])
        #expect(Array("123456789".utf8).withUnsafeBytes { CRC32.checksum($0) } == 0xCBF4_3926)
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 7, 8, 9, 63, 1000] {
            let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in data {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 != 0 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
            }
            #expect(data.withUnsafeBytes { CRC32.checksum($0) } == crc ^ 0xFFFF_FFFF, "length \(length)")
        }
    }

    /// An architecture this project does not implement is refused with the flag that names it.
    @Test func unsupportedArchitecturesNameTheirFlag() throws {
        let file = try TorchFile(path: Self.fixtures + "/tp1/iter_0000007/mp_rank_00/model_optim_rng.pt")
        let arguments = try MegatronLMArguments(file)
        for (key, value, flag) in [("swiglu", PickleValue.bool(true), "--swiglu"),
                                   ("position_embedding_type", .string("rope"), "--position-embedding-type rope"),
                                   ("normalization", .string("RMSNorm"), "--normalization RMSNorm"),
                                   ("num_experts", .int(8), "--num-experts"),
                                   ("apply_layernorm_1p", .bool(true), "--apply-layernorm-1p"),
                                   ("qk_layernorm", .bool(true), "--qk-layernorm")] {
            let saved = arguments.values[key] ?? .none
            arguments.values.set(.string(key), value)
            #expect { _ = try arguments.modelConfig() } throws: { "\($0)".contains(flag) }
            arguments.values.set(.string(key), saved)
        }
        #expect(try arguments.modelConfig().numLayers == 4)
    }

    /// Export: the imported fixtures written back give Megatron-LM's own files (same names, same
    /// tensors bit for bit, whole and TP 2 x PP 2, tied and untied), and a changed model survives the round trip
    /// exactly (what megatron-core then computes from it is what the import test checks).
    @Test func exportWritesMegatronLMsLayout() throws {
        let (model, _) = try MegatronLMCheckpoint.read(directory: Self.fixtures + "/tp1")
        let (untied, _) = try MegatronLMCheckpoint.read(directory: Self.fixtures + "/tp2pp2-untied-eps1e-6")
        let directory = ResumeTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (model, t, p, v, reference) in [(model, 1, 1, 1, "tp1"), (model, 2, 2, 1, "tp2pp2"), (model, 1, 2, 2, "pp2-vp2"),
                                            (untied, 2, 2, 1, "tp2pp2-untied-eps1e-6")] {
            let out = directory + "/\(reference)"
            try MegatronLMCheckpoint.write(model.params, config: model.config, iteration: 7, to: out, tensorParallel: t,
                                           pipelineParallel: p, chunks: v)
            let ranks = p == 1 ? ["mp_rank_00"] : (0..<p).flatMap { stage in (0..<t).map { String(format: "mp_rank_%02d_%03d", $0, stage) } }
            for rank in ranks {
                let ours = try TorchFile(path: "\(out)/iter_0000007/\(rank)/model_optim_rng.pt")
                let theirs = try TorchFile(path: "\(Self.fixtures)/\(reference)/iter_0000007/\(rank)/model_optim_rng.pt")
                for entry in (v == 1 ? ["model"] : (0..<v).map { "model\($0)" }) {
                    let a = try #require(ours.root.entries?[entry]?.entries), b = try #require(theirs.root.entries?[entry]?.entries)
                    #expect(Set(a.keys) == Set(b.keys), "\(reference) \(rank) \(entry)")  // a state dict's order does not matter
                    for key in b.keys {
                        guard case let .tensor(x)? = a[key], case let .tensor(y)? = b[key] else { continue }
                        let (mine, reference) = (try ours.floats(x, name: key), try theirs.floats(y, name: key))
                        #expect(x.shape == y.shape && mine == reference, "\(key)")
                    }
                }
                let args = ours.root.entries?["args"]?.entries
                #expect(args?["padded_vocab_size"]?.int == 2112)
                #expect(args?["untie_embeddings_and_output_weights"]?.int == (model === untied ? 1 : 0))
            }
        }
        // A changed model: exported TP 2 x PP 2 and read back, every weight equal.
        for i in 0..<model.layout.totalCount { model.params.buffer.pointer[i] += Float(i % 7) * 1e-3 }
        try MegatronLMCheckpoint.write(model.params, config: model.config, iteration: 9, to: directory + "/changed",
                                       tensorParallel: 2, pipelineParallel: 2)
        let (back, iteration) = try MegatronLMCheckpoint.read(directory: directory + "/changed")
        #expect(iteration == 9)
        for spec in model.layout.specs { #expect(back.params.values(spec.name) == model.params.values(spec.name), "\(spec.name)") }
        // Re-padded as Megatron-LM pads the 2048-id tokenizer for TP 4 (make_vocab_size_divisible_by
        // 96 x 4: 2304 rows, the added ones zero), and for a tokenizer of 2000 ids at TP 1 (2016
        // rows: padding rows dropped).
        let (original, _) = try MegatronLMCheckpoint.read(directory: Self.fixtures + "/tp1")
        let embedding = original.params.values(wordEmbeddingName)
        for (t, trueVocabulary, rows) in [(4, 2048, 2304), (1, 2000, 2016)] {
            let out = directory + "/repadded-\(t)"
            try MegatronLMCheckpoint.write(original.params, config: original.config, iteration: 1, to: out, tensorParallel: t,
                                           trueVocabularySize: trueVocabulary)
            let (repadded, _) = try MegatronLMCheckpoint.read(directory: out)
            #expect(repadded.config.paddedVocabSize == rows && repadded.config.makeVocabSizeDivisibleBy == 96)
            let values = repadded.params.values(wordEmbeddingName), kept = min(rows, 2112) * 48
            #expect(Array(values.prefix(kept)) == Array(embedding.prefix(kept)) && values.dropFirst(kept).allSatisfy { $0 == 0 })
        }
        #expect { try MegatronLMCheckpoint.write(original.params, config: original.config, iteration: 1, to: directory + "/big",
                                                 trueVocabularySize: 3000) } throws: { "\($0)".contains("true vocabulary size 3000") }
        // Iteration 0 is written as `release` (Megatron-LM reads no iteration 0); an existing
        // iteration folder is not written into; model chunks need pipeline stages.
        try MegatronLMCheckpoint.write(original.params, config: original.config, iteration: 0, to: directory + "/zero")
        #expect(try String(contentsOfFile: directory + "/zero/latest_checkpointed_iteration.txt", encoding: .utf8) == "release")
        #expect(try MegatronLMCheckpoint.read(directory: directory + "/zero").iteration == 0)
        #expect { try MegatronLMCheckpoint.write(original.params, config: original.config, iteration: 0, to: directory + "/zero") }
            throws: { "\($0)".contains("already exists") }
        #expect { try MegatronLMCheckpoint.write(original.params, config: original.config, iteration: 1, to: directory + "/chunks",
                                                 chunks: 2) } throws: { "\($0)".contains("pipeline-model-parallel-size of at least 2") }
        // The exact GELU and an MLP of 80 survive the round trip in args.
        let (variant, _) = try MegatronLMCheckpoint.read(directory: Self.fixtures + "/tp1-exact-gelu-ffn80")
        try MegatronLMCheckpoint.write(variant.params, config: variant.config, iteration: 1, to: directory + "/variant")
        #expect(try MegatronLMCheckpoint.read(directory: directory + "/variant").model.config == variant.config)
    }
}
