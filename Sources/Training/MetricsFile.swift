#if canImport(Glibc)
import Glibc
#endif
import FileSupport

/// `--metrics-file`: one JSON object per line, appended and flushed as each is written (a
/// resumed run continues the same file).
public final class MetricsFile {
    private let file: UnsafeMutablePointer<FILE>
    public let path: String

    public init(path: String) throws(TrainingError) {
        guard let file = fopen(path, "a") else {
            throw .invalidFlag("--metrics-file", "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        self.file = file
        self.path = path
    }

    deinit { fclose(file) }

    /// Appends one record.
    public func write(_ fields: [(key: String, value: JSONValue)]) {
        fputs(JSONValue.object(fields).serialized + "\n", file)
        fflush(file)
    }
}
