#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Distributed
import Models
import Parameters

/// The latest checkpoint of a directory with its tensor- and pipeline-parallel shards put back
/// together: whole weights and (optionally) whole Adam moments, whichever optimizer wrote them.
/// `reshard` cuts it again for another layout (Megatron's checkpoint converter).
public struct MergedCheckpoint {
    public let config: GPTConfig
    public let iteration: Int
    /// Tensor-parallel size it was saved with.
    public let tensorParallel: Int
    /// Pipeline-parallel size and model chunks per stage it was saved with.
    public let pipelineParallel: Int
    public let chunks: Int
    /// Whole weights, laid out as a single-rank model.
    public let params: ParameterStore
    /// Whole Adam moments (when read).
    public let moments: (m: ParameterStore, v: ParameterStore)?
    /// The first rank's metadata (run state, arguments, schedule).
    public let metadata: [String: String]

    /// Reads every model-parallel rank's folder of the latest checkpoint in `directory`, the
    /// weights into `destination` when given (a store laid out as the whole model).
    public init(directory: String, moments readMoments: Bool, into destination: ParameterStore? = nil) throws(TrainingError) {
        let first = try Checkpoint.latestFirstRank(in: directory)
        let config = try Checkpoint.storedModelConfig(first.file, path: first.path)
        let layout = first.layout
        let t = layout.tensorParallel
        do {
            try RankGrid(tensorParallel: t, dataParallel: 1, pipelineParallel: layout.pipelineParallel)
                .validate(heads: config.numAttentionHeads, hidden: config.hiddenSize, paddedVocabulary: config.paddedVocabSize,
                          layers: config.numLayers)
        } catch {
            throw .checkpoint(path: first.path, reason: "its layout (\(layout.description)) does not fit its model: \(error.description)")
        }
        let full = ParameterLayout(GPTModel.parameterSpecs(config))
        if let destination {
            precondition(destination.layout.specs.map(\.name) == full.specs.map(\.name), "the destination is not laid out as the whole model")
        }
        params = destination ?? ParameterStore(layout: full)
        let m = readMoments ? ParameterStore(layout: full) : .unallocated(layout: full)
        let v = readMoments ? ParameterStore(layout: full) : .unallocated(layout: full)
        for stage in 0..<layout.pipelineParallel {
            let part = try layout.part(numLayers: config.numLayers, stage: stage, path: first.path)
            let local = ParameterLayout(GPTModel.parameterSpecs(config, tensorParallel: t, part: part))
            for rank in 0..<t {
                let directoryOfRank = first.iterationDirectory + "/" + layout.rankDirectoryName(tensorRank: rank, pipelineRank: stage)
                let (file, path) = rank == 0 && stage == 0 ? (first.file, first.path) : try CheckpointFiles.openModel(in: directoryOfRank)
                guard try Checkpoint.number("tensor_model_parallel_rank", in: file, path: path, fallback: 0) == rank,
                      try Checkpoint.number("pipeline_model_parallel_rank", in: file, path: path, fallback: 0) == stage,
                      try Checkpoint.StoredLayout(file, path: path) == layout,
                      file.metadata["model"] == first.file.metadata["model"] else {
                    throw .checkpoint(path: path, reason: "it is not tensor-parallel rank \(rank) of stage \(stage) under \(layout.description) of the same model")
                }
                // One rank holding the whole model is read in place; shards go through a staging store.
                let whole = t == 1 && layout.pipelineParallel == 1
                let weights = whole ? params : ParameterStore(layout: local)
                try CheckpointFiles.read(file, path: path, prefix: "", into: weights)
                try CheckpointFiles.requireFinite(weights, path: path)
                var stores = whole ? [] : [(weights, params)]
                if readMoments {
                    let localM = ParameterStore(layout: local), localV = ParameterStore(layout: local)
                    try CheckpointFiles.readMoments(in: directoryOfRank, model: file, path: path, into: localM, localV)
                    stores += [(localM, m), (localV, v)]
                }
                // Replicated tensors come from tensor rank 0; the word embedding's copy on the
                // last stage equals the first stage's, so writing it twice changes nothing.
                for (source, destination) in stores {
                    for (index, spec) in local.specs.enumerated() {
                        let shard = TensorShard(name: spec.name)
                        guard rank == 0 || shard != .replicated, let target = full.index(of: spec.name) else { continue }
                        shard.place(source.pointer(at: index), into: destination.pointer(at: target),
                                    fullShape: full.specs[target].shape, rank: rank, size: t)
                    }
                }
            }
        }
        self.config = config
        self.iteration = first.iteration
        tensorParallel = t
        pipelineParallel = layout.pipelineParallel
        chunks = layout.chunks
        moments = readMoments ? (m, v) : nil
        metadata = first.file.metadata
    }

    /// Writes the checkpoint into `directory` split over `tensorParallel` x `pipelineParallel`
    /// ranks with `chunks` model chunks per stage, the moments per tensor (loadable with or
    /// without the distributed optimizer, under any data-parallel size).
    public func reshard(to directory: String, tensorParallel t: Int, pipelineParallel p: Int = 1,
                        chunks: Int = 1) throws(TrainingError) {
        let flag = "--target-tensor-model-parallel-size \(t) --target-pipeline-model-parallel-size \(p)"
        let layout = Checkpoint.StoredLayout(tensorParallel: t, pipelineParallel: p, chunks: chunks)
        var parts = [GPTPipelinePart]()
        do {
            try RankGrid(tensorParallel: t, dataParallel: 1, pipelineParallel: p, virtualStages: chunks)
                .validate(heads: config.numAttentionHeads, hidden: config.hiddenSize, paddedVocabulary: config.paddedVocabSize,
                          layers: config.numLayers)
            parts = try (0..<p).map { try GPTPipelinePart(numLayers: config.numLayers, stages: p, stage: $0, chunks: chunks) }
        } catch let error as LayoutError {
            throw .invalidFlag(flag, "cannot split this model: \(error.description)")
        } catch {
            throw .invalidFlag(flag, "cannot split this model: \(error)")
        }
        guard let moments else { preconditionFailure("reshard needs the moments: read with moments: true") }
        let full = params.layout
        let target = CheckpointDirectory(root: directory, iteration: iteration)
        try target.prepare()
        for part in parts {
            let local = ParameterLayout(GPTModel.parameterSpecs(config, tensorParallel: t, part: part))
            for rank in 0..<t {
                let stores = (0..<3).map { _ in ParameterStore(layout: local) }
                for (source, destination) in zip([params, moments.m, moments.v], stores) {
                    for (index, spec) in local.specs.enumerated() {
                        let fullIndex = full.index(of: spec.name)!
                        TensorShard(name: spec.name).slice(source.pointer(at: fullIndex), into: destination.pointer(at: index),
                                                           fullShape: full.specs[fullIndex].shape, rank: rank, size: t)
                    }
                }
                var rankMetadata = metadata
                let dataParallel = metadata["data_parallel_size"] ?? "1"
                rankMetadata.merge(Checkpoint.layoutMetadata(tensorParallel: t, tensorRank: rank, part: part,
                                                             dataParallel: Int(dataParallel) ?? 1, sharded: false)) { $1 }
                let name = layout.rankDirectoryName(tensorRank: rank, pipelineRank: part.stage)
                try CheckpointFiles.writeModel(to: try target.rankDirectory(name), params: stores[0],
                                               moments: (stores[1], stores[2]), metadata: rankMetadata)
            }
        }
        try target.commit()
    }
}
