#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory (a pipe or other non-regular file is read into
/// memory instead); released when the last reference goes away.
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
        if (status.st_mode & S_IFMT) == S_IFDIR {
            throw FileError(path: path, reason: "is a directory")
        }
        if (status.st_mode & S_IFMT) != S_IFREG {
            bytes = try Self.readAll(fd, path: path)
            isMapped = false
            return
        }
        isMapped = true
        let size = Int(status.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let address, address != MAP_FAILED else { throw .system("cannot map", path) }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    private let isMapped: Bool

    /// Reads a stream (pipe, FIFO, /dev/stdin) to its end into an allocated buffer.
    private static func readAll(_ fd: Int32, path: String) throws(FileError) -> UnsafeRawBufferPointer {
        var capacity = 1 << 20, count = 0
        var buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
        while true {
            if count == capacity {
                let larger = UnsafeMutableRawPointer.allocate(byteCount: capacity * 2, alignment: 64)
                larger.copyMemory(from: buffer, byteCount: count)
                buffer.deallocate()
                buffer = larger
                capacity *= 2
            }
            let n = Glibc.read(fd, buffer + count, capacity - count)
            if n < 0 && errno == EINTR { continue }
            if n < 0 {
                buffer.deallocate()
                throw .system("cannot read", path)
            }
            if n == 0 { break }
            count += n
        }
        return UnsafeRawBufferPointer(start: buffer, count: count)
    }

    deinit {
        guard let base = bytes.baseAddress else { return }
        if isMapped {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }

    /// Gives back the resident pages wholly inside `range` (byte offsets) of a mapped file: they
    /// leave the process's resident memory and are read from disk again if touched. A file read
    /// into memory (not mapped) keeps its bytes.
    public func release(_ range: Range<Int>) {
        guard isMapped, let base = bytes.baseAddress else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let address = Int(bitPattern: base)
        let start = (address + range.lowerBound + page - 1) / page * page
        let end = (address + range.upperBound) / page * page
        guard end > start else { return }
        madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_DONTNEED)
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
