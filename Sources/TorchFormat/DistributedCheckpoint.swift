#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import FileSupport

/// A folder written by PyTorch's `torch.distributed.checkpoint` (`FileSystemWriter`), as
/// megatron-core's `torch_dist` format saves it:
/// - `.metadata`: a pickled `Metadata` whose `state_dict_metadata` maps each key to a
///   `TensorStorageMetadata` (the global `size` and the `chunks` the ranks saved, each an
///   `offsets`/`sizes` box) or a `BytesStorageMetadata`, and whose `storage_data` maps each
///   `MetadataIndex(fqn, offset)` to a `_StorageInfo(relative_path, offset, length)`;
/// - `__R_N.distcp` files: each tensor chunk a `torch.save` archive of that chunk, at its byte
///   offset.
/// Tensors are read whole: their chunks put together at their offsets, widened to fp32. Not for
/// use from several threads at once (it caches the files it maps).
public final class DistributedCheckpoint {
    /// One saved box of a tensor: where it lies in the whole tensor, and where its bytes are.
    public struct Chunk: Sendable {
        public let offsets: [Int]
        public let sizes: [Int]
        let file: String
        let range: Range<Int>
    }

    /// A tensor's global shape and the chunks that cover it.
    public struct Tensor: Sendable {
        public let shape: [Int]
        public let chunks: [Chunk]
    }

    public let folder: String
    /// Tensor keys in the order of the metadata.
    public private(set) var keys: [String] = []
    public private(set) var tensors: [String: Tensor] = [:]
    /// The byte entries (pickled objects: `_extra_state`, megatron-core's `common_state`) and
    /// where their bytes are.
    private var byteEntries: [String: (file: String, range: Range<Int>)] = [:]
    private var files: [String: MappedFile] = [:]

    /// The metadata's file name inside a checkpoint folder.
    public static let metadataName = ".metadata"

    /// Reads `folder`'s `.metadata`; a missing, damaged or inconsistent one is an error naming it.
    public init(folder: String) throws(FileError) {
        self.folder = folder
        let path = folder + "/" + Self.metadataName
        let mapped = try MappedFile(path: path)
        let root: PickleValue
        do { root = try Unpickler.load(mapped.bytes) } catch { throw FileError(path: path, reason: "\(error)") }
        func fail(_ reason: String) -> FileError { FileError(path: path, reason: "not torch.distributed.checkpoint metadata: \(reason)") }
        guard let metadata = root.entries, let tensorEntries = metadata["state_dict_metadata"]?.entries,
              let storageEntries = metadata["storage_data"]?.entries else {
            throw fail("no state_dict_metadata and storage_data")
        }
        // Where each chunk's bytes are: (fqn, offsets) -> file and range.
        var storage = [String: (file: String, range: Range<Int>)]()
        for (index, info) in storageEntries.pairs {
            guard let fqn = index.entries?["fqn"]?.string, let file = info.entries?["relative_path"]?.string,
                  let start = info.entries?["offset"]?.int, let length = info.entries?["length"]?.int,
                  start >= 0, length >= 0, start <= Int.max - length, !file.contains("/") else {
                throw fail("a storage entry without fqn, relative_path, offset and length")
            }
            let offsets = index.entries?["offset"].flatMap(Self.size) ?? []
            storage[Self.chunkKey(fqn, offsets)] = (file, start..<(start + length))
        }
        for (key, value) in tensorEntries.pairs {
            guard let name = key.string else { throw fail("a state-dict key that is not a string") }
            // BytesStorageMetadata entries (pickled objects such as _extra_state) are not tensors.
            if case let .object(object) = value, case .global(_, "BytesStorageMetadata") = object.type {
                if let place = storage[Self.chunkKey(name, [])] { byteEntries[name] = place }
                continue
            }
            guard let fields = value.entries, let shape = fields["size"].flatMap(Self.size) else {
                throw fail("\(name) is neither a tensor with a readable size nor a bytes entry")
            }
            guard let boxes = fields["chunks"]?.items else { throw fail("\(name) has no chunks") }
            guard let total = Self.elementCount(shape) else { throw fail("\(name)'s shape \(shape) overflows") }
            var chunks = [Chunk]()
            var covered = 0
            for box in boxes {
                guard let offsets = box.entries?["offsets"].flatMap(Self.size), let sizes = box.entries?["sizes"].flatMap(Self.size),
                      offsets.count == shape.count, sizes.count == shape.count,
                      zip(zip(offsets, sizes), shape).allSatisfy({ $0.0 >= 0 && $0.1 >= 0 && $0.0 <= $1 - $0.1 }) else {
                    throw fail("\(name) has a chunk outside its shape \(shape)")
                }
                guard let place = storage[Self.chunkKey(name, offsets)] else {
                    throw fail("\(name)'s chunk at \(offsets) has no storage entry")
                }
                // Every element takes at least a byte: a chunk larger than its bytes is damage (the
                // bytes themselves are found in their file before the tensor is allocated).
                guard let count = Self.elementCount(sizes), count <= place.range.count else {
                    throw fail("\(name)'s chunk at \(offsets) of \(sizes) elements has only \(place.range.count) bytes")
                }
                chunks.append(Chunk(offsets: offsets, sizes: sizes, file: place.file, range: place.range))
                covered = covered.addingReportingOverflow(count).overflow ? Int.max : covered + count
            }
            guard covered == total else { throw fail("\(name)'s chunks cover \(covered) of its \(total) elements") }
            keys.append(name)
            tensors[name] = Tensor(shape: shape, chunks: chunks)
        }
    }

    /// The whole tensor `key` in row-major order as fp32, its chunks read and put in place. Every
    /// chunk's archive is opened (its bytes found inside its file, its tensor of its sizes) before
    /// the whole is allocated, and the chunks must cover every element once.
    public func floats(_ key: String) throws(FileError) -> [Float] {
        guard let tensor = tensors[key] else { throw FileError(path: folder, reason: "holds no tensor \(key)") }
        var saved = [(TorchFile, TorchTensor)]()
        for chunk in tensor.chunks { saved.append(try open(chunk, of: key)) }
        let count = tensor.shape.reduce(1, *)
        var whole = [Float](repeating: 0, count: count), covered = [Bool](repeating: false, count: count)
        var overlapping = false
        for (chunk, (file, chunkTensor)) in zip(tensor.chunks, saved) {
            let values = try file.floats(chunkTensor, name: key)
            whole.withUnsafeMutableBufferPointer { target in
                values.withUnsafeBufferPointer { source in
                    Self.forEachRun(of: chunk, in: tensor.shape) { from, to, run in
                        (target.baseAddress! + to).update(from: source.baseAddress! + from, count: run)
                        for i in to..<(to + run) {
                            overlapping = overlapping || covered[i]
                            covered[i] = true
                        }
                    }
                }
            }
        }
        guard !overlapping, !covered.contains(false) else {
            throw FileError(path: folder, reason: "\(key)'s chunks overlap or leave elements out (damaged .metadata)")
        }
        return whole
    }

    /// Whether the checkpoint holds the byte entry `key`.
    public func hasBytes(_ key: String) -> Bool { byteEntries[key] != nil }

    /// The byte entry `key` read as the `torch.save` archive it holds (how megatron-core saves
    /// its pickled objects).
    public func torchFile(ofBytes key: String) throws(FileError) -> TorchFile {
        guard let place = byteEntries[key] else { throw FileError(path: folder, reason: "holds no byte entry \(key)") }
        return try torchFile(place.file, place.range, name: "\(folder)/\(place.file) bytes \(place.range) (\(key))")
    }

    /// The `torch.save` archive at `range` of `file` (mapped once per file).
    private func torchFile(_ file: String, _ range: Range<Int>, name: String) throws(FileError) -> TorchFile {
        let mapped: MappedFile
        if let open = files[file] { mapped = open } else {
            mapped = try MappedFile(path: folder + "/" + file)
            files[file] = mapped
        }
        return try TorchFile(archive: try ZipArchive(file: mapped, range: range, name: name))
    }

    /// One chunk's archive: the `torch.save` archive at its range, holding a tensor of its sizes.
    private func open(_ chunk: Chunk, of key: String) throws(FileError) -> (TorchFile, TorchTensor) {
        let name = "\(folder)/\(chunk.file) bytes \(chunk.range) (\(key) at \(chunk.offsets))"
        let file = try torchFile(chunk.file, chunk.range, name: name)
        guard case let .tensor(saved) = file.root else { throw FileError(path: name, reason: "does not hold a tensor") }
        guard saved.shape == chunk.sizes else {
            throw FileError(path: name, reason: "holds a tensor of shape \(saved.shape), the metadata says \(chunk.sizes)")
        }
        return (file, saved)
    }

    /// Walks a chunk of the row-major tensor of `shape` one run of its last dimension at a time:
    /// `body(offset in the chunk, offset in the whole, run length)`.
    static func forEachRun(of chunk: Chunk, in shape: [Int], _ body: (Int, Int, Int) -> Void) {
        let rank = shape.count
        guard rank > 0 else { return body(0, 0, 1) }
        let run = chunk.sizes[rank - 1], runs = chunk.sizes.dropLast().reduce(1, *)
        guard run > 0 else { return }
        var index = [Int](repeating: 0, count: rank - 1)
        for r in 0..<runs {
            var target = 0
            for d in 0..<rank {
                target = target * shape[d] + chunk.offsets[d] + (d < rank - 1 ? index[d] : 0)
            }
            body(r * run, target, run)
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                if index[d] < chunk.sizes[d] { break }
                index[d] = 0
                d -= 1
            }
        }
    }

    /// The product of `sizes`, nil when it overflows.
    static func elementCount(_ sizes: [Int]) -> Int? {
        var count = 1
        for size in sizes {
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            if overflow { return nil }
            count = product
        }
        return count
    }

    /// The integers of a pickled `torch.Size` (or tuple); nil for anything else.
    static func size(_ value: PickleValue) -> [Int]? {
        var items = value.items
        if case let .object(object) = value, case .global("torch", "Size") = object.type { items = object.arguments.first?.items }
        guard let items else { return nil }
        let sizes = items.compactMap(\.int)
        return sizes.count == items.count && sizes.allSatisfy({ $0 >= 0 }) ? sizes : nil
    }

    private static func chunkKey(_ fqn: String, _ offsets: [Int]) -> String {
        fqn + "@" + offsets.map(String.init).joined(separator: ",")
    }
}
