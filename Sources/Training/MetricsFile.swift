#if canImport(Glibc)
import Glibc
#endif
import FileSupport

/// `--metrics-file`: one JSON object per line, appended with one `write` each (a resumed run
/// continues the same file). A record that cannot be written whole is cut off again and reported,
/// and a torn last line left by a killed run or a full disk is cut off when the file is opened,
/// so every line of the file is a complete record.
public final class MetricsFile {
    let descriptor: Int32
    /// The file's path.
    public let path: String
    /// Bytes of a torn last line (no newline) that `init` cut off; 0 when the file was whole.
    public let repairedBytes: Int

    /// Opens (creates) the file for appending, first cutting off a torn last line.
    public init(path: String) throws(TrainingError) {
        let descriptor = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw .invalidFlag("--metrics-file", "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        self.descriptor = descriptor
        self.path = path
        do { repairedBytes = try AppendOnlyFile.cutTornLine(descriptor, path: path) } catch {
            close(descriptor)
            throw .invalidFlag("--metrics-file", "cannot repair its torn last line: \(error)")
        }
    }

    deinit { close(descriptor) }

    /// Appends one record; throws (naming the file and the system's reason) when it cannot be
    /// written whole, after cutting off what part of it reached the file.
    public func write(_ fields: [(key: String, value: JSONValue)]) throws(FileError) {
        try AppendOnlyFile.append(Array((JSONValue.object(fields).serialized + "\n").utf8), to: descriptor, path: path)
    }
}

/// Whole-record appends to a file opened with `O_APPEND`.
enum AppendOnlyFile {
    /// Appends `bytes`; on a failed or short write, truncates the file back to its size before.
    static func append(_ bytes: [UInt8], to descriptor: Int32, path: String) throws(FileError) {
        var status = stat()
        let before = fstat(descriptor, &status) == 0 ? status.st_size : -1
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let error = FileError(path: path, reason: "write failed: \(String(cString: strerror(n < 0 ? errno : ENOSPC)))")
                if before >= 0 && written > 0 { _ = ftruncate(descriptor, before) }
                throw error
            }
            written += n
        }
    }

    /// Cuts a regular file back to just after its last newline; returns the bytes removed.
    static func cutTornLine(_ descriptor: Int32, path: String) throws(FileError) -> Int {
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG, status.st_size > 0 else { return 0 }
        let size = Int(status.st_size)
        var end = size
        var chunk = [UInt8](repeating: 0, count: 4096)
        while end > 0 {
            let start = max(0, end - chunk.count)
            let n = chunk.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, end - start, off_t(start)) }
            guard n == end - start else { throw FileError(path: path, reason: "cannot read: \(String(cString: strerror(errno)))") }
            if let newline = chunk[0..<n].lastIndex(of: UInt8(ascii: "\n")) {
                end = start + newline + 1
                break
            }
            end = start
        }
        guard end < size else { return 0 }
        guard ftruncate(descriptor, off_t(end)) == 0 else { throw FileError(path: path, reason: "cannot truncate: \(String(cString: strerror(errno)))") }
        return size - end
    }
}
