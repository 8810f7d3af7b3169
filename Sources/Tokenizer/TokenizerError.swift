/// Problems loading, saving or training a tokenizer; each names the file and what is wrong.
public enum TokenizerError: Error, CustomStringConvertible, Equatable, Sendable {
    case unreadable(path: String, reason: String)
    case unwritable(path: String, reason: String)
    case malformed(path: String, reason: String)
    case unsupported(path: String, feature: String)
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): "cannot read \(path): \(reason)"
        case let .unwritable(path, reason): "cannot write \(path): \(reason)"
        case let .malformed(path, reason): "\(path): \(reason)"
        case let .unsupported(path, feature): "\(path): \(feature) is not supported (byte-level BPE only)"
        case let .invalidArgument(reason): reason
        }
    }
}
