/// One BERT training sample as megatron-core builds it (`BERTMaskedWordPieceDataset.__getitem__`
/// with `MaskedWordPieceDataset._create_masked_lm_predictions`), value for value, from a sample
/// of `BERTSampleIndex` and the same seed.
public struct BERTSample: Equatable, Sendable {
    /// `[CLS] A [SEP] B [SEP]` with masked tokens replaced, padded to the sequence length
    /// (padding as id 0).
    public var text: [Int64]
    /// Segment of each position: 0 for `[CLS] A [SEP]`, 1 for `B [SEP]`, the pad id past the end.
    public var types: [Int64]
    /// The original token at masked positions, -1 elsewhere.
    public var labels: [Int64]
    /// Whether A and B were swapped (the sentence-order target).
    public var isRandom: Bool
    /// 1 at real tokens, the pad id at padding.
    public var paddingMask: [Int64]
    /// 1 at masked positions.
    public var lossMask: [Int64]
    /// Whether A and B were cut to fit the target length.
    public var truncated: Bool
}

/// Builds `BERTSample`s (megatron-core's `BERTMaskedWordPieceDataset`): splits a sample's
/// sentences into segments A and B at a random pivot (with the classification head), swaps them
/// with probability 1/2, trims the longer one from a random end until they fit the target,
/// then masks n-grams of WordPiece candidates (whole words when `wholeWordMasking`): each chosen
/// token becomes `[MASK]` 80% of the time, a random vocabulary id 10%, itself 10%. All draws come
/// from numpy's `RandomState(seed + index)`, in megatron-core's order.
public struct BERTSampleBuilder: Sendable {
    /// Ids of `[CLS]`, `[SEP]`, `[MASK]` and `[PAD]`.
    public var cls: Int32, sep: Int32, mask: Int32, pad: Int32
    /// Per id, whether the token continues a word (`##...`).
    public var isContinuation: [Bool]
    /// Padded sample length (`--seq-length`).
    public var sequenceLength: Int
    /// `--seed`.
    public var seed: Int
    /// Whether samples carry the sentence-order task (two segments, at least two sentences).
    public var classificationHead: Bool
    /// Fraction of tokens masked (`--mask-prob`, 0.15).
    public var maskingProbability = 0.15
    /// Longest masked n-gram (megatron-core's `masking_max_ngram`); n is drawn with weights 1/n.
    public var maxNgram = 3
    /// Mask whole words (a word's `##` pieces with it).
    public var wholeWordMasking = true
    /// Weights n-grams as n instead of 1/n.
    public var longerNgrams = false

    public init(cls: Int32, sep: Int32, mask: Int32, pad: Int32, isContinuation: [Bool], sequenceLength: Int, seed: Int,
                classificationHead: Bool) {
        self.cls = cls
        self.sep = sep
        self.mask = mask
        self.pad = pad
        self.isContinuation = isContinuation
        self.sequenceLength = sequenceLength
        self.seed = seed
        self.classificationHead = classificationHead
    }

    /// Sample `index` of the dataset, made of `sentences` with `targetLength` (a
    /// `BERTSampleIndex.Sample`'s sentences and target).
    public func sample(index: Int, sentences: [[Int32]], targetLength: Int) -> BERTSample {
        var random = NumpyRandomState(seed: UInt32(truncatingIfNeeded: (seed + index) % (1 << 32)))
        var pivot = sentences.count
        var isRandom = false
        if classificationHead {
            precondition(sentences.count > 1, "BERTSampleBuilder: the sample must contain at least two sentences")
            pivot = sentences.count >= 3 ? random.randint(1, sentences.count) : 1
            isRandom = random.random() < 0.5
        }
        var a = Array(sentences[..<pivot].joined()), b = Array(sentences[pivot...].joined())
        if isRandom { swap(&a, &b) }
        let truncated = a.count + b.count > targetLength
        while a.count + b.count > targetLength {
            let first = random.random() < 0.5
            if a.count > b.count {
                if first { a.removeFirst() } else { a.removeLast() }
            } else {
                if first { b.removeFirst() } else { b.removeLast() }
            }
        }
        var tokens = [cls] + a + [sep]
        var types = [Int64](repeating: 0, count: a.count + 2)
        if !b.isEmpty {
            tokens += b + [sep]
            types += [Int64](repeating: 1, count: b.count + 1)
        }
        let (masked, positions, originals) = maskTokens(tokens, targetLength: targetLength, random: &random)
        precondition(masked.count <= sequenceLength, "BERTSampleBuilder: the sample is longer than the sequence length")
        let padding = sequenceLength - masked.count
        var text = masked.map(Int64.init) + [Int64](repeating: Int64(pad), count: padding)
        types += [Int64](repeating: Int64(pad), count: padding)
        let paddingMask = text.map { $0 == Int64(pad) ? Int64(pad) : 1 }
        var labels = [Int64](repeating: -1, count: sequenceLength)
        var lossMask = [Int64](repeating: 0, count: sequenceLength)
        for (position, original) in zip(positions, originals) {
            labels[position] = Int64(original)
            lossMask[position] = 1
        }
        for i in text.indices where text[i] == Int64(pad) { text[i] = 0 }
        for i in labels.indices where labels[i] == Int64(pad) { labels[i] = 0 }
        return BERTSample(text: text, types: types, labels: labels, isRandom: isRandom, paddingMask: paddingMask,
                          lossMask: lossMask, truncated: truncated)
    }

    /// The masked tokens and, by position, the masked positions and their original ids.
    private func maskTokens(_ tokens: [Int32], targetLength: Int, random: inout NumpyRandomState)
        -> (tokens: [Int32], positions: [Int], originals: [Int32]) {
        // Candidates: single positions, or whole words (a piece and its ## continuations).
        var candidates = [[Int]]()
        for (i, token) in tokens.enumerated() where token != cls && token != sep {
            if isContinuation[Int(token)] && wholeWordMasking && !candidates.isEmpty {
                candidates[candidates.count - 1].append(i)
            } else {
                candidates.append([i])
            }
        }
        let wanted = min(maskingProbability * Double(targetLength),
                         Double(max(1, Int((Double(tokens.count) * maskingProbability).rounded(.toNearestOrEven)))))
        // megatron-core normalizes the 1/n weights, then normalizes them again before each draw
        // (`nprobs[:n] / nprobs[:n].sum()`): both divisions kept, so the doubles are numpy's.
        var weights = (1...maxNgram).map { 1.0 / Double($0) }
        let total = weights.reduce(0, +)
        weights = weights.map { $0 / total }
        if longerNgrams { weights.reverse() }
        let sum = weights.reduce(0, +)
        let probabilities = weights.map { $0 / sum }

        var order = Array(candidates.indices)
        random.shuffle(&order)
        var output = tokens
        var masked = [(position: Int, original: Int32)]()
        var maskedPositions = Set<Int>()
        for start in order {
            if Double(masked.count) >= wanted { break }
            var n = random.choice(probabilities: probabilities) + 1
            var ngram = [Int]()
            var skip = false
            while true {
                ngram = Array(candidates[start..<min(start + n, candidates.count)].joined())
                n -= 1
                if wanted >= Double(masked.count + ngram.count) { break }
                if n == 0 { skip = true; break }
            }
            if skip || ngram.contains(where: maskedPositions.contains) { continue }
            for position in ngram {
                maskedPositions.insert(position)
                output[position] = replacement(for: tokens[position], random: &random)
                masked.append((position, tokens[position]))
            }
        }
        masked.sort { $0.position < $1.position }
        return (output, masked.map(\.position), masked.map(\.original))
    }

    /// `[MASK]` 80% of the time, a random id 10%, the token itself 10%.
    private func replacement(for token: Int32, random: inout NumpyRandomState) -> Int32 {
        if random.random() < 0.8 { return mask }
        if random.random() >= 0.5 { return Int32(random.randint(0, isContinuation.count)) }
        return token
    }
}
