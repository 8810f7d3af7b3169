import FileSupport

/// A ZIP archive whose entries are stored uncompressed, as `torch.save` writes them: the central
/// directory (ZIP64 included) read from the end of the mapped file (or of a byte range of it: the
/// `torch.save` blobs inside a `torch.distributed.checkpoint` file), each entry's bytes a slice of
/// the mapping. A truncated or damaged archive, or a compressed entry, is an error naming the file.
public final class ZipArchive: @unchecked Sendable {
    public let path: String
    private let file: MappedFile
    /// The archive's bytes: the whole mapping, or the range of it the archive occupies.
    private let data: UnsafeRawBufferPointer
    /// Entry name -> its bytes' range in the file.
    private var entries: [String: Range<Int>] = [:]
    /// Entry names in the order of the central directory.
    public private(set) var names: [String] = []

    public init(path: String) throws(FileError) {
        self.path = path
        file = try MappedFile(path: path)
        data = file.bytes
        try readDirectory()
    }

    /// The archive stored at `range` of the mapped `file` (named `name` in errors); a range
    /// outside the file is an error.
    public init(file: MappedFile, range: Range<Int>, name: String) throws(FileError) {
        path = name
        self.file = file
        guard range.lowerBound >= 0, range.upperBound <= file.bytes.count else {
            throw FileError(path: name, reason: "bytes \(range) lie outside \(file.path) (\(file.bytes.count) bytes): truncated?")
        }
        data = UnsafeRawBufferPointer(rebasing: file.bytes[range])
        try readDirectory()
    }

    /// The bytes of entry `name`, valid while the archive is alive.
    public func bytes(of name: String) -> UnsafeRawBufferPointer? {
        guard let range = entries[name] else { return nil }
        return UnsafeRawBufferPointer(rebasing: data[range])
    }

    private func fail(_ reason: String) -> FileError { FileError(path: path, reason: "not a readable torch.save archive: \(reason)") }

    /// The little-endian unsigned integer of `size` bytes at `offset`; one that does not fit
    /// the file (an offset or length from a damaged or hostile archive) is an error.
    private func integer(at offset: Int, _ size: Int) throws(FileError) -> Int {
        guard offset >= 0, offset <= data.count - size else { throw fail("truncated (a record runs past the end)") }
        var value: UInt64 = 0
        for i in 0..<size { value |= UInt64(data[offset + i]) << UInt64(8 * i) }
        guard value <= UInt64(data.count) || size < 8 else { throw fail("a size or offset beyond the end of the file") }
        return Int(value)
    }

    /// Whether `count` bytes from `start` lie inside the file (no arithmetic that can overflow).
    private func inside(_ start: Int, _ count: Int) -> Bool {
        start >= 0 && count >= 0 && start <= data.count && count <= data.count - start
    }

    private func readDirectory() throws(FileError) {
        // The end-of-central-directory record: its signature within the last 64 KiB + 22 bytes.
        var end = -1
        var i = data.count - 22
        while i >= max(0, data.count - 22 - 65_535) {
            if try integer(at: i, 4) == 0x0605_4B50 { end = i; break }
            i -= 1
        }
        guard end >= 0 else { throw fail("no end-of-central-directory record (truncated or not a ZIP file)") }
        var count = try integer(at: end + 10, 2)
        var directory = try integer(at: end + 16, 4)
        if count == 0xFFFF || directory == 0xFFFF_FFFF {  // ZIP64: the locator sits just before
            let locator = end - 20
            guard try integer(at: locator, 4) == 0x0706_4B50 else { throw fail("ZIP64 sizes without a ZIP64 locator") }
            let record = try integer(at: locator + 8, 8)
            guard try integer(at: record, 4) == 0x0606_4B50 else { throw fail("damaged ZIP64 end record") }
            count = try integer(at: record + 32, 8)
            directory = try integer(at: record + 48, 8)
        }
        guard count <= data.count / 46, inside(directory, 0) else { throw fail("damaged end-of-central-directory record") }
        var offset = directory
        for _ in 0..<count {
            guard try integer(at: offset, 4) == 0x0201_4B50 else { throw fail("damaged central directory") }
            let method = try integer(at: offset + 10, 2)
            var compressed = try integer(at: offset + 20, 4)
            var size = try integer(at: offset + 24, 4)
            let nameLength = try integer(at: offset + 28, 2), extraLength = try integer(at: offset + 30, 2)
            let commentLength = try integer(at: offset + 32, 2)
            var local = try integer(at: offset + 42, 4)
            guard inside(offset, 46 + nameLength) else { throw fail("truncated central directory") }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: data[(offset + 46)..<(offset + 46 + nameLength)]), as: UTF8.self)
            // ZIP64 extra field: the 8-byte sizes and offset that did not fit, in this order.
            var extra = offset + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = try integer(at: extra, 2), length = try integer(at: extra + 2, 2)
                if id == 1 {
                    var field = extra + 4
                    if size == 0xFFFF_FFFF { size = try integer(at: field, 8); field += 8 }
                    if compressed == 0xFFFF_FFFF { compressed = try integer(at: field, 8); field += 8 }
                    if local == 0xFFFF_FFFF { local = try integer(at: field, 8) }
                }
                extra += 4 + length
            }
            guard inside(local, 0), size >= 0 else { throw fail("entry \(name) has an offset or size beyond the file") }
            guard method == 0, compressed == size else {
                throw fail("entry \(name) is compressed (method \(method)); torch.save stores entries uncompressed")
            }
            guard try integer(at: local, 4) == 0x0403_4B50 else { throw fail("damaged local header of \(name)") }
            let start = local + 30 + (try integer(at: local + 26, 2)) + (try integer(at: local + 28, 2))
            guard inside(start, size) else { throw fail("entry \(name) runs past the end of the file (truncated)") }
            entries[name] = start..<(start + size)
            names.append(name)
            offset += 46 + nameLength + extraLength + commentLength
        }
    }
}
