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

    public var description: String {
        switch self {
        case let .invalidFlag(flag, reason): "\(flag): \(reason)"
        case let .config(path, reason): "\(path): \(reason)"
        case let .checkpoint(path, reason): "checkpoint \(path): \(reason)"
        case let .data(reason): reason
        case let .layout(reason): reason
        case let .memory(reason): reason
        }
    }
}
