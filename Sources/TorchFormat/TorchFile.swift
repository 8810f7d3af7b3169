import FileSupport

/// A file written by `torch.save` (the ZIP format of PyTorch 1.6 and later): its pickled object and
/// the bytes of its tensors' storages (`<archive>/data/<key>`), read as fp32.
public final class TorchFile: @unchecked Sendable {
    public let path: String
    public let archive: ZipArchive
    /// The saved object.
    public let root: PickleValue
    private let prefix: String

    /// Reads `path`; a file that is not a readable `torch.save` archive is an error naming it.
    public convenience init(path: String) throws(FileError) {
        try self.init(archive: try ZipArchive(path: path))
    }

    /// Reads the `torch.save` archive `archive` (a file, or a blob inside one).
    public init(archive: ZipArchive) throws(FileError) {
        path = archive.path
        self.archive = archive
        guard let pickle = archive.names.first(where: { $0.hasSuffix("data.pkl") && !$0.dropLast(8).contains("/data") }),
              let bytes = archive.bytes(of: pickle) else {
            throw FileError(path: path, reason: "no data.pkl: not a torch.save archive (the legacy pre-1.6 format is not read)")
        }
        prefix = String(pickle.dropLast("data.pkl".count))
        do { root = try Unpickler.load(bytes) } catch { throw FileError(path: path, reason: "\(error)") }
    }

    /// `tensor`'s elements in row-major order, widened to fp32 (fp32, bf16, fp16 and fp64 storages).
    public func floats(_ tensor: TorchTensor, name: String) throws(FileError) -> [Float] {
        let storage = tensor.storage
        guard let bytes = archive.bytes(of: prefix + "data/" + storage.key) else {
            throw FileError(path: path, reason: "\(name): storage \(storage.key) is missing from the archive")
        }
        guard tensor.fitsItsStorage, storage.count <= bytes.count / storage.dtype.byteSize else {
            throw FileError(path: path, reason: "\(name): storage \(storage.key) (\(bytes.count) bytes for \(storage.count) elements) does not hold the tensor")
        }
        let count = tensor.elementCount
        var out = [Float](repeating: 0, count: count)
        if tensor.isContiguous && storage.dtype == .float32 {  // the usual case: one copy
            out.withUnsafeMutableBytes { target in
                target.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[(4 * tensor.offset)..<(4 * (tensor.offset + count))]))
            }
            return out
        }
        // Row-major walk over the strided view.
        var index = [Int](repeating: 0, count: tensor.shape.count)
        for i in 0..<count {
            var element = tensor.offset
            for (d, position) in index.enumerated() { element += position * tensor.stride[d] }
            out[i] = try Self.element(bytes, element, storage.dtype, name: name, path: path)
            var d = index.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < tensor.shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return out
    }

    private static func element(_ bytes: UnsafeRawBufferPointer, _ i: Int, _ dtype: TorchDType, name: String,
                                path: String) throws(FileError) -> Float {
        switch dtype {
        case .float32: return Float(bitPattern: bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
        case .bfloat16: return Float(bitPattern: UInt32(bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
        case .float16: return Float(Float16(bitPattern: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
        case .float64: return Float(Double(bitPattern: bytes.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))
        default: throw FileError(path: path, reason: "\(name) is a \(dtype) tensor, not floating point")
        }
    }
}
