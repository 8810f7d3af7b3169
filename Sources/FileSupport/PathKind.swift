#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a path names, from `stat` (symbolic links followed).
public enum PathKind: Equatable, Sendable {
    case missing, file, folder

    /// The kind of `path` now.
    public init(_ path: String) {
        var status = stat()
        guard stat(path, &status) == 0 else {
            self = .missing
            return
        }
        self = (status.st_mode & S_IFMT) == S_IFDIR ? .folder : .file
    }
}
