import FileSupport

/// Writes a Megatron indexed dataset (`.bin` + `.idx`), streaming the tokens. Nothing is visible
/// at `prefix` until `finish()`, which renames both files into place (`.bin` first; a reader
/// checks that the two agree, so a crash between the renames is reported, not misread).
public final class IndexedDatasetWriter {
    /// The token element type.
    public let dtype: TokenDType
    private let prefix: String
    private let bin: AtomicFileWriter
    private var sequenceLengths: [Int32] = []
    private var documentIndices: [Int64] = [0]
    private var scratch = [UInt8]()
    /// Tokens written so far.
    public private(set) var tokenCount = 0

    /// Starts a dataset at `prefix` with tokens of type `dtype` (integer types only).
    public init(prefix: String, dtype: TokenDType) throws(DatasetError) {
        guard dtype != .float32 && dtype != .float64 else {
            throw .invalidArgument("token dtype \(dtype.name) is not an integer type")
        }
        self.prefix = prefix
        self.dtype = dtype
        do {
            bin = try AtomicFileWriter(path: IndexedDatasetFormat.binPath(prefix))
        } catch {
            throw .io(error)
        }
    }

    /// Appends one sequence of tokens to the current document. Throws if a token does not fit
    /// the dtype.
    public func add(sequence tokens: UnsafeBufferPointer<Int32>) throws(DatasetError) {
        guard tokens.count <= Int(Int32.max) else { throw .invalidArgument("sequence longer than 2^31 tokens") }
        scratch.removeAll(keepingCapacity: true)
        switch dtype {
        case .uint16: try append(tokens, as: UInt16.self)
        case .int32: try append(tokens, as: Int32.self)
        case .int64: try append(tokens, as: Int64.self)
        case .int16: try append(tokens, as: Int16.self)
        case .uint8: try append(tokens, as: UInt8.self)
        case .int8: try append(tokens, as: Int8.self)
        case .float32, .float64: preconditionFailure("rejected in init")
        }
        do { try bin.write(scratch) } catch { throw .io(error) }
        sequenceLengths.append(Int32(tokens.count))
        tokenCount += tokens.count
    }

    private func append<T: FixedWidthInteger>(_ tokens: UnsafeBufferPointer<Int32>, as: T.Type) throws(DatasetError) {
        for token in tokens {
            guard let value = T(exactly: token) else {
                throw .invalidArgument("token id \(token) does not fit the dataset's \(dtype.name) tokens")
            }
            withUnsafeBytes(of: value.littleEndian) { scratch.append(contentsOf: $0) }
        }
    }

    /// Appends one sequence of tokens to the current document.
    public func add(sequence tokens: [Int32]) throws(DatasetError) {
        try rethrowing(tokens.withUnsafeBufferPointer { buffer in
            capture { () throws(DatasetError) in try add(sequence: buffer) }
        })
    }

    /// Ends the current document (its sequences are those added since the previous end).
    public func endDocument() {
        documentIndices.append(Int64(sequenceLengths.count))
    }

    /// Appends a document made of one sequence.
    public func add(document tokens: [Int32]) throws(DatasetError) {
        try add(sequence: tokens)
        endDocument()
    }

    /// Writes the index and moves both files into place.
    public func finish() throws(DatasetError) {
        if documentIndices.last! != Int64(sequenceLengths.count) { endDocument() }
        var header = IndexedDatasetFormat.magic
        func append<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { header.append(contentsOf: $0) }
        }
        append(IndexedDatasetFormat.version)
        header.append(dtype.rawValue)
        append(UInt64(sequenceLengths.count))
        append(UInt64(documentIndices.count))
        do {
            let index = try AtomicFileWriter(path: IndexedDatasetFormat.indexPath(prefix))
            try index.write(header)
            try index.write(contentsOf: sequenceLengths.map(\.littleEndian))
            var offset: Int64 = 0
            var offsets = [Int64]()
            offsets.reserveCapacity(sequenceLengths.count)
            for length in sequenceLengths {
                offsets.append(offset.littleEndian)
                offset += Int64(length) * Int64(dtype.size)
            }
            try index.write(contentsOf: offsets)
            try index.write(contentsOf: documentIndices.map(\.littleEndian))
            // Both or neither: a .bin beside an .idx of another run would be read as a dataset.
            try AtomicFileWriter.commit([bin, index])
        } catch {
            throw .io(error)
        }
    }
}
