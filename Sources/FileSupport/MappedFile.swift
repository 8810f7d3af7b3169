#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory; unmapped when the last reference goes away.
/// `bytes` is valid only while the `MappedFile` is alive: keep a reference (a stored property) or
/// use `withBytes`, never `MappedFile(path:).bytes` on a temporary.
public final class MappedFile: @unchecked Sendable {
    /// The file's path, for error messages.
    public let path: String
    /// The file's bytes (empty files map to an empty buffer).
    public let bytes: UnsafeRawBufferPointer

    /// Maps `path`; throws if it cannot be opened or mapped.
    public init(path: String) throws(FileError) {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .system("cannot open", path) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw .system("cannot stat", path) }
        let size = Int(status.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let address, address != MAP_FAILED else { throw .system("cannot map", path) }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    /// Calls `body` with the bytes, keeping the mapping alive meanwhile.
    public func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withExtendedLifetime(self) { () throws(E) -> R in try body(bytes) }
    }

    /// The whole file copied into an array.
    public static func read(path: String) throws(FileError) -> [UInt8] {
        try MappedFile(path: path).withBytes { Array($0) }
    }

    /// Reads a little-endian value at a byte offset (unaligned reads allowed).
    @inline(__always)
    public func load<T: BitwiseCopyable>(fromByteOffset offset: Int, as type: T.Type) -> T {
        bytes.loadUnaligned(fromByteOffset: offset, as: type)
    }
}
