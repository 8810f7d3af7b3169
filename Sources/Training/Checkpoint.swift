#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import FileSupport
import Models
import Optimizer
import Parameters

/// Megatron-style checkpoint directories: `DIR/iter_0000100/mp_rank_TT/model_optim_rng.safetensors`
/// per tensor-parallel rank (its shard of the weights, the Adam moments, and the run state in the
/// header's metadata), `distrib_optim_dp_RR.safetensors` beside it per data-parallel rank when the
/// distributed optimizer holds the moments, and `DIR/latest_checkpointed_iteration.txt`. Saving
/// under a layout and loading under the same one resumes bit-identically; the data-parallel size
/// and the optimizer kind may change at load, the tensor-parallel size through `reshard`.
public enum Checkpoint {
    /// What is restored besides the tensors.
    public struct State: Equatable, Sendable {
        public var iteration: Int
        public var consumedSamples: Int
        public var consumedValidSamples: Int
        public var optimizerStep: Int
        public var seed: Int

        public init(iteration: Int, consumedSamples: Int, consumedValidSamples: Int, optimizerStep: Int, seed: Int) {
            self.iteration = iteration
            self.consumedSamples = consumedSamples
            self.consumedValidSamples = consumedValidSamples
            self.optimizerStep = optimizerStep
            self.seed = seed
        }
    }

    /// Where a rank's Adam moments live.
    public enum Moments {
        /// Moments of every local tensor (AdamW over the whole local model).
        case whole(AdamWOptimizer)
        /// This data-parallel rank's flat slice (ZeRO-1).
        case sharded(DistributedOptimizer)

        var step: Int {
            switch self {
            case .whole(let optimizer): optimizer.step
            case .sharded(let optimizer): optimizer.step
            }
        }
    }

    static let trackerName = "latest_checkpointed_iteration.txt"

    /// `iter_0000100`.
    public static func directoryName(iteration: Int) -> String {
        let digits = String(iteration)
        return "iter_" + String(repeating: "0", count: max(0, 7 - digits.count)) + digits
    }

    /// `mp_rank_00`, Megatron's folder of a tensor-parallel rank.
    public static func rankDirectoryName(tensorRank: Int) -> String {
        "mp_rank_" + (tensorRank < 10 ? "0" : "") + String(tensorRank)
    }

    /// Writes this rank's part of a checkpoint into `directory` (created if needed). Collective
    /// over `parallel.world`: the first data-parallel rank of each tensor-parallel rank writes the
    /// model file, every rank its optimizer shard when sharded, global rank 0 moves the directory
    /// into place.
    public static func save(to directory: String, model: GPTModel, moments: Moments, state: State,
                            arguments: JSONValue = .object([]), schedule: LearningRateSchedule? = nil,
                            parallel: ParallelState = .single) throws(TrainingError) {
        let target = CheckpointDirectory(root: directory, iteration: state.iteration)
        if parallel.isFirst { try target.prepare() }
        parallel.world?.barrier()
        let rankDirectory = try target.rankDirectory(tensorRank: parallel.tensorRank)
        var sharded = false
        if case .sharded(let optimizer) = moments {
            sharded = true
            let range = optimizer.shardRange
            try CheckpointFiles.writeShard(to: rankDirectory, dataRank: parallel.dataRank, dataParallel: parallel.dataParallel,
                                           range: range, m: optimizer.m.pointer, v: optimizer.v.pointer)
        }
        if parallel.dataRank == 0 {
            var metadata = [
                "format": "megatron-swift checkpoint 1",
                "model": modelDescription(model.config).serialized,
                "config": String(decoding: (try? JSONEncoder().encode(model.config)) ?? Data(), as: UTF8.self),
                "iteration": String(state.iteration),
                "consumed_samples": String(state.consumedSamples),
                "consumed_valid_samples": String(state.consumedValidSamples),
                "optimizer_step": String(state.optimizerStep),
                "seed": String(state.seed),
                "args": arguments.serialized,
                "scheduler": schedule.map { String(decoding: (try? JSONEncoder().encode($0)) ?? Data(), as: UTF8.self) } ?? "null",
            ]
            metadata.merge(layoutMetadata(tensorParallel: model.tensorParallelSize, tensorRank: model.tensorParallelRank,
                                          dataParallel: parallel.dataParallel, sharded: sharded)) { $1 }
            var whole: (m: ParameterStore, v: ParameterStore)?
            if case .whole(let optimizer) = moments { whole = (optimizer.m, optimizer.v) }
            try CheckpointFiles.writeModel(to: rankDirectory, params: model.params, moments: whole, metadata: metadata)
        }
        parallel.world?.barrier()
        if parallel.isFirst { try target.commit() }
        parallel.world?.barrier()
    }

    /// The metadata that says how a rank file was sharded.
    static func layoutMetadata(tensorParallel: Int, tensorRank: Int, dataParallel: Int, sharded: Bool) -> [String: String] {
        ["tensor_model_parallel_size": String(tensorParallel), "tensor_model_parallel_rank": String(tensorRank),
         "data_parallel_size": String(dataParallel), "distributed_optimizer": sharded ? "true" : "false"]
    }

    /// The iteration named by `directory`'s tracker file.
    public static func latestIteration(in directory: String) throws(TrainingError) -> Int {
        let path = directory + "/" + trackerName
        let text: String
        do { text = String(decoding: try MappedFile.read(path: path), as: UTF8.self) } catch {
            throw .checkpoint(path: directory, reason: "no \(trackerName) (\(error.reason))")
        }
        guard let iteration = Int(text.filter { !$0.isWhitespace }), iteration >= 0 else {
            throw .checkpoint(path: path, reason: "does not hold an iteration number")
        }
        return iteration
    }

    /// The folder of tensor-parallel rank `tensorRank` in the latest checkpoint in `directory`.
    static func latestRankDirectory(in directory: String, tensorRank: Int) throws(TrainingError) -> (path: String, iteration: Int) {
        let iteration = try latestIteration(in: directory)
        return (directory + "/" + directoryName(iteration: iteration) + "/" + rankDirectoryName(tensorRank: tensorRank), iteration)
    }

    /// An integer from a rank file's metadata (`fallback` when absent, e.g. older files).
    static func number(_ key: String, in file: SafeTensorsFile, path: String, fallback: Int? = nil) throws(TrainingError) -> Int {
        guard let text = file.metadata[key] else {
            if let fallback { return fallback }
            throw .checkpoint(path: path, reason: "metadata \(key) is missing")
        }
        guard let value = Int(text) else { throw .checkpoint(path: path, reason: "metadata \(key) is not a number: \(text)") }
        return value
    }

    /// Loads this rank's part of the latest checkpoint in `directory` into `model` and `moments`;
    /// throws if it was made for another model shape or tensor-parallel size, or is damaged.
    public static func load(from directory: String, model: GPTModel, moments: Moments) throws(TrainingError) -> State {
        let (rankDirectory, _) = try latestRankDirectory(in: directory, tensorRank: model.tensorParallelRank)
        let (file, path) = try CheckpointFiles.openModel(in: rankDirectory)
        let expected = modelDescription(model.config).serialized
        guard let stored = file.metadata["model"] else {
            throw .checkpoint(path: path, reason: "no model description in its metadata")
        }
        guard stored == expected else {
            throw .checkpoint(path: path, reason: "it holds the model \(stored) but this run asks for \(expected)")
        }
        let storedTensorParallel = try number("tensor_model_parallel_size", in: file, path: path, fallback: 1)
        guard storedTensorParallel == model.tensorParallelSize else {
            throw .checkpoint(path: path, reason: "it was saved with --tensor-model-parallel-size \(storedTensorParallel) but this run uses "
                + "\(model.tensorParallelSize); reshard it with megatron convert --target-tensor-model-parallel-size \(model.tensorParallelSize)")
        }
        let state = State(iteration: try number("iteration", in: file, path: path),
                          consumedSamples: try number("consumed_samples", in: file, path: path),
                          consumedValidSamples: try number("consumed_valid_samples", in: file, path: path),
                          optimizerStep: try number("optimizer_step", in: file, path: path),
                          seed: try number("seed", in: file, path: path))
        try CheckpointFiles.read(file, path: path, prefix: "", into: model.params)
        switch moments {
        case .whole(let optimizer):
            try CheckpointFiles.readMoments(in: rankDirectory, model: file, path: path, into: optimizer.m, optimizer.v)
            optimizer.restore(step: state.optimizerStep)
        case .sharded(let optimizer):
            // Whole moments of this TP rank, of which this DP rank keeps its slice.
            let m = ParameterStore(layout: model.layout), v = ParameterStore(layout: model.layout)
            try CheckpointFiles.readMoments(in: rankDirectory, model: file, path: path, into: m, v)
            optimizer.restore(m: m.buffer.pointer, v: v.buffer.pointer, step: state.optimizerStep)
        }
        return state
    }

    /// The whole model of the latest checkpoint in `directory` (tensor-parallel shards merged),
    /// built from the configuration stored in it (for evaluation, generation and export; the
    /// optimizer state is not read).
    public static func loadModel(from directory: String) throws(TrainingError) -> (model: GPTModel, iteration: Int) {
        let merged = try MergedCheckpoint(directory: directory, moments: false)
        let model: GPTModel
        do { model = try GPTModel(config: merged.config) } catch { throw .checkpoint(path: directory, reason: error.description) }
        model.params.buffer.pointer.update(from: merged.params.buffer.pointer, count: model.layout.totalCount)
        return (model, merged.iteration)
    }

    /// The shape fields a checkpoint must match.
    static func modelDescription(_ config: GPTConfig) -> JSONValue {
        .object([
            ("num_layers", .number(Double(config.numLayers))),
            ("hidden_size", .number(Double(config.hiddenSize))),
            ("num_attention_heads", .number(Double(config.numAttentionHeads))),
            ("max_position_embeddings", .number(Double(config.maxPositionEmbeddings))),
            ("padded_vocab_size", .number(Double(config.paddedVocabSize))),
        ])
    }
}
