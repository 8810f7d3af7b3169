import FileSupport
import Models
import Optimizer
import Parameters
import TorchFormat

/// The Adam state of Megatron-LM's `torch_dist` checkpoints, in the layouts megatron-core saves:
/// - in model space: tensors `optimizer.state.exp_avg.<model key>` and
///   `optimizer.state.exp_avg_sq.<model key>`, shaped and stacked as the model's (any TP x PP),
///   for `--bf16` and `--fp16` with the fp32 masters: the plain optimizer's `optimizer.state.fp32_param.<model
///   key>` (its step in the common state's `optimizer`, `state.common_step`), or the distributed
///   optimizer's with `--dist-ckpt-optim-fully-reshardable` (sharding `fully_reshardable`),
///   `optimizer.state.param.<model key>` (its step in the common state's `optimizer` param groups);
/// - the distributed optimizer's, with Megatron-LM's default `dp_reshardable` sharding:
///   megatron-core's flat parameter buffers, one per model-parallel rank (`readFlatBuffer`).
extension MegatronLMCheckpoint {
    /// The model (for `--bf16` and `--fp16` holding the fp32 masters), iteration and Adam state
    /// (and an `--fp16` run's loss scaler) of the `torch_dist` checkpoint in iteration folder
    /// `folder`.
    static func readDistributedWithOptimizer(folder: String, trackedIteration: Int?) throws(TrainingError)
        -> (model: GPTModel, iteration: Int, optimizer: MegatronLMOptimizerState) {
        let opened = try openDistributed(folder: folder, trackedIteration: trackedIteration)
        let checkpoint = opened.checkpoint
        let precision = try optimizerPrecision(opened.arguments, folder: folder)
        let model = try opened.model()
        let m = ParameterStore(layout: model.layout), v = ParameterStore(layout: model.layout)
        let step: Int, distributed: Bool
        if checkpoint.keys.contains(where: { $0.hasPrefix(plainPrefix + "exp_avg.") }) {
            // The distributed optimizer's model-space (fully reshardable) state names its masters `param`.
            let fullyReshardable = opened.common.entries?["optimizer"]?.entries?["param_state_sharding_type"]?.string == "fully_reshardable"
            try opened.place(into: m, prefix: plainPrefix + "exp_avg.")
            try opened.place(into: v, prefix: plainPrefix + "exp_avg_sq.")
            if precision != .fp32 { try opened.place(into: model.params, prefix: plainPrefix + (fullyReshardable ? "param." : "fp32_param.")) }
            (step, distributed) = (try commonStep(opened), fullyReshardable)
        } else if checkpoint.keys.contains(where: { $0.hasPrefix(distributedPrefix) }) {
            (step, distributed) = (try readFlatBuffer(opened, into: model, m: m, v: v, precision: precision), true)
        } else {
            throw .checkpoint(path: folder, reason: "no optimizer state (saved with --no-save-optim?)")
        }
        if precision != .fp32 { model.weightsDidChange() }
        let state = try MegatronLMOptimizerState(m: m, v: v, step: step, arguments: opened.arguments, distributed: distributed,
                                                 precision: precision, lossScaler: try lossScaler(opened, precision: precision),
                                                 scheduler: opened.common.entries?["opt_param_scheduler"])
        return (model, opened.iteration, state)
    }

    static let plainPrefix = "optimizer.state.", distributedPrefix = "optimizer.distributed."

    /// An `--fp16` run's loss scaler: `grad_scaler` in the common state's optimizer entry (the
    /// plain optimizer's, and the distributed one's when saved fully reshardable), or the byte
    /// entry `optimizer.distributed.dp_group_idx_0.grad_scaler` (dp_reshardable).
    private static func lossScaler(_ opened: OpenedDistributed, precision: ComputePrecision) throws(TrainingError) -> LossScaler.State? {
        guard precision == .fp16 else { return nil }
        if let saved = opened.common.entries?["optimizer"]?.entries?["grad_scaler"] {
            return try lossScalerState(saved, in: opened.commonFile, arguments: opened.arguments, precision: precision)
        }
        let entry = distributedPrefix + "dp_group_idx_0.grad_scaler/shard_0_1"
        guard opened.checkpoint.hasBytes(entry) else {
            return try lossScalerState(nil, in: opened.commonFile, arguments: opened.arguments, precision: precision)
        }
        let file: TorchFile
        do { file = try opened.checkpoint.torchFile(ofBytes: entry) } catch { throw .checkpoint(error) }
        return try lossScalerState(file.root.items?.first, in: file, arguments: opened.arguments, precision: precision)
    }

    /// The step of a model-space state, in the common state's optimizer entry (nested one level
    /// down for the mixed-precision and distributed optimizers): the plain optimizer's
    /// `state.common_step`, or the distributed one's parameter groups' `step`.
    private static func commonStep(_ opened: OpenedDistributed) throws(TrainingError) -> Int {
        let path = opened.commonFile.path
        guard var optimizer = opened.common.entries?["optimizer"]?.entries else {
            throw .checkpoint(path: path, reason: "no optimizer entry in the common state")
        }
        if optimizer["state"] == nil && optimizer["param_groups"] == nil, let inner = optimizer["optimizer"]?.entries { optimizer = inner }
        let saved = optimizer["state"]?.entries?["common_step"] ?? optimizer["param_groups"]?.items?.first?.entries?["step"]
        guard let step = try stepCount(saved, in: opened.commonFile, key: "step") else {
            throw .checkpoint(path: path, reason: "the optimizer holds no step count (state.common_step or param_groups' step)")
        }
        return step
    }
}
