/// Megatron's `--data-path` argument: one prefix, weight-prefix pairs (`0.3 a 0.7 b`), or several
/// prefixes without weights (blended in proportion to their sizes).
public struct DataPath: Sendable, Equatable {
    init(prefixes: [String], weights: [Double]?) {
        self.prefixes = prefixes
        self.weights = weights
    }

    public var prefixes: [String]
    /// One weight per prefix, or nil when none were given.
    public var weights: [Double]?

    /// Parses the words of `--data-path`.
    public init(_ words: [String]) throws(DatasetError) {
        guard !words.isEmpty else { throw .invalidArgument("--data-path needs at least one dataset prefix") }
        let weightsGiven = words.count >= 2 && words.count % 2 == 0 && Double(words[0]) != nil
        if words.count % 2 == 1 && words.count > 1 && Double(words[0]) != nil {
            // A weight first means "WEIGHT PREFIX" pairs; an odd count lacks one of them.
            throw .invalidArgument("--data-path: \(words.count) words starting with a weight: give WEIGHT PREFIX pairs "
                + "(one is missing) or prefixes alone")
        }
        if !weightsGiven {
            prefixes = words
            weights = nil
            return
        }
        var prefixes = [String](), weights = [Double]()
        for pair in stride(from: 0, to: words.count, by: 2) {
            guard let weight = Double(words[pair]), weight >= 0, weight.isFinite else {
                throw .invalidArgument("--data-path: '\(words[pair])' should be a non-negative weight before \(words[pair + 1])")
            }
            weights.append(weight)
            prefixes.append(words[pair + 1])
        }
        guard weights.contains(where: { $0 > 0 }) else { throw .invalidArgument("--data-path: all weights are zero") }
        self.prefixes = prefixes
        self.weights = weights
    }
}

/// Builds the train, validation and test sample sources from `--data-path`, `--split` and the
/// number of samples each split must serve, the way Megatron's BlendedMegatronDatasetBuilder does.
public enum GPTDataBuilder {
    /// One source per split (`sizes[s] == nil`: that split is not built).
    public static func build(dataPath: DataPath, config: GPTDatasetConfig,
                             sizes: [Int?]) throws(DatasetError) -> [GPTSampleSource?] {
        precondition(sizes.count == 3)
        var opened = [IndexedDataset]()
        for prefix in dataPath.prefixes { opened.append(try IndexedDataset(prefix: prefix)) }
        var sources = [GPTSampleSource?]()
        for (split, size) in sizes.enumerated() {
            guard let size, config.split.bookends[split] != nil else {
                sources.append(nil)  // not asked for, or no weight in --split (Megatron skips it)
                continue
            }
            if opened.count == 1 {
                sources.append(try GPTDataset(dataset: opened[0], config: config, splitIndex: split, sampleCount: size))
            } else if let weights = dataPath.weights {
                let normalized = Blending.normalize(weights)
                let (target, buffer) = Blending.sampleCounts(weights: normalized, size: size)
                var parts = [GPTSampleSource]()
                for (dataset, count) in zip(opened, buffer) {
                    parts.append(try GPTDataset(dataset: dataset, config: config, splitIndex: split, sampleCount: count))
                }
                sources.append(try BlendedGPTDataset(datasets: parts, weights: normalized, size: target.reduce(0, +)))
            } else {
                var parts = [GPTSampleSource]()
                for dataset in opened {
                    parts.append(try GPTDataset(dataset: dataset, config: config, splitIndex: split, sampleCount: nil))
                }
                let total = parts.reduce(0) { $0 + $1.count }
                sources.append(try BlendedGPTDataset(datasets: parts, weights: parts.map { Double($0.count) },
                                                     size: min(size, total)))
            }
        }
        return sources
    }
}

extension GPTDataBuilder {
    /// Megatron's per-split blends (`--train-data-path`, `--valid-data-path`, `--test-data-path`):
    /// split `s` is built from `paths[s]` alone with every document in it, as megatron-core's
    /// builder does with `blend_per_split` (a split of weight one for that split and none for the
    /// others). `paths[s] == nil` or `sizes[s] == nil`: that split is not built.
    public static func build(perSplit paths: [DataPath?], config: GPTDatasetConfig,
                             sizes: [Int?]) throws(DatasetError) -> [GPTSampleSource?] {
        precondition(paths.count == 3 && sizes.count == 3)
        return try DataPath.buildPerSplit(paths, sizes: sizes) { path, split, only throws(DatasetError) in
            var whole = config
            whole.split = split
            return try build(dataPath: path, config: whole, sizes: only)
        }
    }
}

extension DataPath {
    /// Builds each split `s` that has a path and a size from `paths[s]` alone: `build` gets the
    /// path, a `--split` giving split `s` all the weight, and the sizes with every other split's
    /// nil, and its source `s` is kept (megatron-core's `blend_per_split`). The others are nil.
    public static func buildPerSplit<Source, E: Error>(
        _ paths: [DataPath?], sizes: [Int?], _ build: (DataPath, DataSplit, [Int?]) throws(E) -> [Source?]
    ) throws(E) -> [Source?] {
        var sources = [Source?]()
        for (split, size) in sizes.enumerated() {
            guard let path = paths[split], let size else {
                sources.append(nil)
                continue
            }
            var only = [Int?](repeating: nil, count: sizes.count)
            only[split] = size
            sources.append(try build(path, DataSplit.whole(split), only)[split])
        }
        return sources
    }
}

/// A micro-batch: `batchSize` samples of `sequenceLength` tokens, row-major.
public struct MicroBatch: Sendable, Equatable {
    public var batchSize: Int
    public var sequenceLength: Int
    public var tokens: [Int32]
    public var labels: [Int32]
    public var lossMask: [Float]
    /// The index of its first sample in the order the run consumes samples (the next ones
    /// follow): what names a sample for dropout, the same whichever rank trains on it.
    public var firstSample: Int
    /// A BERT micro-batch's segment ids, lengths before padding and sentence-order labels (nil for GPT).
    public var bert: BERTInputs?

    /// A micro-batch of `batchSize` sequences of `sequenceLength` tokens, labels and loss weights.
    public init(batchSize: Int, sequenceLength: Int, tokens: [Int32], labels: [Int32], lossMask: [Float], firstSample: Int = 0,
                bert: BERTInputs? = nil) {
        self.batchSize = batchSize
        self.sequenceLength = sequenceLength
        self.tokens = tokens
        self.labels = labels
        self.lossMask = lossMask
        self.firstSample = firstSample
        self.bert = bert
    }
}

/// What a BERT micro-batch carries beyond tokens, labels and loss mask.
public struct BERTInputs: Sendable, Equatable {
    /// `[batch, seqLength]` segment ids (0: `[CLS] A [SEP]`, 1: `B [SEP]`, 0 at padding).
    public var tokenTypes: [Int32] = []
    /// `[batch]` tokens before each sequence's padding.
    public var lengths: [Int32] = []
    /// `[batch]` 1 when the segments were swapped, 0 when in order (-100 without the binary head).
    public var sequenceLabels: [Int32] = []

    public init(tokenTypes: [Int32] = [], lengths: [Int32] = [], sequenceLabels: [Int32] = []) {
        self.tokenTypes = tokenTypes
        self.lengths = lengths
        self.sequenceLabels = sequenceLabels
    }
}

/// Serves consecutive samples of a source as micro-batches, starting after the samples already
/// consumed (Megatron's pretraining sampler: all shuffling is inside the dataset indices).
public struct MicroBatchLoader {
    public let source: any TrainingSampleSource
    public let microBatchSize: Int
    /// Samples served so far (including those consumed before a resume).
    public private(set) var consumedSamples: Int

    public init(source: any TrainingSampleSource, microBatchSize: Int, consumedSamples: Int = 0) {
        self.source = source
        self.microBatchSize = microBatchSize
        self.consumedSamples = consumedSamples
    }

    /// The next micro-batch, or nil when fewer than `microBatchSize` samples are left.
    public mutating func next() -> MicroBatch? {
        guard consumedSamples + microBatchSize <= source.count else { return nil }
        var batch = MicroBatch(batchSize: microBatchSize, sequenceLength: 0, tokens: [], labels: [], lossMask: [],
                               firstSample: consumedSamples)
        for i in consumedSamples..<(consumedSamples + microBatchSize) { source.append(sample: i, to: &batch) }
        consumedSamples += microBatchSize
        return batch
    }
}
