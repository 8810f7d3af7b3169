import FileSupport

/// megatron-core's BERT sample mapping (`helpers.build_mapping`, under
/// `MaskedWordPieceDataset._build_sample_index`), value for value: which consecutive sentences
/// of a document make each sample, and the sample's target length.
///
/// Per epoch, documents in order; a document with fewer than `minSentences` sentences, or with a
/// sentence of more than 512 tokens (when it has more than one), gives no samples. Within a
/// document, sentences are taken until their tokens reach the target length (while more than one
/// sentence remains and at least `minSentences` were taken) or the document ends. The target is
/// `maxSequenceLength`, except with probability about `shortSequenceProbability` (one draw in
/// `round(1/p)` of an MT19937 seeded with `seed`) a length uniform in `2...maxSequenceLength`.
/// Epochs run until `maxSamples` is reached at an epoch's start; the samples are then shuffled by
/// Fisher-Yates with `std::mt19937_64(seed + 1)`.
public enum BERTSampleIndex {
    /// One sample: sentences `first ..< end` (indices into the dataset's sequences) and the
    /// target length of its token sequence.
    public struct Sample: Equatable, Sendable {
        public var first: Int
        public var end: Int
        public var targetLength: Int
    }

    /// What decides the mapping besides the data (`helpers.build_mapping`'s arguments).
    public struct Parameters: Sendable, Equatable {
        public var epochs: Int
        public var maxSamples: UInt64
        /// Target tokens of a sample's sentences (the sequence length less `[CLS]` and two `[SEP]`).
        public var maxSequenceLength: Int32
        public var shortSequenceProbability: Double
        public var seed: Int32
        /// Sentences a sample takes at least (2 with the binary head).
        public var minSentences: Int32

        public init(epochs: Int, maxSamples: UInt64, maxSequenceLength: Int32, shortSequenceProbability: Double, seed: Int32,
                    minSentences: Int32) {
            self.epochs = epochs
            self.maxSamples = maxSamples
            self.maxSequenceLength = maxSequenceLength
            self.shortSequenceProbability = shortSequenceProbability
            self.seed = seed
            self.minSentences = minSentences
        }
    }

    /// Sentences longer than this exclude their document (megatron-core's `LONG_SENTENCE_LEN`).
    public static let longSentenceLength: Int32 = 512

    /// The mapping for documents `documentIndices` (`n + 1` bounds into the sentences, as an
    /// indexed dataset's `document_indices`) with `sentenceLengths`.
    public static func build(documentIndices: [Int64], sentenceLengths: [Int32], parameters p: Parameters) -> [Sample] {
        precondition(p.epochs > 0 && p.maxSequenceLength > 1 && p.seed > 0, "BERTSampleIndex: invalid arguments")
        precondition((0...1).contains(p.shortSequenceProbability), "BERTSampleIndex: probability outside [0, 1]")
        let shortRatio = p.shortSequenceProbability > 0 ? UInt64((1 / p.shortSequenceProbability).rounded()) : 0
        var random = MersenneTwister(seed: UInt32(p.seed))
        func targetLength() -> Int32 {
            guard shortRatio != 0 else { return p.maxSequenceLength }
            let number = UInt64(random.next32())
            return number % shortRatio == 0 ? Int32(2 + number % UInt64(p.maxSequenceLength - 1)) : p.maxSequenceLength
        }
        var samples = [Sample]()
        for _ in 0..<p.epochs {
            if UInt64(samples.count) >= p.maxSamples { break }
            for document in 0..<(documentIndices.count - 1) {
                let firstSentence = Int(documentIndices[document]), lastSentence = Int(documentIndices[document + 1])
                var remaining = lastSentence - firstSentence
                let hasLongSentence = remaining > 1
                    && sentenceLengths[firstSentence..<lastSentence].contains { $0 > longSentenceLength }
                guard remaining >= Int(p.minSentences) && !hasLongSentence else { continue }
                var start = firstSentence
                var tokens: Int32 = 0, taken: Int32 = 0
                var target = targetLength()
                for sentence in firstSentence..<lastSentence {
                    tokens += sentenceLengths[sentence]
                    taken += 1
                    remaining -= 1
                    if (tokens >= target && remaining > 1 && taken >= p.minSentences) || remaining == 0 {
                        samples.append(Sample(first: start, end: sentence + 1, targetLength: Int(target)))
                        start = sentence + 1
                        target = targetLength()
                        tokens = 0
                        taken = 0
                    }
                }
            }
        }
        var shuffle = MersenneTwister64(seed: UInt64(p.seed) + 1)
        var i = samples.count - 1
        while i > 0 {
            let j = Int(shuffle.next64() % UInt64(i + 1))
            samples.swapAt(i, j)
            i -= 1
        }
        return samples
    }
}

extension BERTSampleIndex {
    /// What determines a split's mapping; stored beside the cached mapping and compared before reuse.
    static func description(dataset: IndexedDataset, split: DataSplit, splitIndex: Int, documents: Range<Int>,
                            parameters p: Parameters) -> String {
        """
        {
            "class": "BERTMaskedWordPieceDataset",
            "dataset_path": \(JSONValue.string(dataset.prefix).serialized),
            "document_count": \(dataset.documentCount),
            "sequence_count": \(dataset.sequenceCount),
            "token_count": \(dataset.tokenCount),
            "index_digest": "\(dataset.indexDigest)",
            "index_split": "\(DataSplit.names[splitIndex])",
            "split": \(JSONValue.string(split.text).serialized),
            "split_range": [\(documents.lowerBound), \(documents.upperBound)],
            "num_epochs": \(p.epochs),
            "num_samples": \(p.maxSamples),
            "max_sequence_length": \(p.maxSequenceLength),
            "short_sequence_probability": \(p.shortSequenceProbability),
            "random_seed": \(p.seed),
            "min_sentences_per_sample": \(p.minSentences)
        }
        """
    }

    /// The mapping cached in `cache` (`sample_index`, `[samples, 3]`), or nil when absent, stale,
    /// unreadable or not a mapping of a dataset of `sentenceCount` sentences.
    static func cached(in cache: IndexCache, sentenceCount: Int) -> [Sample]? {
        guard let array = cache.load(["sample_index"])?.first, array.shape.count == 2, array.shape[1] == 3,
              array.values.count == array.shape[0] * 3 else { return nil }
        var samples = [Sample]()
        samples.reserveCapacity(array.shape[0])
        for row in 0..<array.shape[0] {
            let first = Int(array.values[3 * row]), end = Int(array.values[3 * row + 1]), target = Int(array.values[3 * row + 2])
            guard 0 <= first && first < end && end <= sentenceCount && target > 0 else { return nil }
            samples.append(Sample(first: first, end: end, targetLength: target))
        }
        return samples
    }

    /// Writes `samples` to `cache` as megatron-core's `sample_index` array.
    static func store(_ samples: [Sample], in cache: IndexCache) throws(DatasetError) {
        let values = samples.flatMap { [Int64($0.first), Int64($0.end), Int64($0.targetLength)] }
        try cache.store([CachedArray(kind: "sample_index", values: values, shape: [samples.count, 3])])
    }
}
