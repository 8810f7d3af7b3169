import FileSupport
import Foundation
import Kernels
import Models
import Parameters
import Testing
import TestSupport
@testable import TorchFormat
@testable import Training

/// Megatron-LM's `torch_dist` checkpoints, saved by megatron-core's own `dist_checkpointing.save`
/// from real TP x PP ranks (`scripts/reference/megatron_lm_dist_fixtures.py`): the models of the
/// legacy fixtures, so that each must read to the same weights bit for bit. megatron-core's loss,
/// logits and gradients on them are checked in `MegatronLMCheckpointTests` (the `dist-*` cases).
@Suite struct MegatronLMDistCheckpointTests {
    static let fixtures = MegatronLMCheckpointTests.fixtures

    /// Every (TP x PP) layout of the sharded format gives the legacy checkpoint's model: the
    /// stacked layers split back into layers, the TP shards put together at their offsets, the
    /// LayerNorms under their Transformer Engine names, the untied output layer read.
    /// `dist-tp1-common-inside` is newer megatron-core's layout (GitHub main): no common.pt, the
    /// args inside the sharded files.
    @Test(arguments: [("dist-tp1", "tp1"), ("dist-tp2pp2", "tp1"), ("dist-tp2pp2-untied-eps1e-6", "tp2pp2-untied-eps1e-6"),
                      ("dist-tp1-common-inside", "tp1")])
    func readsTheLegacyCheckpointsWeights(sharded: String, legacy: String) throws {
        let (model, iteration) = try MegatronLMCheckpoint.read(directory: Self.fixtures + "/" + sharded)
        let (reference, _) = try MegatronLMCheckpoint.read(directory: Self.fixtures + "/" + legacy)
        #expect(iteration == 7 && model.config == reference.config)
        #expect(model.layout.specs.map(\.name) == reference.layout.specs.map(\.name))
        for spec in reference.layout.specs {
            let same = model.params.values(spec.name) == reference.params.values(spec.name)
            #expect(same, "\(spec.name)")
        }
    }

    /// A `--bf16` run's model is saved in bf16: it reads as the fp32 model rounded to bf16.
    @Test func aBF16ModelReadsAsItsRoundedWeights() throws {
        let (model, _) = try MegatronLMCheckpoint.read(directory: Self.fixtures + "/dist-tp1-bf16")
        let (reference, _) = try MegatronLMCheckpoint.read(directory: Self.fixtures + "/tp1")
        var changed = 0
        for spec in reference.layout.specs {
            var rounded = reference.params.values(spec.name)
            rounded.withUnsafeMutableBufferPointer { BFloat16Conversion.roundInPlace($0.baseAddress!, count: $0.count) }
            changed += zip(rounded, reference.params.values(spec.name)).filter { $0 != $1 }.count
            let same = model.params.values(spec.name) == rounded
            #expect(same, "\(spec.name)")
        }
        #expect(changed > reference.layout.totalCount / 2)  // the rounding is not a no-op on these weights
    }

    /// The .metadata's pickled dataclasses: a TP-split, layer-stacked tensor's shape and its
    /// chunks, one per (layer, TP rank).
    @Test func theMetadataGivesEachRankShardAsAChunk() throws {
        let checkpoint = try DistributedCheckpoint(folder: Self.fixtures + "/dist-tp2pp2/iter_0000007")
        let qkv = try #require(checkpoint.tensors["decoder.layers.self_attention.linear_qkv.weight"])
        #expect(qkv.shape == [4, 144, 48] && qkv.chunks.count == 8)  // 4 layers x 2 TP shards of 72 rows
        #expect(Set(qkv.chunks.map(\.offsets)) == Set((0..<4).flatMap { layer in [[layer, 0, 0], [layer, 72, 0]] }))
        #expect(qkv.chunks.allSatisfy { $0.sizes == [1, 72, 48] })
        #expect(checkpoint.tensors["output_layer.weight"] == nil)  // tied: only the word embedding is saved
        #expect(!checkpoint.keys.contains { $0.hasSuffix("_extra_state") })  // bytes entries are not tensors
        // An iteration folder given directly (no tracker file): the iteration from common.pt.
        let (_, iteration) = try MegatronLMCheckpoint.read(directory: Self.fixtures + "/dist-tp1/iter_0000007")
        #expect(iteration == 7)
    }

    /// Damaged input is one error naming the file and what is wrong with it.
    @Test func damagedInputIsNamed() throws {
        let directory = ResumeTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let folder = directory + "/iter_0000007"
        func fresh() throws {
            try? FileManager.default.removeItem(atPath: directory)
            try FileManager.default.copyItem(atPath: Self.fixtures + "/dist-tp2pp2", toPath: directory)
        }
        func refused(_ words: String...) {
            #expect { _ = try MegatronLMCheckpoint.read(directory: directory) } throws: { error in
                words.allSatisfy { "\(error)".contains($0) }
            }
        }
        try fresh()
        let shard = try MappedFile.read(path: folder + "/__1_1.distcp")
        try AtomicFile.write(Array(shard.prefix(shard.count - 1000)), to: folder + "/__1_1.distcp")
        refused("__1_1.distcp", "truncated")
        try fresh()
        try AtomicFile.write(Array(shard.prefix(100)) + [UInt8](repeating: 0, count: shard.count - 100), to: folder + "/__1_1.distcp")
        refused("__1_1.distcp", "not a readable torch.save archive")
        try fresh()
        let metadata = try MappedFile.read(path: folder + "/.metadata")
        try AtomicFile.write(Array(metadata.prefix(metadata.count / 2)), to: folder + "/.metadata")
        refused(".metadata", "pickle")
        // Sizes no file could hold (dist-damaged/, written by damaged_metadata()) are refused
        // before anything is allocated for them.
        for (damaged, words) in [("overflow", "overflows"), ("oversized", "has only 407081 bytes")] {
            try fresh()
            try AtomicFile.write(try MappedFile.read(path: Self.fixtures + "/dist-damaged/\(damaged).metadata"), to: folder + "/.metadata")
            refused(".metadata", "embedding.word_embeddings.weight", words)
        }
        try fresh()
        try FileManager.default.removeItem(atPath: folder + "/common.pt")
        refused("common.pt", "missing", "no common_state/shard_0_1")
        try fresh()
        try AtomicFile.write(Array(#"{"sharded_backend": "zarr"}"#.utf8), to: folder + "/metadata.json")
        refused("metadata.json", "zarr is not read")
        try fresh()
        #expect { _ = try MegatronLMCheckpoint.readWithOptimizer(directory: directory) } throws: {
            "\($0)".contains("no optimizer state (saved with --no-save-optim?)")
        }
    }
}
