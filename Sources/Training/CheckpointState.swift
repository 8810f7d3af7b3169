import FileSupport
import Models
import Optimizer
import Parameters

extension Checkpoint {
    /// What is restored besides the tensors: the run's counters, its precision and fp16's loss
    /// scaler, kept as a rank file's metadata.
    public struct State: Equatable, Sendable {
        public var iteration: Int
        public var consumedSamples: Int
        public var consumedValidSamples: Int
        public var optimizerStep: Int
        public var seed: Int
        /// Samples the learning-rate schedule has advanced over (less than `consumedSamples` after
        /// skipped iterations; a checkpoint without it counts every consumed sample).
        public var scheduledSamples: Int
        /// The precision the run trained in (older checkpoints: fp32).
        public var precision: ComputePrecision
        /// fp16's loss scaler (nil in other precisions).
        public var lossScaler: LossScaler.State?

        public init(iteration: Int, consumedSamples: Int, consumedValidSamples: Int, optimizerStep: Int, seed: Int,
                    scheduledSamples: Int? = nil, precision: ComputePrecision = .fp32, lossScaler: LossScaler.State? = nil) {
            self.iteration = iteration
            self.consumedSamples = consumedSamples
            self.consumedValidSamples = consumedValidSamples
            self.optimizerStep = optimizerStep
            self.seed = seed
            self.scheduledSamples = scheduledSamples ?? consumedSamples
            self.precision = precision
            self.lossScaler = lossScaler
        }
    }
}

extension Checkpoint.State {
    /// The metadata entries a rank file keeps for this state.
    var metadata: [String: String] {
        var entries = [
            "iteration": String(iteration),
            "consumed_samples": String(consumedSamples),
            "consumed_valid_samples": String(consumedValidSamples),
            "optimizer_step": String(optimizerStep),
            "seed": String(seed),
            "scheduled_samples": String(scheduledSamples),
            "precision": precision.rawValue,
        ]
        if let scaler = lossScaler {
            entries["loss_scale"] = String(scaler.scale)
            entries["loss_scale_growth_tracker"] = String(scaler.growthTracker)
            entries["loss_scale_hysteresis_tracker"] = String(scaler.hysteresisTracker)
            entries["loss_scale_overflows_at_minimum"] = String(scaler.overflowsAtMinimum)
            entries["loss_scale_dynamic"] = String(scaler.isDynamic)
        }
        return entries
    }

    /// The state a rank file's metadata holds (`path` names it in errors); entries older files
    /// lack take their defaults (fp32, every consumed sample scheduled, no loss scaler).
    init(_ file: SafeTensorsFile, path: String) throws(TrainingError) {
        let consumed = try Checkpoint.number("consumed_samples", in: file, path: path)
        self.init(iteration: try Checkpoint.number("iteration", in: file, path: path),
                  consumedSamples: consumed,
                  consumedValidSamples: try Checkpoint.number("consumed_valid_samples", in: file, path: path),
                  optimizerStep: try Checkpoint.number("optimizer_step", in: file, path: path),
                  seed: try Checkpoint.number("seed", in: file, path: path),
                  scheduledSamples: try Checkpoint.number("scheduled_samples", in: file, path: path, fallback: consumed),
                  precision: try Self.storedPrecision(file, path: path),
                  lossScaler: try Self.storedLossScaler(file, path: path))
    }

    /// The precision a rank file was trained in (fp32 when not recorded).
    private static func storedPrecision(_ file: SafeTensorsFile, path: String) throws(TrainingError) -> ComputePrecision {
        guard let text = file.metadata["precision"] else { return .fp32 }
        guard let precision = ComputePrecision(rawValue: text) else {
            throw .checkpoint(path: path, reason: "metadata precision is not fp32, bf16 or fp16: \(text)")
        }
        return precision
    }

    /// The fp16 loss scaler's state of a rank file (nil when it has none).
    private static func storedLossScaler(_ file: SafeTensorsFile, path: String) throws(TrainingError) -> LossScaler.State? {
        guard let text = file.metadata["loss_scale"] else { return nil }
        guard let scale = Double(text), scale.isFinite, scale > 0 else {
            throw .checkpoint(path: path, reason: "metadata loss_scale is not a positive number: \(text)")
        }
        return LossScaler.State(scale: scale, growthTracker: try Checkpoint.number("loss_scale_growth_tracker", in: file, path: path),
                                // Megatron keeps counting it down past 0 on overflows in a row.
                                hysteresisTracker: try Checkpoint.number("loss_scale_hysteresis_tracker", in: file, path: path,
                                                                         minimum: Int.min),
                                overflowsAtMinimum: try Checkpoint.number("loss_scale_overflows_at_minimum", in: file, path: path,
                                                               fallback: 0),
                                isDynamic: file.metadata["loss_scale_dynamic"] != "false")
    }
}
