/// One split of a sentence-level indexed dataset served as BERT samples (megatron-core's
/// `BERTMaskedWordPieceDataset`): the split's documents by `--split`, the sample mapping over
/// them (`BERTSampleIndex`, as many epochs as `sampleCount` needs, or one, targets of
/// `seqLength - 3` tokens leaving room for `[CLS]` and two `[SEP]`), each sample built from its
/// sentences (`BERTSampleBuilder`, seeded by `--seed` and the sample's index).
///
/// The mapping is cached as megatron-core caches it: `HASH-BERTMaskedWordPieceDataset-SPLIT-`
/// `sample_index.npy` (`[samples, 3]`: first sentence, end sentence, target length) beside the
/// description it was built from, in `cacheDirectory` (`--data-cache-path`; by default
/// `PREFIX/cache/BERTMaskedWordPieceDataset_indices`), and read back when the description matches.
public final class BERTDataset: TrainingSampleSource {
    public let dataset: IndexedDataset
    public let samples: [BERTSampleIndex.Sample]
    public let builder: BERTSampleBuilder
    /// Whether the mapping was read from the cache rather than built.
    public let loadedFromCache: Bool

    /// The cache directory megatron-core uses for `dataset` when none is given.
    public static func defaultCacheDirectory(_ dataset: IndexedDataset) -> String {
        dataset.prefix + "/cache/BERTMaskedWordPieceDataset_indices"
    }

    /// The `splitIndex` split (0 train, 1 valid, 2 test) of `dataset` under `split`, with at
    /// least `sampleCount` samples (nil: one epoch, every sample its documents make once).
    /// Throws when the split holds no document that can make a sample (with the binary head, one
    /// of at least two sentences), or when the mapping built cannot be cached.
    public init(dataset: IndexedDataset, split: DataSplit, splitIndex: Int, sampleCount: Int?, builder: BERTSampleBuilder,
                shortSequenceProbability: Double, cacheDirectory: String? = nil) throws(DatasetError) {
        let name = DataSplit.names[splitIndex]
        guard let range = split.ranges(count: dataset.documentCount)[splitIndex], !range.isEmpty else {
            throw .invalidArgument("--split \(split.text) leaves the \(name) split of \(dataset.prefix) no documents")
        }
        guard builder.sequenceLength > 3 else {
            throw .invalidArgument("--seq-length \(builder.sequenceLength) leaves no room beside [CLS] and two [SEP]")
        }
        // A dataset preprocessed without --split-sentences has one sequence per document.
        if dataset.documentCount > 1 && zip(dataset.documentIndices, dataset.documentIndices.dropFirst()).allSatisfy({ $1 - $0 == 1 }) {
            throw .invalidArgument("\(dataset.prefix) holds one sequence per document, not sentences: BERT's data is preprocessed with --split-sentences")
        }
        let bounds = Array(dataset.documentIndices[range.lowerBound...range.upperBound])
        let minSentences = builder.classificationHead ? 2 : 1
        let usable = (0..<(bounds.count - 1)).contains { d in
            let sentences = Int(bounds[d])..<Int(bounds[d + 1])
            return sentences.count >= minSentences
                && (sentences.count == 1 || !dataset.sequenceLengths[sentences].contains { $0 > BERTSampleIndex.longSentenceLength })
        }
        guard usable else {
            throw .invalidArgument("the \(name) split of \(dataset.prefix) has no document of at least \(minSentences) "
                + "sentence(s) without one over \(BERTSampleIndex.longSentenceLength) tokens (was it preprocessed with --split-sentences?)")
        }
        self.dataset = dataset
        self.builder = builder
        let parameters = BERTSampleIndex.Parameters(
            epochs: sampleCount == nil ? 1 : Int(Int32.max) - 1, maxSamples: sampleCount.map(UInt64.init) ?? UInt64(Int64.max),
            maxSequenceLength: Int32(builder.sequenceLength - 3), shortSequenceProbability: shortSequenceProbability,
            seed: Int32(truncatingIfNeeded: builder.seed), minSentences: Int32(minSentences))
        let cache = IndexCache(directory: cacheDirectory ?? Self.defaultCacheDirectory(dataset),
                               name: "BERTMaskedWordPieceDataset-\(name)",
                               description: BERTSampleIndex.description(dataset: dataset, split: split, splitIndex: splitIndex,
                                                                        documents: range, parameters: parameters))
        if let cached = BERTSampleIndex.cached(in: cache, sentenceCount: dataset.sequenceCount) {
            samples = cached
            loadedFromCache = true
        } else {
            samples = BERTSampleIndex.build(documentIndices: bounds, sentenceLengths: dataset.sequenceLengths, parameters: parameters)
            try BERTSampleIndex.store(samples, in: cache)
            loadedFromCache = false
        }
    }

    public var count: Int { samples.count }

    /// Sample `i` as megatron-core builds it.
    public func sample(_ i: Int) -> BERTSample {
        let entry = samples[i]
        let sentences = (entry.first..<entry.end).map { dataset.tokens(ofSequence: $0) }
        return builder.sample(index: i, sentences: sentences, targetLength: entry.targetLength)
    }

    /// Appends sample `i`: labels only at masked positions (-100, the cross-entropy's ignore
    /// index, elsewhere), the tokens before the padding as its length, the sentence-order label
    /// (-100 without the binary head).
    public func append(sample i: Int, to batch: inout MicroBatch) {
        let sample = sample(i)
        batch.sequenceLength = sample.text.count
        batch.tokens += sample.text.map { Int32($0) }
        batch.labels += zip(sample.labels, sample.lossMask).map { $1 != 0 ? Int32($0) : -100 }
        batch.lossMask += sample.lossMask.map { Float($0) }
        var inputs = batch.bert ?? BERTInputs()
        inputs.tokenTypes += sample.types.map { Int32($0) }
        inputs.lengths.append(Int32((sample.paddingMask.lastIndex(of: 1) ?? 0) + 1))
        inputs.sequenceLabels.append(builder.classificationHead ? (sample.isRandom ? 1 : 0) : -100)
        batch.bert = inputs
    }
}
