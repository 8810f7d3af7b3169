import FileSupport

/// One training sample: `tokens` are the inputs, `labels` the next tokens, `lossMask` 1 where the
/// label counts toward the loss.
public struct GPTSample: Sendable, Equatable {
    public var tokens: [Int32]
    public var labels: [Int32]
    public var lossMask: [Float]
}

/// How samples are cut from an indexed dataset (Megatron's GPTDatasetConfig).
public struct GPTDatasetConfig: Sendable {
    /// Tokens per sample (`--seq-length`).
    public var sequenceLength: Int
    /// `--seed`; every split and every dataset of a blend uses it, as in Megatron.
    public var seed: UInt32 = 1234
    /// `--split`.
    public var split: DataSplit
    /// The end-of-document token.
    public var endOfDocumentID: Int32
    /// Zero the loss where the input token is the end-of-document token (`--eod-mask-loss`).
    public var eodMaskLoss = false
    /// Pad id of the last partial validation sample (masked out; served as token 0).
    public var padID: Int32 = -1
    /// Samples read `sequenceLength + 1` tokens so the last label is real (Megatron's
    /// add_extra_token_to_sequence, on by default); off, the last label is padding and masked.
    public var addExtraToken = true
    /// Keep a short last validation sample, padded (Megatron's drop_last_partial_validation_sequence off).
    public var keepPartialValidationSample = false
    /// Where index caches go; nil means `PREFIX/cache/GPTDataset_indices` (Megatron's default).
    public var cacheDirectory: String?

    public init(sequenceLength: Int, split: DataSplit, endOfDocumentID: Int32) {
        self.sequenceLength = sequenceLength
        self.split = split
        self.endOfDocumentID = endOfDocumentID
    }
}

/// A split of an indexed dataset served as fixed-length GPT samples in Megatron's order.
/// The index arrays are cached on disk (`.npy` files named by a hash of their description) and
/// reused when the description matches.
public final class GPTDataset: @unchecked Sendable {
    public let dataset: IndexedDataset
    public let config: GPTDatasetConfig
    /// 0 train, 1 valid, 2 test.
    public let splitIndex: Int
    public let index: GPTSampleIndex
    /// Whether the indices were read from the cache rather than built.
    public let loadedFromCache: Bool

    /// Builds (or loads from the cache) the indices for split `splitIndex` with `sampleCount`
    /// samples (nil: one epoch).
    public init(dataset: IndexedDataset, config: GPTDatasetConfig, splitIndex: Int,
                sampleCount: Int?) throws(DatasetError) {
        self.dataset = dataset
        self.config = config
        self.splitIndex = splitIndex
        guard let range = config.split.ranges(count: dataset.sequenceCount)[splitIndex] else {
            throw .invalidArgument("--split \(config.split.text) gives the \(DataSplit.names[splitIndex]) split no data")
        }
        var parameters = GPTSampleIndex.Parameters(sequenceLength: config.sequenceLength,
                                                   sampleCount: sampleCount, seed: config.seed)
        parameters.dropLastPartialSequence = !(splitIndex == 1 && config.keepPartialValidationSample)
        parameters.addExtraToken = config.addExtraToken
        let description = Self.description(dataset: dataset, config: config, splitIndex: splitIndex,
                                           range: range, parameters: parameters)
        let cache = IndexCache(directory: config.cacheDirectory ?? dataset.prefix + "/cache/GPTDataset_indices",
                               name: "GPTDataset-\(DataSplit.names[splitIndex])", description: description)
        if let cached = GPTSampleIndex(cached: cache, sequenceCount: dataset.sequenceCount) {
            index = cached
            loadedFromCache = true
        } else {
            do {
                index = try GPTSampleIndex(lengths: dataset.sequenceLengths, split: range, parameters: parameters)
            } catch {
                throw .invalidArgument("\(dataset.prefix), \(DataSplit.names[splitIndex]) split: \(error)")
            }
            try index.store(in: cache)
            loadedFromCache = false
        }
    }

    /// What determines the indices; stored next to them and compared before reuse.
    static func description(dataset: IndexedDataset, config: GPTDatasetConfig, splitIndex: Int,
                            range: Range<Int>, parameters p: GPTSampleIndex.Parameters) -> String {
        """
        {
            "class": "GPTDataset",
            "dataset_path": \(JSONValue.string(dataset.prefix).serialized),
            "sequence_count": \(dataset.sequenceCount),
            "token_count": \(dataset.tokenCount),
            "index_digest": "\(dataset.indexDigest)",
            "index_split": "\(DataSplit.names[splitIndex])",
            "split": \(JSONValue.string(config.split.text).serialized),
            "split_range": [\(range.lowerBound), \(range.upperBound)],
            "num_samples": \(p.sampleCount.map(String.init) ?? "null"),
            "random_seed": \(p.seed),
            "sequence_length": \(p.sequenceLength),
            "add_extra_token_to_sequence": \(p.addExtraToken),
            "drop_last_partial_sequence": \(p.dropLastPartialSequence)
        }
        """
    }

    /// Number of samples.
    public var count: Int { index.count }

    /// Sample `i` (in served order).
    public func sample(_ i: Int) -> GPTSample {
        precondition(i >= 0 && i < count, "sample \(i) outside 0..<\(count)")
        let extra = config.addExtraToken ? 1 : 0
        let length = config.sequenceLength
        let row = Int(index.shuffleIndex[i])
        let (startPosition, startOffset) = index.start(ofRawSample: row)
        let (endPosition, endOffset) = index.start(ofRawSample: row + 1)
        var text = [Int32]()
        text.reserveCapacity(length + extra)
        for position in startPosition...endPosition {
            let sequence = Int(index.documentIndex[position])
            let from = position == startPosition ? startOffset : 0
            let to = position == endPosition ? endOffset + extra : Int(dataset.sequenceLengths[sequence])
            if to > from { text += dataset.tokens(ofSequence: sequence, offset: from, count: to - from) }
        }
        while text.count < length + 1 { text.append(config.padID) }  // short last sample, or no extra token
        var tokens = Array(text[0..<length])
        var labels = Array(text[1...length])
        var lossMask = [Float](repeating: 1, count: length)
        for k in 0..<length {
            if config.eodMaskLoss && tokens[k] == config.endOfDocumentID { lossMask[k] = 0 }
            if labels[k] == config.padID { lossMask[k] = 0; labels[k] = 0 }
            if tokens[k] == config.padID { tokens[k] = 0 }
        }
        return GPTSample(tokens: tokens, labels: labels, lossMask: lossMask)
    }
}
