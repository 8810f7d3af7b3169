import FileSupport
import Models
import Parameters

/// Problems with a training run's configuration, data or checkpoints; each names the cause.
public enum TrainingError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalidFlag(String, String)
    case config(path: String, reason: String)
    case checkpoint(path: String, reason: String)
    case data(String)
    /// The model or a batch does not divide over the parallel layout (the message names the flags).
    case layout(String)
    /// The run needs more memory than this machine has available (the message gives the figures).
    case memory(String)
    /// Iteration `iteration`'s loss or gradient norm was not finite (`--check-for-nan-in-loss-and-grad`).
    case diverged(iteration: Int, loss: Double, gradNorm: Double)
    /// fp16: `count` iterations in a row overflowed at the lowest loss scale the run allows.
    case lossScaleExhausted(iteration: Int, scale: Double, count: Int)

    public var description: String {
        switch self {
        case let .invalidFlag(flag, reason): "\(flag): \(reason)"
        case let .config(path, reason): "\(path): \(reason)"
        case let .checkpoint(path, reason): "checkpoint \(path): \(reason)"
        case let .data(reason): reason
        case let .layout(reason): reason
        case let .memory(reason): reason
        case let .diverged(iteration, loss, gradNorm):
            // NaN prints without its sign ("-nan" reads like a different value).
            "training diverged at iteration \(iteration): lm loss \(loss.isNaN ? "nan" : String(loss)), "
                + "grad norm \(gradNorm.isNaN ? "nan" : String(gradNorm)); stopped before the update "
                + "(no checkpoint of it is saved). Lower --lr or check the data and the checkpoint loaded; "
                + "--no-check-for-nan-in-loss-and-grad skips such iterations instead"
        case let .lossScaleExhausted(iteration, scale, count):
            "fp16 gradients overflowed in \(count) iterations in a row at the loss scale's minimum \(scale) "
                + "(up to iteration \(iteration)); stopped without saving (the last checkpoint is intact). "
                + "Lower --min-loss-scale or --lr, or train in --bf16 (--max-skips-at-min-loss-scale sets the limit)"
        }
    }
}

extension TrainingError {
    /// A model configuration's error, as the flag it names.
    init(_ error: ConfigurationError) {
        switch error {
        case let .invalid(flag, reason): self = .invalidFlag(flag, reason)
        case let .layout(layout): self = .layout(layout.description)
        }
    }

    /// A checkpoint file's error, naming the file once.
    static func checkpoint(_ error: TensorFileError) -> TrainingError {
        .checkpoint(path: error.path, reason: error.problem)
    }

    /// A checkpoint file's read error, naming the file once.
    static func checkpoint(_ error: FileError) -> TrainingError {
        .checkpoint(path: error.path, reason: error.reason)
    }
}
