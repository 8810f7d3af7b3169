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
    /// Samples the learning-rate schedule has advanced over: the scheduler's `num_steps` (fewer
    /// than the consumed samples after iterations an `--fp16` run skipped; the consumed samples
    /// when the checkpoint has no scheduler).
    public let scheduledSamples: Int
    /// `args.seed` (Megatron's default 1234 when absent).
    public let seed: Int
    /// Whether it came from the distributed optimizer (`distrib_optim.pt`, or a `torch_dist`
    /// checkpoint's flat buffer).
    public let distributed: Bool
    /// The run's precision. For `--bf16` and `--fp16` the model returned with the state holds the
    /// optimizer's fp32 master weights, not the 16-bit weights of the checkpoint's model.
    public let precision: ComputePrecision
    /// An `--fp16` run's loss scaler: its dynamic scaler's scale and trackers, or the static
    /// `--loss-scale` (nil in other precisions).
    public let lossScaler: LossScaler.State?
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
                                                    seed: moments.seed, scheduledSamples: moments.scheduledSamples,
                                                    precision: moments.precision, lossScaler: moments.lossScaler))
        return "\(Checkpoint.directoryName(iteration: iteration)) (\(model.layout.totalCount) parameters from Megatron-LM iteration "
            + "\(iteration), with its \(moments.distributed ? "distributed " : "")optimizer state at step \(moments.step)"
            + (moments.precision != .fp32 ? ", its fp32 master weights" : "")
            + (moments.lossScaler.map { ", loss scale \($0.scale)" } ?? "") + ")"
    }

    /// The model, iteration and Adam state of the checkpoint in `directory`. Both of Megatron-LM's
    /// optimizers are read:
    /// - the plain one: the file's `optimizer` entry is `torch.optim.AdamW.state_dict()`, whose
    ///   integer parameter ids number each parameter group's members in megatron-core's
    ///   `named_parameters` order (the groups: weight-decayed matrices, and biases and 1-D
    ///   tensors without decay);
    /// - the distributed one (`--use-distributed-optimizer`): `distrib_optim.pt` beside each rank
    ///   file holds, per model chunk, flat `exp_avg` and `exp_avg_sq` buffers with the parameters
    ///   in reverse order, each starting at a multiple of 64 elements, in buckets whose end padding
    ///   the file leaves out (`MegatronLMBufferLayout`); the step is in the `optimizer` entry's
    ///   parameter groups.
    /// A `torch_dist` checkpoint's state is read by `readDistributedWithOptimizer`.
    /// A `--bf16` or `--fp16` run's optimizers update fp32 master weights, which are read as the
    /// model's weights: the plain one's `fp32_from_fp16_params` (per parameter group, in group
    /// order), the distributed one's flat `param` in its (bfloat16 or float16, ...) buffer; an
    /// `--fp16` run's `grad_scaler` beside them is its loss scaler's state.
    /// A state this reader does not know (several chained optimizers, extra parameter groups) is
    /// an error naming what it found.
    public static func readWithOptimizer(directory: String) throws(TrainingError)
        -> (model: GPTModel, iteration: Int, optimizer: MegatronLMOptimizerState) {
        let (folder, trackedIteration) = try iterationFolder(directory)
        if isDistributed(folder) { return try readDistributedWithOptimizer(folder: folder, trackedIteration: trackedIteration) }
        let checkpoint = try open(directory)
        let precision = try optimizerPrecision(checkpoint.arguments, folder: checkpoint.folder)
        let model = try checkpoint.model()
        let layout = model.layout
        var moments = [String: AdamMoments]()  // by "stage/rank/name"
        var steps = Set<Int>(), scalers = [LossScaler.State?]()
        var distributed = false
        for file in checkpoint.files {
            let found = try momentsOf(file, arguments: checkpoint.arguments, precision: precision)
            for (name, values) in found.moments { moments["\(file.stage)/\(file.rank)/\(name)"] = values }
            steps.insert(found.step)
            scalers.append(found.lossScaler)
            distributed = distributed || found.distributed
        }
        guard steps.count == 1, let step = steps.first else {
            throw .checkpoint(path: checkpoint.folder, reason: "the rank files' optimizers have different step counts \(steps.sorted())")
        }
        guard let lossScaler = scalers.first, scalers.allSatisfy({ $0 == lossScaler }) else {
            throw .checkpoint(path: checkpoint.folder, reason: "the rank files' loss scalers differ")
        }
        let m = ParameterStore(layout: layout), v = ParameterStore(layout: layout)
        // A mixed-precision run's optimizer updates fp32 masters, which replace the rounded 16-bit weights.
        let targets: [(ParameterStore, KeyPath<AdamMoments, [Float]?>)] =
            [(m, \.m), (v, \.v)] + (precision != .fp32 ? [(model.params, \.master)] : [])
        for (store, part) in targets {
            try checkpoint.place(into: store) { file, entry throws(TrainingError) in
                guard let name = entry.name, let values = moments["\(file.stage)/\(file.rank)/\(name)"]?[keyPath: part] else {
                    throw .checkpoint(path: file.file.path, reason: "no optimizer state for \(entry.key)")
                }
                return values
            }
        }
        if precision != .fp32 { model.weightsDidChange() }
        let scheduler = checkpoint.files.first?.file.root.entries?["opt_param_scheduler"]
        let state = try MegatronLMOptimizerState(m: m, v: v, step: step, arguments: checkpoint.arguments, distributed: distributed,
                                                 precision: precision, lossScaler: lossScaler, scheduler: scheduler)
        return (model, checkpoint.iteration, state)
    }

    /// The run's precision (`--bf16`, `--fp16`, else fp32): whether its optimizer keeps fp32
    /// masters of 16-bit weights, and a loss scaler.
    static func optimizerPrecision(_ arguments: MegatronLMArguments, folder: String) throws(TrainingError) -> ComputePrecision {
        switch (arguments.flag("bf16"), arguments.flag("fp16")) {
        case (true, true): throw .checkpoint(path: folder, reason: "args say both --bf16 and --fp16")
        case (true, false): return .bf16
        case (false, true): return .fp16
        case (false, false): return .fp32
        }
    }

    /// A step count read from a saved value: a number or a one-element tensor of `file`, a
    /// non-negative whole number (nil otherwise, infinities and NaN included).
    static func stepCount(_ value: PickleValue?, in file: TorchFile, key: String) throws(TrainingError) -> Int? {
        var step: Double?
        switch value {
        case let .tensor(tensor)?: step = try file.floats(tensor, key: key).first.map(Double.init)
        case let value?: step = value.double
        case nil: break
        }
        guard let step, step >= 0 else { return nil }
        return Int(exactly: step)
    }

    /// One parameter's Adam state: its moments and, for a mixed-precision run, its fp32 master
    /// weights (optionals, so that each part is picked by a key path).
    struct AdamMoments {
        var m: [Float]?
        var v: [Float]?
        var master: [Float]?
    }

    /// One rank file's moments (and in mixed `precision` the fp32 masters) by this project's
    /// parameter name, its step count and (fp16) loss scaler; the run's `arguments` say how a
    /// distributed optimizer's buffer was cut into buckets.
    static func momentsOf(_ file: RankFile, arguments: MegatronLMArguments, precision: ComputePrecision) throws(TrainingError)
        -> (moments: [String: AdamMoments], step: Int, distributed: Bool, lossScaler: LossScaler.State?) {
        let path = file.file.path
        guard let saved = file.file.root.entries?["optimizer"] else {
            throw .checkpoint(path: path, reason: "no optimizer state (saved with --no-save-optim?)")
        }
        guard var dict = saved.entries else {
            throw .checkpoint(path: path, reason: "the optimizer state is a list (several chained optimizers), which is not read")
        }
        // Megatron's distributed optimizer and its mixed-precision one nest the state one level down;
        // the mixed-precision one keeps its fp32 masters beside it, per parameter group.
        let masters = dict["fp32_from_fp16_params"]?.items?.map { $0.items ?? [] }
        let lossScaler = try lossScalerState(dict["grad_scaler"], in: file.file, arguments: arguments, precision: precision)
        if dict["state"] == nil, let inner = dict["optimizer"]?.entries { dict = inner }
        guard let groups = dict["param_groups"]?.items?.compactMap(\.entries), !groups.isEmpty else {
            throw .checkpoint(path: path, reason: "the optimizer state has no param_groups")
        }
        if let state = dict["state"]?.entries {
            guard (precision != .fp32) == (masters != nil) else {
                throw .checkpoint(path: path, reason: precision != .fp32
                                  ? "a --\(precision.rawValue) run's optimizer without fp32_from_fp16_params (its fp32 master weights)"
                                  : "fp32 master weights (fp32_from_fp16_params) in a run whose args say neither --bf16 nor --fp16")
            }
            return (try plainMoments(file, state: state, groups: groups, masters: masters), try plainStep(state, in: file.file), false,
                    lossScaler)
        }
        guard let step = try stepCount(groups.first?["step"], in: file.file, key: "step") else {
            throw .checkpoint(path: path, reason: "the distributed optimizer's param_groups hold no step count")
        }
        return (try distributedMoments(file, arguments: arguments, precision: precision), step, true, lossScaler)
    }

    /// Whether megatron-core puts a parameter in the weight-decayed group: neither a bias nor 1-D.
    static func decays(_ entry: Entry) -> Bool { entry.tensor.shape.count > 1 && !entry.key.hasSuffix(".bias") }

    /// The moments of a torch AdamW state dict: each group's `params` ids, in order, are the
    /// file's parameters of that group's kind in `named_parameters` order. `masters` (a
    /// mixed-precision optimizer's `fp32_from_fp16_params`) holds per group the fp32 masters in
    /// the same order.
    static func plainMoments(_ file: RankFile, state: PickleDict, groups: [PickleDict], masters: [[PickleValue]]?) throws(TrainingError)
        -> [String: AdamMoments] {
        let path = file.file.path
        let parameters = Array(file.chunks.joined())
        var byID = [Int: (entry: Entry, master: PickleValue?)]()
        guard masters == nil || masters?.count == groups.count else {
            throw .checkpoint(path: path, reason: "fp32_from_fp16_params holds \(masters?.count ?? 0) groups, the optimizer \(groups.count)")
        }
        for (index, group) in groups.enumerated() {
            let decayed = (group["wd_mult"]?.double ?? group["weight_decay"]?.double ?? 0) != 0
            let ids = group["params"]?.items?.compactMap(\.int) ?? []
            let members = parameters.filter { decays($0) == decayed }
            guard ids.count == members.count, masters.map({ $0[index].count == ids.count }) ?? true else {
                throw .checkpoint(path: path, reason: "a parameter group of \(ids.count) ids does not match the model's \(members.count) "
                                  + (decayed ? "weight-decayed" : "undecayed") + " parameters (other parameter groups are not read)")
            }
            for (k, (id, entry)) in zip(ids, members).enumerated() { byID[id] = (entry, masters?[index][k]) }
        }
        var moments = [String: AdamMoments]()
        for (id, (entry, master)) in byID {
            guard let name = entry.name else { continue }  // the tied copy: the first stage's moments are the same
            guard let values = state[String(id)]?.entries, case let .tensor(m)? = values["exp_avg"],
                  case let .tensor(v)? = values["exp_avg_sq"], m.shape == entry.tensor.shape, v.shape == entry.tensor.shape else {
                throw .checkpoint(path: path, reason: "no exp_avg/exp_avg_sq of \(entry.tensor.shape) for parameter \(id) (\(entry.key))")
            }
            var found = AdamMoments(m: try file.file.floats(m, key: "exp_avg of \(entry.key)"),
                                    v: try file.file.floats(v, key: "exp_avg_sq of \(entry.key)"))
            if let master {
                guard case let .tensor(tensor) = master, tensor.shape == entry.tensor.shape, tensor.storage.dtype == .float32 else {
                    throw .checkpoint(path: path, reason: "the fp32 master of \(entry.key) is not an fp32 tensor of \(entry.tensor.shape)")
                }
                found.master = try file.file.floats(tensor, key: "fp32 master of \(entry.key)")
            }
            moments[name] = found
        }
        return moments
    }

    /// The step count of a torch AdamW state dict (the same for every parameter).
    static func plainStep(_ state: PickleDict, in file: TorchFile) throws(TrainingError) -> Int {
        let path = file.path
        var steps = Set<Int>()
        for key in state.keys {
            guard let entry = state[key]?.entries?["step"] else { continue }
            guard let step = try stepCount(entry, in: file, key: "step") else {
                throw .checkpoint(path: path, reason: "parameter \(key)'s step is not a count")
            }
            steps.insert(step)
        }
        guard steps.count == 1, let step = steps.first else {
            throw .checkpoint(path: path, reason: "the parameters' step counts differ or are missing: \(steps.sorted())")
        }
        return step
    }

    /// The moments of `distrib_optim.pt` beside `file`: for model chunk c, buffer c's flat
    /// `exp_avg` and `exp_avg_sq`, the chunk's parameters laid out as `MegatronLMBufferLayout`
    /// says for the run's `arguments`. The buffer is keyed by its (parameter, gradient) dtypes:
    /// (float32, float32), or in mixed `precision` (bfloat16 or float16, float32 or the same),
    /// whose flat `param` is then the fp32 masters.
    static func distributedMoments(_ file: RankFile, arguments: MegatronLMArguments, precision: ComputePrecision) throws(TrainingError)
        -> [String: AdamMoments] {
        let path = file.folder + "/distrib_optim.pt"
        guard FileManager.default.fileExists(atPath: path) else {
            throw .checkpoint(path: path, reason: "missing: the distributed optimizer keeps its moments there")
        }
        let states: TorchFile
        do { states = try TorchFile(path: path) } catch { throw .checkpoint(error) }
        guard let root = states.root.entries, root["buckets_coalesced"]?.int == 1 else {
            throw .checkpoint(path: path, reason: "not the coalesced-bucket layout megatron-core saves (buckets_coalesced)")
        }
        let pipelineParallel = try arguments.integer("pipeline_model_parallel_size", default: 1)
        let tied = !arguments.flag("untie_embeddings_and_output_weights")
        // Megatron-LM cuts only the first stage's first chunk into buckets, and not at all with
        // --overlap-param-gather-with-optimizer-step.
        var bucketSize: Int?
        if arguments.flag("overlap_grad_reduce") && !arguments.flag("overlap_param_gather_with_optimizer_step") && file.stage == 0 {
            let dataParallel = try arguments.integer("data_parallel_size", default: 1)
            guard (1...(1 << 20)).contains(dataParallel) else {
                throw .checkpoint(path: arguments.path, reason: "args.data_parallel_size \(dataParallel) is out of range")
            }
            bucketSize = try arguments.integer("ddp_bucket_size", default: max(40_000_000, 1_000_000 * dataParallel))
        }
        var moments = [String: AdamMoments]()
        for (chunk, parameters) in file.chunks.enumerated() {
            let parameterType = torchDType(precision)
            let dtypes = "(\(parameterType), float32\(precision == .fp32 ? "" : " or \(parameterType)"))"
            guard let buffers = root[String(chunk)]?.entries, buffers.pairs.count == 1,
                  isDTypePair(buffers.pairs[0].key, parameter: parameterType),
                  let buffer = buffers.pairs[0].value.entries,
                  case let .tensor(m)? = buffer["exp_avg"], case let .tensor(v)? = buffer["exp_avg_sq"],
                  let count = buffer["numel_unpadded"]?.int else {
                throw .checkpoint(path: path, reason: "model chunk \(chunk): expected one \(dtypes) buffer with exp_avg, "
                                  + "exp_avg_sq and numel_unpadded (other or several parameter dtypes are not read)")
            }
            var master: TorchTensor?
            if precision != .fp32 {
                guard case let .tensor(param)? = buffer["param"], param.elementCount == count, param.storage.dtype == .float32 else {
                    throw .checkpoint(path: path, reason: "model chunk \(chunk): the \(parameterType) buffer has no fp32 'param' (masters) of \(count) elements")
                }
                master = param
            }
            let layout = MegatronLMBufferLayout(
                counts: parameters.map(\.tensor.elementCount),
                ownBucket: parameters.map { tied && pipelineParallel > 1 && [wordEmbeddingName, outputLayerName].contains($0.key) },
                bucketSize: chunk == 0 ? bucketSize : nil)
            guard layout.count == count, m.elementCount == count, v.elementCount == count else {
                throw .checkpoint(path: path, reason: "model chunk \(chunk): the buffer holds \(count) elements, the parameters laid out in "
                                  + "buckets as the args say (overlap_grad_reduce, ddp_bucket_size) take \(layout.count)")
            }
            let allM = try states.floats(m, key: "exp_avg"), allV = try states.floats(v, key: "exp_avg_sq")
            let allMasters = try master.map { tensor throws(TrainingError) in try states.floats(tensor, key: "param") }
            for (entry, start) in zip(parameters, layout.starts) {
                guard let name = entry.name else { continue }
                let range = start..<(start + entry.tensor.elementCount)
                moments[name] = AdamMoments(m: Array(allM[range]), v: Array(allV[range]), master: allMasters.map { Array($0[range]) })
            }
        }
        return moments
    }

    /// Whether a `distrib_optim.pt` buffer key is `(torch.<parameter>, torch.float32)` or
    /// `(torch.<parameter>, torch.<parameter>)`: the parameters' dtype and the gradients' (fp32,
    /// or the parameters' own where an fp16 run reduces them in fp16).
    static func isDTypePair(_ key: PickleValue, parameter: String) -> Bool {
        guard case let .tuple(items) = key, items.count == 2 else { return false }
        func isTorch(_ item: PickleValue, _ dtype: String) -> Bool {
            if case let .global(module, name) = item { module == "torch" && name == dtype } else { false }
        }
        return isTorch(items[0], parameter) && (isTorch(items[1], "float32") || isTorch(items[1], parameter))
    }

    /// The torch dtype name of a run's parameters in `precision`.
    static func torchDType(_ precision: ComputePrecision) -> String {
        switch precision {
        case .fp32: "float32"
        case .bf16: "bfloat16"
        case .fp16: "float16"
        }
    }
}

extension MegatronLMOptimizerState {
    /// The state with the run's position from its Megatron-LM `arguments`
    /// (`consumed_train_samples`, `consumed_valid_samples` and `seed`, Megatron's defaults when
    /// absent) and its saved `scheduler` (`opt_param_scheduler`: `num_steps`, the samples the
    /// schedule advanced over).
    init(m: ParameterStore, v: ParameterStore, step: Int, arguments: MegatronLMArguments, distributed: Bool,
         precision: ComputePrecision, lossScaler: LossScaler.State?, scheduler: PickleValue?) throws(TrainingError) {
        let consumed = try arguments.integer("consumed_train_samples", default: 0)
        let saved = scheduler?.entries?["num_steps"]
        guard consumed >= 0, let scheduled = saved == nil ? consumed : saved?.int, scheduled >= 0, scheduled <= consumed else {
            throw .checkpoint(path: arguments.path, reason: "opt_param_scheduler.num_steps (\(saved.map { "\($0)" } ?? "absent")) is not a "
                              + "count of samples within args.consumed_train_samples (\(consumed))")
        }
        self.init(m: m, v: v, step: step, consumedSamples: consumed,
                  consumedValidSamples: try arguments.integer("consumed_valid_samples", default: 0), scheduledSamples: scheduled,
                  seed: try arguments.integer("seed", default: 1234), distributed: distributed, precision: precision, lossScaler: lossScaler)
    }
}
