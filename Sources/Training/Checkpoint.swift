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

/// Megatron-style checkpoint directories: `DIR/iter_0000100/mp_rank_00/model_optim_rng.safetensors`
/// (weights, both Adam moments, and the run state in the header's metadata) and
/// `DIR/latest_checkpointed_iteration.txt`. A checkpoint is written to a temporary directory
/// and renamed into place before the tracker file is replaced, so a crash while saving leaves
/// the previous checkpoint and tracker intact. `mp_rank_TT[_PPP]` leaves room for model-parallel shards.
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

    static let trackerName = "latest_checkpointed_iteration.txt"
    static let fileName = "model_optim_rng.safetensors"

    /// `iter_0000100`.
    public static func directoryName(iteration: Int) -> String {
        let digits = String(iteration)
        return "iter_" + String(repeating: "0", count: max(0, 7 - digits.count)) + digits
    }

    /// Writes a checkpoint of `model` and `optimizer` into `directory` (created if needed).
    public static func save(to directory: String, model: GPTModel, optimizer: AdamWOptimizer,
                            state: State, arguments: JSONValue = .object([]),
                            schedule: LearningRateSchedule? = nil) throws(TrainingError) {
        let files = FileManager.default
        let final = directory + "/" + directoryName(iteration: state.iteration)
        let temporary = final + ".tmp-\(getpid())"
        do {
            try? files.removeItem(atPath: temporary)
            try files.createDirectory(atPath: temporary + "/mp_rank_00", withIntermediateDirectories: true)
        } catch {
            throw .checkpoint(path: directory, reason: "cannot create \(temporary): \(error)")
        }
        let layout = model.layout
        var tensors = [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)]()
        for (prefix, store) in [("", model.params), ("optimizer.exp_avg.", optimizer.m), ("optimizer.exp_avg_sq.", optimizer.v)] {
            for (index, spec) in layout.specs.enumerated() {
                tensors.append((prefix + spec.name, spec.shape,
                                UnsafeBufferPointer(start: store.pointer(at: index), count: spec.count)))
            }
        }
        let metadata = [
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
        do {
            try SafeTensorsFile.write(tensors, metadata: metadata, to: temporary + "/mp_rank_00/" + fileName)
        } catch {
            throw .checkpoint(path: temporary, reason: "\(error)")
        }
        do {
            if files.fileExists(atPath: final) {
                let old = final + ".old-\(getpid())"
                try files.moveItem(atPath: final, toPath: old)
                try files.moveItem(atPath: temporary, toPath: final)
                try files.removeItem(atPath: old)
            } else {
                try files.moveItem(atPath: temporary, toPath: final)
            }
            try AtomicFile.write(Array("\(state.iteration)\n".utf8), to: directory + "/" + trackerName)
        } catch {
            throw .checkpoint(path: final, reason: "cannot move the checkpoint into place: \(error)")
        }
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

    /// The safetensors file of the latest checkpoint in `directory`.
    static func openLatest(in directory: String) throws(TrainingError) -> (file: SafeTensorsFile, path: String, iteration: Int) {
        let iteration = try latestIteration(in: directory)
        let path = directory + "/" + directoryName(iteration: iteration) + "/mp_rank_00/" + fileName
        do {
            return (try SafeTensorsFile(path: path), path, iteration)
        } catch {
            throw .checkpoint(path: path, reason: error.description)
        }
    }

    /// Fills `store` from the tensors named `prefix + spec name`, checking each size.
    static func read(_ file: SafeTensorsFile, path: String, prefix: String, into store: ParameterStore) throws(TrainingError) {
        for (index, spec) in store.layout.specs.enumerated() {
            let values: [Float]
            do { values = try file.floats(prefix + spec.name) } catch { throw .checkpoint(path: path, reason: error.description) }
            guard values.count == spec.count else {
                throw .checkpoint(path: path, reason: "\(prefix + spec.name) has \(values.count) values, expected \(spec.count)")
            }
            store.pointer(at: index).update(from: values, count: spec.count)
        }
    }

    /// Loads the latest checkpoint in `directory` into `model` and `optimizer`; throws if it was
    /// made for another model shape or is damaged.
    public static func load(from directory: String, model: GPTModel, optimizer: AdamWOptimizer) throws(TrainingError) -> State {
        let (file, path, _) = try openLatest(in: directory)
        let expected = modelDescription(model.config).serialized
        guard let stored = file.metadata["model"] else {
            throw .checkpoint(path: path, reason: "no model description in its metadata")
        }
        guard stored == expected else {
            throw .checkpoint(path: path, reason: "it holds the model \(stored) but this run asks for \(expected)")
        }
        func number(_ key: String) throws(TrainingError) -> Int {
            guard let text = file.metadata[key], let value = Int(text) else {
                throw .checkpoint(path: path, reason: "metadata \(key) is missing or not a number")
            }
            return value
        }
        let state = State(iteration: try number("iteration"), consumedSamples: try number("consumed_samples"),
                          consumedValidSamples: try number("consumed_valid_samples"),
                          optimizerStep: try number("optimizer_step"), seed: try number("seed"))
        for (prefix, store) in [("", model.params), ("optimizer.exp_avg.", optimizer.m), ("optimizer.exp_avg_sq.", optimizer.v)] {
            try read(file, path: path, prefix: prefix, into: store)
        }
        optimizer.restore(step: state.optimizerStep)
        return state
    }

    /// The model of the latest checkpoint in `directory`, built from the configuration stored in
    /// it, with its weights (for evaluation and generation; the optimizer state is not read).
    public static func loadModel(from directory: String) throws(TrainingError) -> (model: GPTModel, iteration: Int) {
        let (file, path, iteration) = try openLatest(in: directory)
        guard let text = file.metadata["config"],
              let config = try? JSONDecoder().decode(GPTConfig.self, from: Data(text.utf8)) else {
            throw .checkpoint(path: path, reason: "no model configuration in its metadata")
        }
        let model: GPTModel
        do { model = try GPTModel(config: config) } catch { throw .checkpoint(path: path, reason: error.description) }
        try read(file, path: path, prefix: "", into: model.params)
        return (model, iteration)
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
