#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Kernels
import Models
import Optimizer
import Parameters
import TorchFormat

/// The Adam state of a Megatron-LM checkpoint, laid out as the whole model here: first and second
/// moments (`exp_avg`, `exp_avg_sq`, the same quantities as this project's AdamW moments), the
/// completed steps, and the run's position.
public struct MegatronLMOptimizerState {
    /// First moment, laid out as the model.
    public let m: ParameterStore
    /// Second moment, laid out as the model.
    public let v: ParameterStore
    /// Completed optimizer steps (Adam's bias correction continues from it).
    public let step: Int
    /// `args.consumed_train_samples` and `args.consumed_valid_samples` (0 when absent).
    public let consumedSamples: Int
    public let consumedValidSamples: Int
    /// `args.seed` (Megatron's default 1234 when absent).
    public let seed: Int
    /// Whether it came from the distributed optimizer's `distrib_optim.pt`.
    public let distributed: Bool
}

extension MegatronLMCheckpoint {
    /// Writes the Megatron-LM checkpoint in `directory` as a checkpoint of this project into
    /// `output`: at iteration 0 with a fresh optimizer, or with `loadOptimizer` at Megatron-LM's
    /// iteration with its Adam moments, step and consumed samples, so that `train --load` with
    /// the run's flags continues the run. Returns what was written, for the log.
    public static func convert(from directory: String, to output: String, loadOptimizer: Bool) throws(TrainingError) -> String {
        guard loadOptimizer else {
            let (model, iteration) = try read(directory: directory)
            try Checkpoint.saveImported(model, to: output)
            return "\(Checkpoint.directoryName(iteration: 0)) (\(model.layout.totalCount) parameters from Megatron-LM iteration \(iteration))"
        }
        let (model, iteration, moments) = try readWithOptimizer(directory: directory)
        let optimizer = AdamWOptimizer(layout: model.layout, hyperparameters: AdamW.Hyperparameters(learningRate: 0))
        optimizer.m.buffer.pointer.update(from: moments.m.buffer.pointer, count: model.layout.totalCount)
        optimizer.v.buffer.pointer.update(from: moments.v.buffer.pointer, count: model.layout.totalCount)
        optimizer.restore(step: moments.step)
        try Checkpoint.save(to: output, model: model, moments: .whole(optimizer),
                            state: Checkpoint.State(iteration: iteration, consumedSamples: moments.consumedSamples,
                                                    consumedValidSamples: moments.consumedValidSamples, optimizerStep: moments.step,
                                                    seed: moments.seed))
        return "\(Checkpoint.directoryName(iteration: iteration)) (\(model.layout.totalCount) parameters from Megatron-LM iteration "
            + "\(iteration), with its \(moments.distributed ? "distributed " : "")optimizer state at step \(moments.step))"
    }

    /// The model, iteration and Adam state of the checkpoint in `directory`. Both of Megatron-LM's
    /// fp32 optimizers are read:
    /// - the plain one: the file's `optimizer` entry is `torch.optim.AdamW.state_dict()`, whose
    ///   integer parameter ids number each parameter group's members in megatron-core's
    ///   `named_parameters` order (the groups: weight-decayed matrices, and biases and 1-D
    ///   tensors without decay);
    /// - the distributed one (`--use-distributed-optimizer`): `distrib_optim.pt` beside each rank
    ///   file holds, per model chunk, flat `exp_avg` and `exp_avg_sq` buffers with the parameters
    ///   in reverse order, each starting at a multiple of 64 elements; the step is in the
    ///   `optimizer` entry's parameter groups.
    /// A state this reader does not know (mixed precision's fp32 master copies, several chained
    /// optimizers, extra parameter groups, a gradient buffer split into several buckets) is an
    /// error naming what it found.
    public static func readWithOptimizer(directory: String) throws(TrainingError)
        -> (model: GPTModel, iteration: Int, optimizer: MegatronLMOptimizerState) {
        let (folder, _) = try iterationFolder(directory)
        guard !isDistributed(folder) else {
            throw .checkpoint(path: folder, reason: "a torch_dist checkpoint's optimizer state is not read; convert without --load-optimizer")
        }
        let checkpoint = try open(directory)
        for precision in ["bf16", "fp16"] where checkpoint.arguments.flag(precision) {
            throw .checkpoint(path: checkpoint.folder, reason: "a --\(precision) run's optimizer state (its fp32 master weights beside the "
                              + "\(precision) model) is not read; convert without --load-optimizer")
        }
        let model = try checkpoint.model()
        let layout = model.layout
        var moments = [String: (m: [Float], v: [Float])]()  // by "stage/rank/name"
        var steps = Set<Int>()
        var distributed = false
        for file in checkpoint.files {
            let found = try momentsOf(file)
            for (name, values) in found.moments { moments["\(file.stage)/\(file.rank)/\(name)"] = values }
            steps.insert(found.step)
            distributed = distributed || found.distributed
        }
        guard steps.count == 1, let step = steps.first else {
            throw .checkpoint(path: checkpoint.folder, reason: "the rank files' optimizers have different step counts \(steps.sorted())")
        }
        let m = ParameterStore(layout: layout), v = ParameterStore(layout: layout)
        for (store, first) in [(m, true), (v, false)] {
            try checkpoint.place(into: store) { file, entry throws(TrainingError) in
                guard let name = entry.name, let values = moments["\(file.stage)/\(file.rank)/\(name)"] else {
                    throw .checkpoint(path: file.file.path, reason: "no optimizer state for \(entry.key)")
                }
                return first ? values.m : values.v
            }
        }
        let arguments = checkpoint.arguments
        let state = MegatronLMOptimizerState(
            m: m, v: v, step: step, consumedSamples: try arguments.integer("consumed_train_samples", default: 0),
            consumedValidSamples: try arguments.integer("consumed_valid_samples", default: 0),
            seed: try arguments.integer("seed", default: 1234), distributed: distributed)
        return (model, checkpoint.iteration, state)
    }

    /// One rank file's moments by this project's parameter name, and its step count.
    static func momentsOf(_ file: RankFile) throws(TrainingError)
        -> (moments: [String: (m: [Float], v: [Float])], step: Int, distributed: Bool) {
        let path = file.file.path
        guard let saved = file.file.root.entries?["optimizer"] else {
            throw .checkpoint(path: path, reason: "no optimizer state (saved with --no-save-optim?)")
        }
        guard var dict = saved.entries else {
            throw .checkpoint(path: path, reason: "the optimizer state is a list (several chained optimizers), which is not read")
        }
        // Megatron's distributed optimizer and its mixed-precision one nest the state one level down.
        if dict["state"] == nil, let inner = dict["optimizer"]?.entries { dict = inner }
        if file.file.root.entries?["optimizer"]?.entries?["fp32_from_fp16_params"] != nil {
            throw .checkpoint(path: path, reason: "a mixed-precision optimizer's state (fp32 master copies of bf16/fp16 weights) is not read")
        }
        guard let groups = dict["param_groups"]?.items?.compactMap(\.entries), !groups.isEmpty else {
            throw .checkpoint(path: path, reason: "the optimizer state has no param_groups")
        }
        if let state = dict["state"]?.entries {
            return (try plainMoments(file, state: state, groups: groups), try plainStep(state, in: file.file), false)
        }
        guard let step = groups.first?["step"]?.double, step >= 0, step == step.rounded() else {
            throw .checkpoint(path: path, reason: "the distributed optimizer's param_groups hold no step count")
        }
        return (try distributedMoments(file), Int(step), true)
    }

    /// Whether megatron-core puts a parameter in the weight-decayed group: neither a bias nor 1-D.
    static func decays(_ entry: Entry) -> Bool { entry.tensor.shape.count > 1 && !entry.key.hasSuffix(".bias") }

    /// The moments of a torch AdamW state dict: each group's `params` ids, in order, are the
    /// file's parameters of that group's kind in `named_parameters` order.
    static func plainMoments(_ file: RankFile, state: PickleDict, groups: [PickleDict]) throws(TrainingError)
        -> [String: (m: [Float], v: [Float])] {
        let path = file.file.path
        let parameters = Array(file.chunks.joined())
        var byID = [Int: Entry]()
        for group in groups {
            let decayed = (group["wd_mult"]?.double ?? group["weight_decay"]?.double ?? 0) != 0
            let ids = group["params"]?.items?.compactMap(\.int) ?? []
            let members = parameters.filter { decays($0) == decayed }
            guard ids.count == members.count else {
                throw .checkpoint(path: path, reason: "a parameter group of \(ids.count) ids does not match the model's \(members.count) "
                                  + (decayed ? "weight-decayed" : "undecayed") + " parameters (other parameter groups are not read)")
            }
            for (id, entry) in zip(ids, members) { byID[id] = entry }
        }
        var moments = [String: (m: [Float], v: [Float])]()
        for (id, entry) in byID {
            guard let name = entry.name else { continue }  // the tied copy: the first stage's moments are the same
            guard let values = state[String(id)]?.entries, case let .tensor(m)? = values["exp_avg"],
                  case let .tensor(v)? = values["exp_avg_sq"], m.shape == entry.tensor.shape, v.shape == entry.tensor.shape else {
                throw .checkpoint(path: path, reason: "no exp_avg/exp_avg_sq of \(entry.tensor.shape) for parameter \(id) (\(entry.key))")
            }
            moments[name] = (try file.file.floats(m, key: "exp_avg of \(entry.key)"), try file.file.floats(v, key: "exp_avg_sq of \(entry.key)"))
        }
        return moments
    }

    /// The step count of a torch AdamW state dict (the same for every parameter).
    static func plainStep(_ state: PickleDict, in file: TorchFile) throws(TrainingError) -> Int {
        let path = file.path
        var steps = Set<Int>()
        for key in state.keys {
            guard let entry = state[key]?.entries?["step"] else { continue }
            var step: Double?
            if case let .tensor(tensor) = entry {
                step = try file.floats(tensor, key: "step").first.map(Double.init)
            } else {
                step = entry.double
            }
            guard let step, step >= 0, step == step.rounded() else {
                throw .checkpoint(path: path, reason: "parameter \(key)'s step is not a count")
            }
            steps.insert(Int(step))
        }
        guard steps.count == 1, let step = steps.first else {
            throw .checkpoint(path: path, reason: "the parameters' step counts differ or are missing: \(steps.sorted())")
        }
        return step
    }

    /// The moments of `distrib_optim.pt` beside `file`: for model chunk c, buffer c's flat
    /// `exp_avg` and `exp_avg_sq`, the chunk's parameters from last to first, each at the next
    /// multiple of 64 elements (megatron-core's parameter-and-gradient buffer, one bucket).
    static func distributedMoments(_ file: RankFile) throws(TrainingError) -> [String: (m: [Float], v: [Float])] {
        let path = file.folder + "/distrib_optim.pt"
        guard FileManager.default.fileExists(atPath: path) else {
            throw .checkpoint(path: path, reason: "missing: the distributed optimizer keeps its moments there")
        }
        let states: TorchFile
        do { states = try TorchFile(path: path) } catch { throw .checkpoint(path: error.path, reason: error.reason) }
        guard let root = states.root.entries, root["buckets_coalesced"]?.int == 1 else {
            throw .checkpoint(path: path, reason: "not the coalesced-bucket layout megatron-core saves (buckets_coalesced)")
        }
        var moments = [String: (m: [Float], v: [Float])]()
        for (chunk, parameters) in file.chunks.enumerated() {
            guard let buffers = root[String(chunk)]?.entries, buffers.pairs.count == 1, isFloat32Pair(buffers.pairs[0].key),
                  let buffer = buffers.pairs[0].value.entries,
                  case let .tensor(m)? = buffer["exp_avg"], case let .tensor(v)? = buffer["exp_avg_sq"],
                  let count = buffer["numel_unpadded"]?.int else {
                throw .checkpoint(path: path, reason: "model chunk \(chunk): expected one (float32, float32) buffer with exp_avg, "
                                  + "exp_avg_sq and numel_unpadded (other or several parameter dtypes are not read)")
            }
            var offsets = [Int](), end = 0
            for entry in parameters.reversed() {
                let start = (end + 63) / 64 * 64
                offsets.append(start)
                end = start + entry.tensor.elementCount
            }
            guard end == count, m.elementCount == count, v.elementCount == count else {
                throw .checkpoint(path: path, reason: "model chunk \(chunk): the buffer holds \(count) elements, the parameters laid out in one "
                                  + "bucket take \(end) (a gradient buffer of several buckets is not read)")
            }
            let allM = try states.floats(m, key: "exp_avg"), allV = try states.floats(v, key: "exp_avg_sq")
            for (entry, start) in zip(parameters.reversed(), offsets) {
                guard let name = entry.name else { continue }
                let range = start..<(start + entry.tensor.elementCount)
                moments[name] = (Array(allM[range]), Array(allV[range]))
            }
        }
        return moments
    }

    /// Whether a `distrib_optim.pt` buffer key is `(torch.float32, torch.float32)` (fp32 parameters
    /// and gradients).
    static func isFloat32Pair(_ key: PickleValue) -> Bool {
        guard case let .tuple(items) = key, items.count == 2 else { return false }
        return items.allSatisfy { if case let .global(module, name) = $0 { module == "torch" && name == "float32" } else { false } }
    }
}
