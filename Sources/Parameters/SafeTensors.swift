#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import FileSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors reading or writing tensor files; each names the file and what is wrong with it.
public enum TensorFileError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case malformed(path: String, reason: String)
    case missingTensor(path: String, name: String)
    case unsupportedType(path: String, name: String, dtype: String)
    case writeFailed(path: String, reason: String)

    /// The file the error is about.
    public var path: String {
        switch self {
        case let .unreadable(path, _), let .malformed(path, _), let .missingTensor(path, _), let .unsupportedType(path, _, _),
             let .writeFailed(path, _): path
        }
    }

    /// What is wrong, without the file's name (for a message that names it already).
    public var problem: String {
        switch self {
        case let .unreadable(_, reason): "cannot be read: \(reason)"
        case let .malformed(_, reason): "not a valid safetensors file: \(reason)"
        case let .missingTensor(_, name): "has no tensor named '\(name)'"
        case let .unsupportedType(_, name, dtype): "tensor '\(name)' has dtype \(dtype); expected F32, F64, I32 or I64"
        case let .writeFailed(_, reason): "cannot be written: \(reason)"
        }
    }

    public var description: String {
        switch self {
        case let .unreadable(path, reason): "cannot read \(path): \(reason)"
        case let .malformed(path, reason): "\(path) is not a valid safetensors file: \(reason)"
        case let .missingTensor(path, name): "\(path) has no tensor named '\(name)'"
        case let .unsupportedType(path, name, dtype):
            "tensor '\(name)' in \(path) has dtype \(dtype); expected F32, F64, I32 or I64"
        case let .writeFailed(path, reason): "cannot write \(path): \(reason)"
        }
    }
}

/// A safetensors file (Hugging Face's format): an 8-byte little-endian header length, a JSON
/// header `{name: {dtype, shape, data_offsets}}`, then the raw little-endian tensor bytes.
public struct SafeTensorsFile: Sendable {
    /// One tensor's header entry.
    public struct Entry: Sendable, Codable, Equatable {
        public var dtype: String
        public var shape: [Int]
        public var dataOffsets: [Int]

        enum CodingKeys: String, CodingKey {
            case dtype, shape
            case dataOffsets = "data_offsets"
        }
    }

    /// Where the file came from (for error messages).
    public let path: String
    /// Header entries by tensor name.
    public let entries: [String: Entry]
    /// Free-form string metadata (`__metadata__`).
    public let metadata: [String: String]
    /// The file's bytes: mapped (read from disk as tensors are read, their pages given back
    /// after), or an array already in memory.
    private let mapped: MappedFile?
    private let array: [UInt8]
    private let dataStart: Int

    /// Maps and validates a whole file. Its tensors are read from the mapping, so reading a
    /// model does not first copy the whole file into memory.
    public init(path: String) throws(TensorFileError) {
        let file: MappedFile
        do {
            file = try MappedFile(path: path)
        } catch {
            throw .unreadable(path: path, reason: error.reason)  // "cannot open: No such file or directory"
        }
        (entries, metadata, dataStart) = try Self.parseHeader(file.bytes, path: path)
        self.path = path
        mapped = file
        array = []
    }

    /// Parses a file already in memory.
    public init(bytes: [UInt8], path: String) throws(TensorFileError) {
        let header = bytes.withUnsafeBytes { raw in
            Result { () throws(TensorFileError) in try Self.parseHeader(raw, path: path) }
        }
        (entries, metadata, dataStart) = try header.get()
        self.path = path
        mapped = nil
        array = bytes
    }

    /// The header's tensor entries and metadata, and where the payload starts.
    private static func parseHeader(_ bytes: UnsafeRawBufferPointer, path: String)
        throws(TensorFileError) -> (entries: [String: Entry], metadata: [String: String], dataStart: Int) {
        guard bytes.count >= 8 else { throw .malformed(path: path, reason: "shorter than its 8-byte header length") }
        var headerLength = 0
        for i in 0..<8 { headerLength |= Int(bytes[i]) << (8 * i) }
        guard headerLength > 0, headerLength <= bytes.count - 8 else {
            throw .malformed(path: path, reason: "header length \(headerLength) exceeds the file size \(bytes.count)")
        }
        let header = Data(bytes[8..<(8 + headerLength)])  // valid while `mapped` or `array` holds it
        let raw: [String: HeaderValue]
        do {
            raw = try JSONDecoder().decode([String: HeaderValue].self, from: header)
        } catch {
            throw .malformed(path: path, reason: "its header is not a safetensors header (\(JSONDecoding.describe(error)))")
        }
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        let payload = bytes.count - 8 - headerLength
        for (name, value) in raw {
            switch value {
            case .metadata(let values) where name == "__metadata__":
                metadata = values
            case .entry(let entry):
                guard entry.dataOffsets.count == 2, entry.dataOffsets[0] >= 0,
                      entry.dataOffsets[0] <= entry.dataOffsets[1], entry.dataOffsets[1] <= payload else {
                    throw .malformed(path: path, reason: "tensor '\(name)' has data offsets \(entry.dataOffsets) outside the \(payload)-byte payload (truncated file?)")
                }
                if let size = Self.elementSize(entry.dtype),
                   entry.shape.reduce(1, *) * size != entry.dataOffsets[1] - entry.dataOffsets[0] {
                    throw .malformed(path: path, reason: "tensor '\(name)' shape \(entry.shape) does not match its byte size")
                }
                entries[name] = entry
            default:
                throw .malformed(path: path, reason: "header entry '\(name)' is not a tensor")
            }
        }
        return (entries, metadata, 8 + headerLength)
    }

    /// Calls `body` with the file's bytes.
    private func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        if let mapped { return mapped.withBytes(body) }
        return array.withUnsafeBytes(body)
    }

    /// Names of all tensors, sorted.
    public var names: [String] { entries.keys.sorted() }

    /// Shape of a tensor.
    public func shape(_ name: String) throws(TensorFileError) -> [Int] {
        guard let entry = entries[name] else { throw .missingTensor(path: path, name: name) }
        return entry.shape
    }

    /// A tensor's values converted to `Float` (from F32, F64, I32 or I64).
    public func floats(_ name: String) throws(TensorFileError) -> [Float] {
        let count = try shape(name).reduce(1, *)
        var values = [Float](repeating: 0, count: count)
        try values.withUnsafeMutableBufferPointer { (out: inout UnsafeMutableBufferPointer<Float>) throws(TensorFileError) in
            try read(name, into: out.baseAddress!, count: count)
        }
        return values
    }

    /// Writes a tensor's `count` values, converted to `Float`, to `out`; then a mapped file gives
    /// the tensor's pages back (so a model read tensor by tensor never holds the whole file).
    public func read(_ name: String, into out: UnsafeMutablePointer<Float>, count: Int) throws(TensorFileError) {
        guard let entry = entries[name] else { throw .missingTensor(path: path, name: name) }
        guard ["F32", "F64", "I32", "I64"].contains(entry.dtype) else {
            throw .unsupportedType(path: path, name: name, dtype: entry.dtype)
        }
        precondition(count == entry.shape.reduce(1, *), "read \(count) values of '\(name)', which has \(entry.shape.reduce(1, *))")
        let start = dataStart + entry.dataOffsets[0]
        withBytes { raw in
            let base = raw.baseAddress! + start
            switch entry.dtype {
            case "F32": UnsafeMutableRawPointer(out).copyMemory(from: base, byteCount: 4 * count)
            case "F64": for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
            case "I32": for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
            default: for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
            }
        }
        mapped?.release(start..<(dataStart + entry.dataOffsets[1]))
    }

    /// A tensor's values as integers (from I32 or I64).
    public func integers(_ name: String) throws(TensorFileError) -> [Int] {
        guard let entry = entries[name] else { throw .missingTensor(path: path, name: name) }
        let count = entry.shape.reduce(1, *)
        let start = dataStart + entry.dataOffsets[0]
        guard ["I32", "I64"].contains(entry.dtype) else {
            throw .unsupportedType(path: path, name: name, dtype: entry.dtype)
        }
        return withBytes { raw -> [Int] in
            let base = raw.baseAddress! + start
            if entry.dtype == "I32" {
                return (0..<count).map { Int(base.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
            }
            return (0..<count).map { Int(base.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
        }
    }

    static func elementSize(_ dtype: String) -> Int? {
        switch dtype {
        case "F32", "I32": 4
        case "F64", "I64": 8
        case "F16", "BF16", "I16", "U16": 2
        case "I8", "U8", "BOOL": 1
        default: nil
        }
    }

    /// Writes Float32 tensors (in the given order) atomically: a temporary file in the same
    /// folder is written, flushed and renamed over `path`, so a failure never leaves half a file.
    public static func write(_ tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)],
                             metadata: [String: String] = [:], to path: String) throws(TensorFileError) {
        var header: [String: HeaderValue] = [:]
        var offset = 0
        for tensor in tensors {
            precondition(tensor.shape.reduce(1, *) == tensor.values.count, "shape does not match values for \(tensor.name)")
            header[tensor.name] = .entry(Entry(dtype: "F32", shape: tensor.shape,
                                               dataOffsets: [offset, offset + 4 * tensor.values.count]))
            offset += 4 * tensor.values.count
        }
        if !metadata.isEmpty { header["__metadata__"] = .metadata(metadata) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard var json = try? [UInt8](encoder.encode(header)) else {
            throw .writeFailed(path: path, reason: "cannot encode the header")
        }
        while (8 + json.count) % 8 != 0 { json.append(0x20) }  // pad so the payload is aligned
        var file = [UInt8]()
        file.reserveCapacity(8 + json.count + offset)
        for i in 0..<8 { file.append(UInt8((json.count >> (8 * i)) & 0xFF)) }
        file += json
        for tensor in tensors {
            file += UnsafeRawBufferPointer(tensor.values)
        }
        do {
            try AtomicFile.write(file, to: path)
        } catch {
            throw .writeFailed(path: path, reason: error.reason)
        }
    }
}

/// A header value: a tensor entry or the `__metadata__` string map.
enum HeaderValue: Codable, Equatable {
    case entry(SafeTensorsFile.Entry)
    case metadata([String: String])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let entry = try? container.decode(SafeTensorsFile.Entry.self) {
            self = .entry(entry)
        } else {
            self = .metadata(try container.decode([String: String].self))
        }
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .entry(let entry): try container.encode(entry)
        case .metadata(let values): try container.encode(values)
        }
    }
}
