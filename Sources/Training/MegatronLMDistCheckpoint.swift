#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import FileSupport
import Models
import Parameters
import TorchFormat

/// Megatron-LM's `torch_dist` checkpoints (its default `--ckpt-format`), read into a whole
/// `GPTModel`. An iteration folder holds megatron-core's `metadata.json` (naming the
/// `torch_dist` backend), the common state (a `torch.save` of `{'args', 'iteration', ...}`:
/// `common.pt`, or inside the sharded files) and a `torch.distributed.checkpoint` of the sharded
/// state (`DistributedCheckpoint`). Each model
/// tensor is saved whole-shaped, whatever the TP x PP layout: the ranks' shards are chunks at
/// their global offsets, and the layers are stacked on a leading axis of `num_layers` (key
/// `decoder.layers.<name>`, layer i at index i). Parameter names are the Transformer Engine
/// spec's (megatron-core saves the local spec's LayerNorms under them too).
extension MegatronLMCheckpoint {
    /// The file megatron-core writes into a sharded checkpoint's folder, naming its backend.
    static let distributedMetadataName = "metadata.json"
    /// How the model's own keys start (the optimizer's are prefixed `optimizer.`).
    static let modelKeyPrefixes = ["embedding.", "decoder.", "output_layer."]

    /// Whether the iteration folder `folder` holds a sharded (`dist_checkpointing`) checkpoint.
    static func isDistributed(_ folder: String) -> Bool {
        FileManager.default.fileExists(atPath: folder + "/" + distributedMetadataName)
    }

    /// A `torch_dist` checkpoint opened: its sharded files, the common state (and the file it was
    /// read from, for its tensors), the arguments and the model's shape.
    struct OpenedDistributed {
        let checkpoint: DistributedCheckpoint
        let commonFile: TorchFile
        let common: PickleValue
        let arguments: MegatronLMArguments
        let config: GPTConfig
        let iteration: Int

        /// The whole model, its weights from the checkpoint's model tensors.
        func model() throws(TrainingError) -> GPTModel {
            let model: GPTModel
            do { model = try GPTModel(config: config) } catch {
                throw .checkpoint(path: commonFile.path, reason: "its model arguments are not a valid GPT: \(error)")
            }
            try place(into: model.params)
            model.weightsDidChange()
            return model
        }

        /// Fills `store` (the whole model's layout) from the tensors `<prefix><model key>`: every
        /// parameter must be there, with its shape; other keys are passed over.
        func place(into store: ParameterStore, prefix: String = "") throws(TrainingError) {
            try MegatronLMCheckpoint.place(checkpoint, into: store, config: config, prefix: prefix)
        }
    }

    /// The model and iteration of the `torch_dist` checkpoint in iteration folder `folder`
    /// (`trackedIteration` from the tracker file, when there is one).
    static func readDistributed(folder: String, trackedIteration: Int?) throws(TrainingError) -> (model: GPTModel, iteration: Int) {
        let opened = try openDistributed(folder: folder, trackedIteration: trackedIteration)
        return (try opened.model(), opened.iteration)
    }

    static func openDistributed(folder: String, trackedIteration: Int?) throws(TrainingError) -> OpenedDistributed {
        try checkBackend(folder)
        let checkpoint: DistributedCheckpoint
        do { checkpoint = try DistributedCheckpoint(folder: folder) } catch { throw .checkpoint(error) }
        let (file, common) = try commonState(checkpoint)
        let arguments = try MegatronLMArguments(state: common, path: file.path)
        return OpenedDistributed(checkpoint: checkpoint, commonFile: file, common: common, arguments: arguments,
                                 config: try arguments.modelConfig(),
                                 iteration: trackedIteration ?? common.entries?["iteration"]?.int ?? 0)
    }

    /// The saved dict of everything that is not sharded (`args`, `iteration`, ...) and the file
    /// it was read from: megatron-core 0.16 and earlier write it to `common.pt`; newer versions
    /// keep it in the sharded files as the byte entry `common_state/shard_0_1`, a `torch.save` of
    /// a one-element list.
    private static func commonState(_ checkpoint: DistributedCheckpoint) throws(TrainingError) -> (TorchFile, PickleValue) {
        let commonPath = checkpoint.folder + "/common.pt", entry = "common_state/shard_0_1"
        do throws(FileError) {
            if FileManager.default.fileExists(atPath: commonPath) {
                let file = try TorchFile(path: commonPath)
                return (file, file.root)
            }
            guard checkpoint.hasBytes(entry) else {
                throw FileError(path: commonPath, reason: "missing, and .metadata has no \(entry) entry either: the checkpoint's args are nowhere")
            }
            let file = try checkpoint.torchFile(ofBytes: entry)
            guard let state = file.root.items?.first else { throw FileError(path: file.path, reason: "is not a list holding the common state") }
            return (file, state)
        } catch { throw .checkpoint(error) }
    }

    /// metadata.json must name the `torch_dist` backend (not `zarr` or another).
    private static func checkBackend(_ folder: String) throws(TrainingError) {
        let path = folder + "/" + distributedMetadataName
        let fields: JSONValue
        do { fields = try JSONValue.parse(utf8: try MappedFile.read(path: path)) } catch {
            throw .checkpoint(path: path, reason: "unreadable or not JSON: \(error)")
        }
        guard case let .string(backend)? = fields["sharded_backend"] else { throw .checkpoint(path: path, reason: "names no sharded_backend") }
        guard backend == "torch_dist" else {
            throw .checkpoint(path: path, reason: "sharded backend \(backend) is not read (only torch_dist)")
        }
    }

    /// Fills `store` (the whole model's layout) from the checkpoint's tensors `<prefix><model
    /// key>` (the model's weights with no prefix; the plain optimizer's moments under
    /// `optimizer.state.exp_avg.` and so on): every parameter must be there, with its shape; other
    /// keys are passed over.
    static func place(_ checkpoint: DistributedCheckpoint, into store: ParameterStore, config: GPTConfig, prefix: String) throws(TrainingError) {
        let layout = store.layout, layerPrefix = "decoder.layers."
        var filled = Set<String>()
        func put(_ key: String, _ values: ArraySlice<Float>, shape: [Int]) throws(TrainingError) {
            guard let name = try ourName(String(key.dropFirst(prefix.count)), firstLayer: 0, untied: config.untieEmbeddingsAndOutputWeights,
                                         path: checkpoint.folder) else { return }
            guard let index = layout.index(of: name) else {
                throw .checkpoint(path: checkpoint.folder, reason: "\(key) is not a parameter of this GPT (an architecture this project does not implement?)")
            }
            guard layout.specs[index].shape == shape else {
                throw .checkpoint(path: checkpoint.folder, reason: "\(key) has shape \(shape), expected \(layout.specs[index].shape) for the args' model")
            }
            values.withUnsafeBufferPointer { store.pointer(at: index).update(from: $0.baseAddress!, count: $0.count) }
            filled.insert(name)
        }
        for key in checkpoint.keys where modelKeyPrefixes.contains(where: { key.hasPrefix(prefix + $0) }) {
            guard let shape = checkpoint.tensors[key]?.shape else { continue }
            let values: [Float]
            do { values = try checkpoint.floats(key) } catch { throw .checkpoint(error) }
            guard key.hasPrefix(prefix + layerPrefix) else {
                try put(key, values[...], shape: shape)
                continue
            }
            guard shape.first == config.numLayers else {
                throw .checkpoint(path: checkpoint.folder, reason: "\(key) stacks \(shape.first ?? 0) layers; the args say num_layers \(config.numLayers)")
            }
            let perLayer = values.count / config.numLayers, name = key.dropFirst(prefix.count + layerPrefix.count)
            for layer in 0..<config.numLayers {
                try put("\(prefix)\(layerPrefix)\(layer).\(name)", values[(layer * perLayer)..<((layer + 1) * perLayer)], shape: Array(shape.dropFirst()))
            }
        }
        if let missing = layout.specs.first(where: { !filled.contains($0.name) }) {
            throw .checkpoint(path: checkpoint.folder, reason: "holds no \(prefix)\(missing.name) (megatron-core's key for it is missing from .metadata)")
        }
    }
}
