import Models
import Optimizer
import TorchFormat

extension MegatronLMCheckpoint {
    /// An `--fp16` run's loss scaler, from its optimizer's `grad_scaler` entry (`saved`, read from
    /// `file`): megatron-core's `DynamicGradScaler` saves its `scale` (a one-element fp32 tensor),
    /// `growth_tracker` and `hysteresis_tracker`, the state this project's `LossScaler` keeps
    /// too; a run with `--loss-scale` (a `ConstantGradScaler`, which saves nothing) gives that
    /// static scale from the args. Nil in other precisions.
    static func lossScalerState(_ saved: PickleValue?, in file: TorchFile, arguments: MegatronLMArguments,
                                precision: ComputePrecision) throws(TrainingError) -> LossScaler.State? {
        guard precision == .fp16 else { return nil }
        if !arguments.isUnset("loss_scale") {
            guard let scale = arguments.values["loss_scale"]?.double, scale.isFinite, scale > 0 else {
                throw .checkpoint(path: arguments.path, reason: "args.loss_scale is not a positive number")
            }
            return LossScaler.State(scale: scale, growthTracker: 0, hysteresisTracker: 1, isDynamic: false)
        }
        guard let entries = saved?.entries else {
            throw .checkpoint(path: file.path, reason: "an --fp16 run's optimizer state without grad_scaler (its dynamic loss scaler)")
        }
        var scale: Double?
        switch entries["scale"] {
        case let .tensor(tensor)?: scale = try file.floats(tensor, key: "grad_scaler.scale").first.map(Double.init)
        case let value?: scale = value.double
        case nil: break
        }
        guard let scale, scale.isFinite, scale > 0, let growth = entries["growth_tracker"]?.int, growth >= 0,
              let hysteresis = entries["hysteresis_tracker"]?.int else {
            throw .checkpoint(path: file.path, reason: "grad_scaler is not a dynamic loss scaler's state (a positive scale, "
                              + "growth_tracker and hysteresis_tracker)")
        }
        return LossScaler.State(scale: scale, growthTracker: growth, hysteresisTracker: hysteresis)
    }
}
