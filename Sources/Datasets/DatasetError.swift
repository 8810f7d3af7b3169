import FileSupport

/// Problems with dataset files or their description; each names the file and what is wrong.
public enum DatasetError: Error, CustomStringConvertible, Equatable, Sendable {
    case io(FileError)
    case corrupt(path: String, reason: String)
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .io(error): error.description
        case let .corrupt(path, reason): "\(path) is not a valid Megatron indexed dataset file: \(reason)"
        case let .invalidArgument(reason): reason
        }
    }
}
