#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed file operation; names the file and the system's reason.
public struct FileError: Error, CustomStringConvertible, Equatable, Sendable {
    public let path: String
    public let reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    /// The error for the current `errno`.
    static func system(_ action: String, _ path: String) -> FileError {
        FileError(path: path, reason: "\(action): \(String(cString: strerror(errno)))")
    }

    public var description: String { "\(path): \(reason)" }
}

/// Writes a file so that readers only ever see the old file or the complete new one: the bytes go
/// to `path.tmp-PID`, and `commit()` fsyncs and renames it over `path`. A writer that is dropped
/// without `commit()` (an error) leaves `path` untouched and removes its temporary file; a killed
/// process leaves `path` untouched too, and its `.tmp-PID` file behind.
public final class AtomicFileWriter {
    /// The file that `commit()` replaces.
    public let path: String
    private let temporaryPath: String
    private var descriptor: Int32
    private var buffer: [UInt8] = []
    private let bufferCapacity = 1 << 20
    /// Bytes appended so far.
    public private(set) var count = 0

    /// Creates the temporary file next to `path`.
    public init(path: String) throws(FileError) {
        self.path = path
        // Unique per writer: rank threads of one process may write the same file at once.
        temporaryPath = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw .system("cannot create \(temporaryPath)", path) }
        buffer.reserveCapacity(bufferCapacity)
    }

    /// Whether the temporary file was renamed over `path`.
    private var published = false
    /// Why `finish` failed (the temporary file is then never published).
    private var finishError: FileError?

    deinit {
        if descriptor >= 0 { close(descriptor) }
        if !published { unlink(temporaryPath) }
    }

    /// Appends raw bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(FileError) {
        count += bytes.count
        if buffer.count + bytes.count > bufferCapacity { try flush() }
        if bytes.count >= bufferCapacity {
            try writeAll(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
    }

    /// Appends a byte array.
    public func write(_ bytes: [UInt8]) throws(FileError) {
        try rethrowing(bytes.withUnsafeBytes { raw in capture { () throws(FileError) in try write(raw) } })
    }

    /// Appends the little-endian bytes of fixed-width integers or floats.
    public func write<T: BitwiseCopyable>(contentsOf values: [T]) throws(FileError) {
        try rethrowing(values.withUnsafeBytes { raw in capture { () throws(FileError) in try write(raw) } })
    }

    /// Appends one value's bytes.
    public func write<T: BitwiseCopyable>(_ value: T) throws(FileError) {
        try rethrowing(withUnsafeBytes(of: value) { raw in capture { () throws(FileError) in try write(raw) } })
    }

    /// Flushes, fsyncs and renames the temporary file over `path`.
    public func commit() throws(FileError) {
        precondition(!published, "commit() called twice")
        try finish()
        try publish()
    }

    /// Commits `writers` as one: every file is written out and synced, and every path checked,
    /// before the first is renamed, so a full disk or an output path that is a folder replaces
    /// none of them.
    public static func commit(_ writers: [AtomicFileWriter]) throws(FileError) {
        for writer in writers { try writer.finish() }
        for writer in writers where PathKind(writer.path) == .folder {
            throw FileError(path: writer.path, reason: "is a folder, not a file")
        }
        for writer in writers { try writer.publish() }
    }

    /// Ends the writing: flushes and fsyncs the temporary file and closes it, keeping it unnamed
    /// until `commit` (a writer of a group can finish early, so that many need not stay open).
    /// Calling it again does nothing, or throws the first call's error again.
    public func finish() throws(FileError) {
        if let finishError { throw finishError }
        guard descriptor >= 0 else { return }
        do throws(FileError) {
            try flush()
            buffer = []
            guard fsync(descriptor) == 0 else { throw FileError.system("fsync failed", path) }
            close(descriptor)
            descriptor = -1
        } catch {
            finishError = error
            throw error
        }
    }

    /// Renames the synced temporary file over `path`.
    private func publish() throws(FileError) {
        precondition(!published, "commit() called twice")
        guard rename(temporaryPath, path) == 0 else { throw FileError.system("cannot rename \(temporaryPath) over it", path) }
        published = true
    }

    private func flush() throws(FileError) {
        let pending = buffer
        buffer.removeAll(keepingCapacity: true)
        try rethrowing(pending.withUnsafeBytes { raw in capture { () throws(FileError) in try writeAll(raw) } })
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws(FileError) {
        var written = 0
        while written < bytes.count {
            let n = Glibc.write(descriptor, bytes.baseAddress! + written, bytes.count - written)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .system("write failed", path) }
            written += n
        }
    }
}

/// Runs `body` inside a non-throwing closure (such as `withUnsafeBytes`, which does not forward
/// typed errors), returning its error.
@inline(__always)
public func capture<E: Error>(_ body: () throws(E) -> Void) -> E? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}

/// Throws an error captured by `capture`.
@inline(__always)
public func rethrowing<E: Error>(_ error: E?) throws(E) {
    if let error { throw error }
}

/// One-call atomic replacement of a whole file.
public enum AtomicFile {
    /// Replaces the file at `path` with `bytes`, or leaves it untouched on failure.
    public static func write(_ bytes: [UInt8], to path: String) throws(FileError) {
        let writer = try AtomicFileWriter(path: path)
        try writer.write(bytes)
        try writer.commit()
    }
}

/// Directory helpers.
public enum Directory {
    /// Creates `path` and any missing parents (like `mkdir -p`).
    public static func create(_ path: String) throws(FileError) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw .system("cannot create directory", current)
            }
        }
    }
}
