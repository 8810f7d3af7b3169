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
    public static func read(directory: String) throws(TrainingError) -> (model: GPTModel, iteration: Int) {
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
        let model: GPTModel
        do { model = try GPTModel(config: config) } catch {
            throw .checkpoint(path: first.path, reason: "its model arguments are not a valid GPT: \(error)")
        }
        let full = model.layout
        // Which tensor-parallel ranks filled each tensor (a replicated one needs rank 0, a split
        // one every rank: a shard missing from one file must not leave its part zero).
        var filled = [String: Set<Int>]()
        /// Places the tensors of one state dict (tensor-parallel rank `rank`, layers from `firstLayer`).
        func place(_ state: PickleDict, from file: TorchFile, rank: Int, firstLayer: Int) throws(TrainingError) {
            for key in state.keys {
                guard case let .tensor(tensor)? = state[key],
                      let name = try ourName(key, firstLayer: firstLayer, untied: config.untieEmbeddingsAndOutputWeights, path: file.path)
                else { continue }
                guard let index = full.index(of: name) else {
                    throw .checkpoint(path: file.path, reason: "\(key) is not a parameter of this GPT (an architecture this project does not implement?)")
                }
                let shard = TensorShard(name: name), fullShape = full.specs[index].shape
                let expected = shard.shape(of: fullShape, size: t)
                guard tensor.shape == expected else {
                    throw .checkpoint(path: file.path, reason: "\(key) has shape \(tensor.shape), expected \(expected) for TP \(t)")
                }
                filled[name, default: []].insert(rank)
                guard rank == 0 || shard != .replicated else { continue }
                let values: [Float]
                do { values = try file.floats(tensor, name: key) } catch { throw .checkpoint(path: error.path, reason: error.reason) }
                values.withUnsafeBufferPointer { source in
                    shard.place(source.baseAddress!, into: model.params.pointer(at: index), fullShape: fullShape, rank: rank, size: t)
                }
            }
        }
        for stage in 0..<p {
            for rank in 0..<t {
                let file = rank == 0 && stage == 0 ? first
                    : try open(folder, rankFolder(tensor: rank, pipeline: stage, pipelineParallel: p, in: folder))
                // One state dict, or with the interleaved schedule one per model chunk (model0, ...).
                for chunk in 0..<v {
                    let entry = v == 1 ? "model" : "model\(chunk)"
                    guard let state = file.root.entries?[entry]?.entries else {
                        throw .checkpoint(path: file.path, reason: "no '\(entry)' state dict (args say \(v) model chunk(s) per stage)")
                    }
                    try place(state, from: file, rank: rank, firstLayer: (chunk * p + stage) * perChunk)
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
        model.weightsDidChange()
        return (model, iteration)
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
                ? "missing (a torch_dist checkpoint? convert it to the legacy layout with Megatron-LM's --ckpt-format torch)"
                : "missing: \(folder) does not exist")
        }
        do { return try TorchFile(path: path) } catch { throw .checkpoint(path: error.path, reason: error.reason) }
    }
}
