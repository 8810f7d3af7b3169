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

    /// Sentences longer than this exclude their document (megatron-core's `LONG_SENTENCE_LEN`).
    public static let longSentenceLength: Int32 = 512

    /// The mapping for documents `documentIndices` (`n + 1` bounds into the sentences, as an
    /// indexed dataset's `document_indices`) with `sentenceLengths`.
    public static func build(documentIndices: [Int64], sentenceLengths: [Int32], epochs: Int, maxSamples: UInt64,
                             maxSequenceLength: Int32, shortSequenceProbability: Double, seed: Int32,
                             minSentences: Int32) -> [Sample] {
        precondition(epochs > 0 && maxSequenceLength > 1 && seed > 0, "BERTSampleIndex: invalid arguments")
        precondition((0...1).contains(shortSequenceProbability), "BERTSampleIndex: probability outside [0, 1]")
        let shortRatio = shortSequenceProbability > 0 ? UInt64((1 / shortSequenceProbability).rounded()) : 0
        var random = MersenneTwister(seed: UInt32(seed))
        func targetLength() -> Int32 {
            guard shortRatio != 0 else { return maxSequenceLength }
            let number = UInt64(random.next32())
            return number % shortRatio == 0 ? Int32(2 + number % UInt64(maxSequenceLength - 1)) : maxSequenceLength
        }
        var samples = [Sample]()
        for _ in 0..<epochs {
            if UInt64(samples.count) >= maxSamples { break }
            for document in 0..<(documentIndices.count - 1) {
                let firstSentence = Int(documentIndices[document]), lastSentence = Int(documentIndices[document + 1])
                var remaining = lastSentence - firstSentence
                let hasLongSentence = remaining > 1
                    && sentenceLengths[firstSentence..<lastSentence].contains { $0 > longSentenceLength }
                guard remaining >= Int(minSentences) && !hasLongSentence else { continue }
                var start = firstSentence
                var tokens: Int32 = 0, taken: Int32 = 0
                var target = targetLength()
                for sentence in firstSentence..<lastSentence {
                    tokens += sentenceLengths[sentence]
                    taken += 1
                    remaining -= 1
                    if (tokens >= target && remaining > 1 && taken >= minSentences) || remaining == 0 {
                        samples.append(Sample(first: start, end: sentence + 1, targetLength: Int(target)))
                        start = sentence + 1
                        target = targetLength()
                        tokens = 0
                        taken = 0
                    }
                }
            }
        }
        var shuffle = MersenneTwister64(seed: UInt64(seed) + 1)
        var i = samples.count - 1
        while i > 0 {
            let j = Int(shuffle.next64() % UInt64(i + 1))
            samples.swapAt(i, j)
            i -= 1
        }
        return samples
    }
}
