import FileSupport

/// Index arrays cached on disk as `.npy` files named `HASH-NAME-KIND.npy`, with the description
/// they were built from in `HASH-NAME-description.txt`. The description file is written last,
/// so a cache is used only when it is complete and describes the same data and parameters.
struct IndexCache {
    let directory: String
    let name: String
    let description: String

    private var stem: String { "\(directory)/\(fnv1a64Hex(description))-\(name)" }

    /// The cached indices, or nil when absent, stale or unreadable (they are then rebuilt).
    func load(sequenceCount: Int) -> GPTSampleIndex? {
        guard let stored = try? MappedFile.read(path: stem + "-description.txt"),
              String(decoding: stored, as: UTF8.self) == description,
              let documents = NumpyArrayFile.read(stem + "-document_index.npy"),
              let samples = NumpyArrayFile.read(stem + "-sample_index.npy"),
              let shuffle = NumpyArrayFile.read(stem + "-shuffle_index.npy"),
              samples.shape.count == 2, samples.shape[1] == 2,
              shuffle.values.count == samples.shape[0] - 1 else { return nil }
        let index = GPTSampleIndex(documentIndex: documents.values.map { Int32(truncatingIfNeeded: $0) },
                                   sampleIndex: samples.values, shuffleIndex: shuffle.values)
        return index.isConsistent(sequenceCount: sequenceCount) ? index : nil
    }

    /// Writes the indices, then the description.
    func store(_ index: GPTSampleIndex) throws(DatasetError) {
        do { try Directory.create(directory) } catch { throw .io(error) }
        try NumpyArrayFile.write(index.documentIndex.map(Int64.init), shape: [index.documentIndex.count],
                                 to: stem + "-document_index.npy")
        try NumpyArrayFile.write(index.sampleIndex, shape: [index.sampleIndex.count / 2, 2],
                                 to: stem + "-sample_index.npy")
        try NumpyArrayFile.write(index.shuffleIndex, shape: [index.shuffleIndex.count],
                                 to: stem + "-shuffle_index.npy")
        do { try AtomicFile.write(Array(description.utf8), to: stem + "-description.txt") } catch { throw .io(error) }
    }
}

/// 64-bit FNV-1a of a string's UTF-8, as 16 hex digits.
func fnv1a64Hex(_ text: String) -> String {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}
