import FileSupport

/// A Megatron indexed dataset opened for reading: both files are memory-mapped and the index is
/// checked against the `.bin` size before any token is read, so a truncated or corrupt pair is
/// reported when it is opened.
public final class IndexedDataset: @unchecked Sendable {
    /// The dataset prefix (paths without `.bin`/`.idx`).
    public let prefix: String
    /// The token element type.
    public let dtype: TokenDType
    /// Tokens in each sequence.
    public let sequenceLengths: [Int32]
    /// Byte offset of each sequence in `.bin`.
    public let sequenceOffsets: [Int64]
    /// Document boundaries: document i is sequences `documentIndices[i] ..< documentIndices[i+1]`.
    public let documentIndices: [Int64]
    /// A digest of the index (every sequence's length and the document boundaries), which the
    /// sample indices are built from: a dataset preprocessed again with the same counts but other
    /// documents does not reuse the old one's cached indices. 64-bit FNV-1a over the values, a
    /// word each, as 16 hex digits.
    public let indexDigest: String
    private let bin: MappedFile

    /// Opens `prefix.idx` and `prefix.bin`.
    public init(prefix: String) throws(DatasetError) {
        self.prefix = prefix
        let indexPath = IndexedDatasetFormat.indexPath(prefix)
        let index: MappedFile
        do {
            index = try MappedFile(path: indexPath)
            bin = try MappedFile(path: IndexedDatasetFormat.binPath(prefix))
        } catch {
            throw .io(error)
        }
        func corrupt(_ reason: String) -> DatasetError { .corrupt(path: indexPath, reason: reason) }
        let bytes = index.bytes
        guard bytes.count >= IndexedDatasetFormat.headerSize else {
            throw corrupt("\(bytes.count) bytes is shorter than the \(IndexedDatasetFormat.headerSize)-byte header")
        }
        guard Array(bytes[0..<9]) == IndexedDatasetFormat.magic else { throw corrupt("bad magic (expected MMIDIDX)") }
        let version = UInt64(littleEndian: index.load(fromByteOffset: 9, as: UInt64.self))
        guard version == IndexedDatasetFormat.version else { throw corrupt("version \(version), expected 1") }
        guard let dtype = TokenDType(rawValue: bytes[17]) else { throw corrupt("unknown dtype code \(bytes[17])") }
        self.dtype = dtype
        let sequenceCount = UInt64(littleEndian: index.load(fromByteOffset: 18, as: UInt64.self))
        let documentCount = UInt64(littleEndian: index.load(fromByteOffset: 26, as: UInt64.self))
        let limit = UInt64(bytes.count)
        guard sequenceCount < limit, documentCount < limit,
              UInt64(IndexedDatasetFormat.headerSize) + sequenceCount * 12 + documentCount * 8 == limit else {
            throw corrupt("header says \(sequenceCount) sequences and \(documentCount) document boundaries, "
                          + "which does not match the file size \(bytes.count) (truncated?)")
        }
        let s = Int(sequenceCount), d = Int(documentCount)
        var position = IndexedDatasetFormat.headerSize
        sequenceLengths = (0..<s).map { i in Int32(littleEndian: index.load(fromByteOffset: position + 4 * i, as: Int32.self)) }
        position += 4 * s
        sequenceOffsets = (0..<s).map { i in Int64(littleEndian: index.load(fromByteOffset: position + 8 * i, as: Int64.self)) }
        position += 8 * s
        documentIndices = (0..<d).map { i in Int64(littleEndian: index.load(fromByteOffset: position + 8 * i, as: Int64.self)) }

        var expectedOffset: Int64 = 0
        for i in 0..<s {
            guard sequenceLengths[i] >= 0 else { throw corrupt("sequence \(i) has negative length") }
            guard sequenceOffsets[i] == expectedOffset else {
                throw corrupt("sequence \(i) starts at byte \(sequenceOffsets[i]), expected \(expectedOffset)")
            }
            expectedOffset += Int64(sequenceLengths[i]) * Int64(dtype.size)
        }
        guard expectedOffset == Int64(bin.bytes.count) else {
            throw .corrupt(path: IndexedDatasetFormat.binPath(prefix), reason:
                "the index describes \(expectedOffset) bytes of tokens but the file has \(bin.bytes.count) (truncated?)")
        }
        guard d >= 1, documentIndices[0] == 0, documentIndices[d - 1] == Int64(s),
              zip(documentIndices, documentIndices.dropFirst()).allSatisfy({ $0 <= $1 }) else {
            throw corrupt("document boundaries must rise from 0 to the sequence count \(s)")
        }
        var hash = FNV1a.offset
        for length in sequenceLengths { hash = FNV1a.step(hash, word: UInt64(UInt32(bitPattern: length))) }
        for boundary in documentIndices { hash = FNV1a.step(hash, word: UInt64(bitPattern: boundary)) }
        indexDigest = FNV1a.hex(hash)
    }

    /// Number of sequences.
    public var sequenceCount: Int { sequenceLengths.count }
    /// Number of documents.
    public var documentCount: Int { documentIndices.count - 1 }
    /// Total tokens.
    public var tokenCount: Int { bin.bytes.count / dtype.size }

    /// Copies `count` tokens of sequence `sequence`, starting at token `offset`, into `output`.
    public func read(sequence: Int, offset: Int = 0, count: Int, into output: UnsafeMutablePointer<Int32>) {
        precondition(offset >= 0 && count >= 0 && offset + count <= Int(sequenceLengths[sequence]),
                     "read outside sequence \(sequence)")
        let base = Int(sequenceOffsets[sequence]) + offset * dtype.size
        let raw = bin.bytes
        switch dtype {
        case .uint16: for k in 0..<count { output[k] = Int32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: base + 2 * k, as: UInt16.self))) }
        case .int32: for k in 0..<count { output[k] = Int32(littleEndian: raw.loadUnaligned(fromByteOffset: base + 4 * k, as: Int32.self)) }
        case .int64: for k in 0..<count { output[k] = Int32(truncatingIfNeeded: Int64(littleEndian: raw.loadUnaligned(fromByteOffset: base + 8 * k, as: Int64.self))) }
        case .int16: for k in 0..<count { output[k] = Int32(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: base + 2 * k, as: Int16.self))) }
        case .uint8: for k in 0..<count { output[k] = Int32(raw[base + k]) }
        case .int8: for k in 0..<count { output[k] = Int32(Int8(bitPattern: raw[base + k])) }
        case .float32: for k in 0..<count { output[k] = Int32(raw.loadUnaligned(fromByteOffset: base + 4 * k, as: Float.self)) }
        case .float64: for k in 0..<count { output[k] = Int32(raw.loadUnaligned(fromByteOffset: base + 8 * k, as: Double.self)) }
        }
    }

    /// The tokens of one sequence (or part of it).
    public func tokens(ofSequence sequence: Int, offset: Int = 0, count: Int? = nil) -> [Int32] {
        let n = count ?? Int(sequenceLengths[sequence]) - offset
        return [Int32](unsafeUninitializedCapacity: n) { buffer, initialized in
            if n > 0 { read(sequence: sequence, offset: offset, count: n, into: buffer.baseAddress!) }
            initialized = n
        }
    }
}
