#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import FileSupport
import Models
import Parameters
import TorchFormat

/// A checkpoint of Megatron-LM's legacy layout read into a whole `GPTModel`:
/// `latest_checkpointed_iteration.txt` naming `iter_NNNNNNN` (or `release`), whose
/// `mp_rank_TT[_PPP]/model_optim_rng.pt` files are `torch.save` archives of `{'args', 'iteration',
/// 'model', ...}`. The model's shape comes from `args` (Megatron-LM's argument names); the
/// tensor-parallel shards are put back together as Megatron cut them, each pipeline stage's (or,
/// interleaved, each model chunk's: `model0`, `model1`, ...) local layer numbers offset to global ones. Parameter names are megatron-core's, of the local layer
/// spec (this project's) or of the Transformer Engine spec (`layer_norm_weight` inside
/// `linear_qkv` and `linear_fc1`, `_extra_state` entries skipped). The vocabulary is Megatron's
/// padded one, every row trained and in the softmax, as in Megatron. An untied output layer
/// (`--untie-embeddings-and-output-weights`) is read from the last stage's `output_layer.weight`.
public enum MegatronLMCheckpoint {
    /// The model in `directory` (a checkpoint root with its tracker file, or one iteration's
    /// folder) and the iteration it was saved at (0 for `release`).
    /// A `torch_dist` checkpoint (megatron-core's `metadata.json` in the iteration folder) is read
    /// by `readDistributed`.
    public static func read(directory: String) throws(TrainingError) -> (model: GPTModel, iteration: Int) {
        let (folder, trackedIteration) = try iterationFolder(directory)
        if isDistributed(folder) { return try readDistributed(folder: folder, trackedIteration: trackedIteration) }
        let checkpoint = try open(directory)
        return (try checkpoint.model(), checkpoint.iteration)
    }

    /// One parameter of a rank file's state dict: megatron-core's key, this project's name (nil
    /// for the last stage's copy of the tied word embedding, which is still a parameter there)
    /// and the tensor.
    struct Entry {
        let key: String
        let name: String?
        let tensor: TorchTensor
    }

    /// The file of one tensor-parallel rank of one stage, with its parameters in state-dict order
    /// (megatron-core's `named_parameters` order; the model chunks' one after another).
    struct RankFile {
        let file: TorchFile
        let folder: String
        let rank: Int
        let stage: Int
        /// Per model chunk (one unless interleaved), the parameters in order.
        let chunks: [[Entry]]
    }

    /// A Megatron-LM checkpoint opened: its arguments, the model's shape and layout, and every
    /// rank file's parameters (not yet read).
    struct Opened {
        let folder: String
        let iteration: Int
        let arguments: MegatronLMArguments
        let config: GPTConfig
        let tensorParallel: Int
        let files: [RankFile]

        /// The whole model, the tensor-parallel shards put together.
        func model() throws(TrainingError) -> GPTModel {
            let model: GPTModel
            do { model = try GPTModel(config: config) } catch {
                throw .checkpoint(path: folder, reason: "its model arguments are not a valid GPT: \(error)")
            }
            try place(into: model.params) { file, entry throws(TrainingError) in try file.file.floats(entry.tensor, key: entry.key) }
            model.weightsDidChange()
            return model
        }

        /// Fills `store` (laid out as the whole model) from every rank file's parameters, each
        /// shard's values given by `values`; every tensor must be filled by the ranks it needs
        /// (a replicated one by rank 0, a split one by every rank).
        func place(into store: ParameterStore, values: (RankFile, Entry) throws(TrainingError) -> [Float]) throws(TrainingError) {
            let full = store.layout, t = tensorParallel
            var filled = [String: Set<Int>]()
            for file in files {
                for entry in file.chunks.joined() {
                    guard let name = entry.name else { continue }
                    guard let index = full.index(of: name) else {
                        throw .checkpoint(path: file.file.path, reason: "\(entry.key) is not a parameter of this GPT (an architecture this project does not implement?)")
                    }
                    let shard = TensorShard(name: name), fullShape = full.specs[index].shape
                    let expected = shard.shape(of: fullShape, size: t)
                    guard entry.tensor.shape == expected else {
                        throw .checkpoint(path: file.file.path, reason: "\(entry.key) has shape \(entry.tensor.shape), expected \(expected) for TP \(t)")
                    }
                    filled[name, default: []].insert(file.rank)
                    guard file.rank == 0 || shard != .replicated else { continue }
                    let shardValues = try values(file, entry)
                    guard shardValues.count == expected.reduce(1, *) else {
                        throw .checkpoint(path: file.file.path, reason: "\(entry.key): \(shardValues.count) values for shape \(expected)")
                    }
                    shardValues.withUnsafeBufferPointer { source in
                        shard.place(source.baseAddress!, into: store.pointer(at: index), fullShape: fullShape, rank: file.rank, size: t)
                    }
                }
            }
            for spec in full.specs {
                let needed = TensorShard(name: spec.name) == .replicated ? Set([0]) : Set(0..<t)
                guard let ranks = filled[spec.name], needed.isSubset(of: ranks) else {
                    throw .checkpoint(path: folder, reason: "\(spec.name) is missing from tensor-parallel rank(s) "
                                      + "\(needed.subtracting(filled[spec.name] ?? []).sorted())")
                }
            }
        }
    }

    /// Opens the checkpoint in `directory`: its arguments and each rank file's parameter list.
    static func open(_ directory: String) throws(TrainingError) -> Opened {
        let (folder, trackedIteration) = try iterationFolder(directory)
        let first = try open(folder, rankFolder(tensor: 0, pipeline: 0, pipelineParallel: nil, in: folder))
        let arguments = try MegatronLMArguments(first)
        let config = try arguments.modelConfig()
        let t = try arguments.integer("tensor_model_parallel_size", default: 1)
        let p = try arguments.integer("pipeline_model_parallel_size", default: 1)
        guard (1...4096).contains(t), (1...4096).contains(p) else {
            throw .checkpoint(path: first.path, reason: "args.tensor_model_parallel_size \(t) or pipeline_model_parallel_size \(p) is out of range")
        }
        let iteration = trackedIteration ?? first.root.entries?["iteration"]?.int ?? 0
        let v = try arguments.modelChunks(pipelineParallel: p, layers: config.numLayers)
        let perChunk = config.numLayers / (p * v)
        var files = [RankFile]()
        for stage in 0..<p {
            for rank in 0..<t {
                let rankFolder = rankFolder(tensor: rank, pipeline: stage, pipelineParallel: p, in: folder)
                let file = rank == 0 && stage == 0 ? first : try open(folder, rankFolder)
                // One state dict, or with the interleaved schedule one per model chunk (model0, ...).
                var chunks = [[Entry]]()
                for chunk in 0..<v {
                    let entry = v == 1 ? "model" : "model\(chunk)"
                    guard let state = file.root.entries?[entry]?.entries else {
                        throw .checkpoint(path: file.path, reason: "no '\(entry)' state dict (args say \(v) model chunk(s) per stage)")
                    }
                    var entries = [Entry]()
                    for key in state.keys where !key.hasSuffix("._extra_state") {
                        guard case let .tensor(tensor)? = state[key] else { continue }
                        let name = try ourName(key, firstLayer: (chunk * p + stage) * perChunk,
                                               untied: config.untieEmbeddingsAndOutputWeights, path: file.path)
                        entries.append(Entry(key: key, name: name, tensor: tensor))
                    }
                    chunks.append(entries)
                }
                files.append(RankFile(file: file, folder: rankFolder, rank: rank, stage: stage, chunks: chunks))
            }
        }
        return Opened(folder: folder, iteration: iteration, arguments: arguments, config: config, tensorParallel: t, files: files)
    }

    /// This project's name for megatron-core's `key` in a state dict whose layer 0 is global layer
    /// `firstLayer` (a pipeline stage's or model chunk's first), or nil for an
    /// entry that is not a weight of ours (`_extra_state`, the last stage's copy of the tied
    /// word embedding; `untied`, the output layer's own weight is ours).
    static func ourName(_ key: String, firstLayer: Int, untied: Bool, path: String) throws(TrainingError) -> String? {
        if key.hasSuffix("._extra_state") { return nil }
        if key == outputLayerName { return untied ? outputLayerName : nil }
        guard key.hasPrefix("decoder.layers.") else { return key }
        let parts = key.split(separator: ".", maxSplits: 3).map(String.init)
        guard parts.count == 4, let local = Int(parts[2]) else {
            throw .checkpoint(path: path, reason: "\(key) is not a layer parameter name")
        }
        let renamed = [  // Transformer Engine fuses the LayerNorms into the following linear layer
            "self_attention.linear_qkv.layer_norm_weight": "input_layernorm.weight",
            "self_attention.linear_qkv.layer_norm_bias": "input_layernorm.bias",
            "mlp.linear_fc1.layer_norm_weight": "pre_mlp_layernorm.weight",
            "mlp.linear_fc1.layer_norm_bias": "pre_mlp_layernorm.bias",
        ][parts[3]] ?? parts[3]
        return "decoder.layers.\(firstLayer + local).\(renamed)"
    }

    /// The iteration folder `directory` names and its iteration (nil for an iteration folder
    /// given directly: its files say).
    static func iterationFolder(_ directory: String) throws(TrainingError) -> (String, Int?) {
        let tracker = directory + "/" + Checkpoint.trackerName
        guard let text = try? String(contentsOfFile: tracker, encoding: .utf8) else { return (directory, nil) }
        let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if value == "release" { return (directory + "/release", 0) }
        guard let iteration = Int(value), iteration >= 0 else {
            throw .checkpoint(path: tracker, reason: "holds \"\(value)\", neither an iteration number nor release")
        }
        return (directory + "/" + Checkpoint.directoryName(iteration: iteration), iteration)
    }

    /// `mp_rank_TT` or `mp_rank_TT_PPP` (`pipelineParallel` nil: whichever exists for stage 0).
    static func rankFolder(tensor: Int, pipeline: Int, pipelineParallel: Int?, in folder: String) -> String {
        let plain = folder + "/" + Checkpoint.rankDirectoryName(tensorRank: tensor)
        let staged = folder + "/" + Checkpoint.rankDirectoryName(tensorRank: tensor, pipelineRank: pipeline)
        if let pipelineParallel { return pipelineParallel > 1 ? staged : plain }
        return FileManager.default.fileExists(atPath: staged) ? staged : plain
    }

    static func open(_ folder: String, _ rank: String) throws(TrainingError) -> TorchFile {
        let path = rank + "/model_optim_rng.pt"
        guard FileManager.default.fileExists(atPath: path) else {
            throw .checkpoint(path: path, reason: FileManager.default.fileExists(atPath: folder)
                ? "missing: neither a legacy checkpoint's rank file nor a torch_dist checkpoint's \(distributedMetadataName) is there"
                : "missing: \(folder) does not exist")
        }
        do { return try TorchFile(path: path) } catch { throw .checkpoint(error) }
    }
}

extension TorchFile {
    /// `tensor`'s values as fp32 (entry `key` of the file), or a checkpoint error naming both.
    func floats(_ tensor: TorchTensor, key: String) throws(TrainingError) -> [Float] {
        do { return try floats(tensor, name: key) } catch { throw .checkpoint(error) }
    }
}
