#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Distributed
import Models
import Parameters

/// The latest checkpoint of a directory with its tensor-parallel shards put back together: whole
/// weights and (optionally) whole Adam moments, whichever optimizer wrote them. `reshard` cuts it
/// again for another tensor-parallel size (Megatron's checkpoint converter).
public struct MergedCheckpoint {
    public let config: GPTConfig
    public let iteration: Int
    /// Tensor-parallel size it was saved with.
    public let tensorParallel: Int
    /// Whole weights, laid out as a single-rank model.
    public let params: ParameterStore
    /// Whole Adam moments (when read).
    public let moments: (m: ParameterStore, v: ParameterStore)?
    /// Tensor-parallel rank 0's metadata (run state, arguments, schedule).
    public let metadata: [String: String]

    /// Reads every tensor-parallel rank's folder of the latest checkpoint in `directory`.
    public init(directory: String, moments readMoments: Bool) throws(TrainingError) {
        let (first, iteration) = try Checkpoint.latestRankDirectory(in: directory, tensorRank: 0)
        let (firstFile, firstPath) = try CheckpointFiles.openModel(in: first)
        guard let text = firstFile.metadata["config"],
              let config = try? JSONDecoder().decode(GPTConfig.self, from: Data(text.utf8)) else {
            throw .checkpoint(path: firstPath, reason: "no model configuration in its metadata")
        }
        let t = try Checkpoint.number("tensor_model_parallel_size", in: firstFile, path: firstPath, fallback: 1)
        let full = ParameterLayout(GPTModel.parameterSpecs(config))
        let local = ParameterLayout(GPTModel.parameterSpecs(config, tensorParallel: t))
        let shards = full.specs.map { TensorShard(name: $0.name) }
        params = ParameterStore(layout: full)
        let m = ParameterStore(layout: full), v = ParameterStore(layout: full)
        for rank in 0..<t {
            let directoryOfRank = rank == 0 ? first : try Checkpoint.latestRankDirectory(in: directory, tensorRank: rank).path
            let (file, path) = rank == 0 ? (firstFile, firstPath) : try CheckpointFiles.openModel(in: directoryOfRank)
            guard try Checkpoint.number("tensor_model_parallel_rank", in: file, path: path, fallback: 0) == rank,
                  try Checkpoint.number("tensor_model_parallel_size", in: file, path: path, fallback: 1) == t,
                  file.metadata["model"] == firstFile.metadata["model"] else {
                throw .checkpoint(path: path, reason: "it is not tensor-parallel rank \(rank) of \(t) of the same model")
            }
            let weights = ParameterStore(layout: local)
            try CheckpointFiles.read(file, path: path, prefix: "", into: weights)
            var stores = [(weights, params)]
            if readMoments {
                let localM = ParameterStore(layout: local), localV = ParameterStore(layout: local)
                try CheckpointFiles.readMoments(in: directoryOfRank, model: file, path: path, into: localM, localV)
                stores += [(localM, m), (localV, v)]
            }
            for (source, destination) in stores {
                for (index, spec) in full.specs.enumerated() where rank == 0 || shards[index] != .replicated {
                    shards[index].place(source.pointer(at: index), into: destination.pointer(at: index),
                                        fullShape: spec.shape, rank: rank, size: t)
                }
            }
        }
        self.config = config
        self.iteration = iteration
        tensorParallel = t
        moments = readMoments ? (m, v) : nil
        metadata = firstFile.metadata
    }

    /// Writes the checkpoint into `directory` split over `tensorParallel` ranks, the moments per
    /// tensor (loadable with or without the distributed optimizer, under any data-parallel size).
    public func reshard(to directory: String, tensorParallel t: Int) throws(TrainingError) {
        do {
            let grid = try RankGrid(world: t, tensorParallel: t, pipelineParallel: 1)
            try grid.validate(heads: config.numAttentionHeads, hidden: config.hiddenSize, paddedVocabulary: config.paddedVocabSize,
                              layers: config.numLayers, globalBatchSize: 1, microBatchSize: 1)
        } catch {
            throw .invalidFlag("--target-tensor-model-parallel-size \(t)", "cannot split this model: \(error.description)")
        }
        guard let moments else { preconditionFailure("reshard needs the moments: read with moments: true") }
        let full = params.layout
        let local = ParameterLayout(GPTModel.parameterSpecs(config, tensorParallel: t))
        let target = CheckpointDirectory(root: directory, iteration: iteration)
        try target.prepare()
        for rank in 0..<t {
            let stores = (0..<3).map { _ in ParameterStore(layout: local) }
            for (source, destination) in zip([params, moments.m, moments.v], stores) {
                for (index, spec) in full.specs.enumerated() {
                    TensorShard(name: spec.name).slice(source.pointer(at: index), into: destination.pointer(at: index),
                                                       fullShape: spec.shape, rank: rank, size: t)
                }
            }
            var rankMetadata = metadata
            let dataParallel = metadata["data_parallel_size"] ?? "1"
            rankMetadata.merge(Checkpoint.layoutMetadata(tensorParallel: t, tensorRank: rank, dataParallel: Int(dataParallel) ?? 1,
                                                         sharded: false)) { $1 }
            try CheckpointFiles.writeModel(to: try target.rankDirectory(tensorRank: rank), params: stores[0],
                                           moments: (stores[1], stores[2]), metadata: rankMetadata)
        }
        try target.commit()
    }
}
