import FileSupport

/// Index arrays cached on disk as `.npy` files named `HASH-NAME-KIND.npy`, with the description
/// they were built from in `HASH-NAME-description.txt` (megatron-core's cache layout; the hash
/// is our own, of our own description). The description file is written last, so a cache is used
/// only when it is complete and describes the same data and parameters.
struct IndexCache {
    let directory: String
    let name: String
    let description: String

    private var stem: String { "\(directory)/\(fnv1a64Hex(description))-\(name)" }

    /// The arrays of `kinds`, in that order, or nil when one is absent or unreadable or the
    /// stored description differs (they are then rebuilt).
    func load(_ kinds: [String]) -> [CachedArray]? {
        guard let stored = try? MappedFile.read(path: stem + "-description.txt"),
              String(decoding: stored, as: UTF8.self) == description else { return nil }
        var arrays = [CachedArray]()
        for kind in kinds {
            guard let array = NumpyArrayFile.read("\(stem)-\(kind).npy") else { return nil }
            arrays.append(CachedArray(kind: kind, values: array.values, shape: array.shape))
        }
        return arrays
    }

    /// Writes the arrays, then the description.
    func store(_ arrays: [CachedArray]) throws(DatasetError) {
        do { try Directory.create(directory) } catch { throw .io(error) }
        for array in arrays { try NumpyArrayFile.write(array.values, shape: array.shape, to: "\(stem)-\(array.kind).npy") }
        do { try AtomicFile.write(Array(description.utf8), to: stem + "-description.txt") } catch { throw .io(error) }
    }
}

/// One array of an `IndexCache`: its kind (the file name's last part), values and numpy shape.
struct CachedArray: Equatable {
    var kind: String
    var values: [Int64]
    var shape: [Int]
}

extension GPTSampleIndex {
    private static let cachedKinds = ["document_index", "sample_index", "shuffle_index"]

    /// The indices cached in `cache`, or nil when absent, stale, unreadable or inconsistent with
    /// a dataset of `sequenceCount` sequences.
    init?(cached cache: IndexCache, sequenceCount: Int) {
        guard let arrays = cache.load(Self.cachedKinds) else { return nil }
        let (documents, samples, shuffle) = (arrays[0], arrays[1], arrays[2])
        guard samples.shape.count == 2, samples.shape[1] == 2, shuffle.values.count == samples.shape[0] - 1 else { return nil }
        self.init(documentIndex: documents.values.map { Int32(truncatingIfNeeded: $0) }, sampleIndex: samples.values,
                  shuffleIndex: shuffle.values)
        guard isConsistent(sequenceCount: sequenceCount) else { return nil }
    }

    /// Writes the indices to `cache`.
    func store(in cache: IndexCache) throws(DatasetError) {
        try cache.store([
            CachedArray(kind: "document_index", values: documentIndex.map(Int64.init), shape: [documentIndex.count]),
            CachedArray(kind: "sample_index", values: sampleIndex, shape: [sampleIndex.count / 2, 2]),
            CachedArray(kind: "shuffle_index", values: shuffleIndex, shape: [shuffleIndex.count]),
        ])
    }
}

/// 64-bit FNV-1a of a string's UTF-8, as 16 hex digits.
func fnv1a64Hex(_ text: String) -> String { FNV1a.hex(FNV1a.hash(text.utf8)) }
