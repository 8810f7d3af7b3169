#if canImport(Glibc)
import Glibc
#endif
import FileSupport

/// Writes TensorBoard event files (`events.out.tfevents.TIME.HOST`): TFRecord framing (length,
/// masked CRC-32C of the length, the record, masked CRC-32C of the record) around protobuf
/// `Event` messages holding scalar summaries, which TensorBoard's readers load. Each event is
/// appended with one `write`; one that cannot be written whole is cut off again and reported.
public final class TensorBoardWriter {
    /// The event file's path.
    public let path: String
    let descriptor: Int32

    /// Creates the directory if needed and starts a new event file with the version record.
    public init(directory: String) throws(TrainingError) {
        do { try Directory.create(directory) } catch {
            throw .invalidFlag("--tensorboard-dir", error.description)
        }
        var host = [UInt8](repeating: 0, count: 256)
        _ = host.withUnsafeMutableBufferPointer { gethostname($0.baseAddress!.withMemoryRebound(to: CChar.self, capacity: 255) { $0 }, 255) }
        let hostName = String(decoding: host.prefix { $0 != 0 }, as: UTF8.self)
        path = "\(directory)/events.out.tfevents.\(time(nil)).\(hostName)"
        descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw .invalidFlag("--tensorboard-dir", "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        var event = Protobuf()
        event.double(field: 1, Self.now())
        event.string(field: 3, "brain.Event:2")
        do { try writeRecord(event.bytes) } catch { throw .invalidFlag("--tensorboard-dir", error.description) }
    }

    deinit { close(descriptor) }

    /// Appends scalars (tag -> value) at `step`; throws (naming the file and the system's reason)
    /// when the event cannot be written whole.
    public func scalars(_ values: [(tag: String, value: Double)], step: Int) throws(FileError) {
        var summary = Protobuf()
        for (tag, value) in values {
            var entry = Protobuf()
            entry.string(field: 1, tag)
            entry.float(field: 2, Float(value))
            summary.message(field: 1, entry)
        }
        var event = Protobuf()
        event.double(field: 1, Self.now())
        event.varint(field: 2, UInt64(bitPattern: Int64(step)))
        event.message(field: 5, summary)
        try writeRecord(event.bytes)
    }

    private static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    private func writeRecord(_ data: [UInt8]) throws(FileError) {
        var record = [UInt8]()
        let length = withUnsafeBytes(of: UInt64(data.count).littleEndian) { Array($0) }
        record += length
        record += withUnsafeBytes(of: CRC32C.masked(length).littleEndian) { Array($0) }
        record += data
        record += withUnsafeBytes(of: CRC32C.masked(data).littleEndian) { Array($0) }
        try AppendOnlyFile.append(record, to: descriptor, path: path)
    }
}

/// The few protobuf encodings an `Event` needs.
struct Protobuf {
    var bytes: [UInt8] = []

    mutating func rawVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func key(_ field: Int, _ wireType: UInt64) { rawVarint(UInt64(field) << 3 | wireType) }

    mutating func varint(field: Int, _ value: UInt64) {
        key(field, 0)
        rawVarint(value)
    }

    mutating func double(field: Int, _ value: Double) {
        key(field, 1)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
    }

    mutating func float(field: Int, _ value: Float) {
        key(field, 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
    }

    mutating func string(field: Int, _ value: String) {
        key(field, 2)
        rawVarint(UInt64(value.utf8.count))
        bytes += value.utf8
    }

    mutating func message(field: Int, _ value: Protobuf) {
        key(field, 2)
        rawVarint(UInt64(value.bytes.count))
        bytes += value.bytes
    }
}

/// CRC-32C (Castagnoli), as TFRecord frames use it.
enum CRC32C {
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ data: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// TFRecord's masking: rotate right by 15 and add a constant.
    static func masked(_ data: [UInt8]) -> UInt32 {
        let crc = checksum(data)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}
