import FileSupport

/// The three index arrays that turn a split of an indexed dataset into fixed-length GPT samples,
/// built exactly as megatron-core's GPTDataset builds them (same seed, same arrays):
///
/// - `documentIndex`: the split's sequence ids repeated once per epoch and shuffled (the last
///   epoch shuffled separately when it is used for less than 80% of a pass);
/// - `sampleIndex`: for sample i, where it starts — a position in `documentIndex` and a token
///   offset; sample i ends where sample i+1 starts (plus the one extra label token);
/// - `shuffleIndex`: the order in which samples are served (shuffled, last epoch separately).
public struct GPTSampleIndex: Sendable, Equatable {
    public var documentIndex: [Int32]
    /// Flattened `[position, offset]` rows; there is one more row than samples.
    public var sampleIndex: [Int64]
    public var shuffleIndex: [Int64]

    /// Number of samples.
    public var count: Int { shuffleIndex.count }

    /// The parameters that determine the indices.
    public struct Parameters: Sendable {
        /// Tokens per sample (inputs; labels are shifted by one).
        public var sequenceLength: Int
        /// Samples wanted (more epochs are added until there are enough); nil for one epoch.
        public var sampleCount: Int?
        public var seed: UInt32
        /// Samples carry `sequenceLength + 1` tokens, so the last label is read, not padded.
        public var addExtraToken = true
        /// Drop the last partial sample instead of padding it.
        public var dropLastPartialSequence = true

        public init(sequenceLength: Int, sampleCount: Int?, seed: UInt32) {
            self.sequenceLength = sequenceLength
            self.sampleCount = sampleCount
            self.seed = seed
        }
    }

    /// Wraps existing arrays (from the cache).
    init(documentIndex: [Int32], sampleIndex: [Int64], shuffleIndex: [Int64]) {
        self.documentIndex = documentIndex
        self.sampleIndex = sampleIndex
        self.shuffleIndex = shuffleIndex
    }

    /// Whether every entry points inside the dataset and the other arrays (a cache file that
    /// fails this is rebuilt, never trusted).
    func isConsistent(sequenceCount: Int) -> Bool {
        let rows = sampleIndex.count / 2
        return sampleIndex.count % 2 == 0 && rows == shuffleIndex.count + 1
            && documentIndex.allSatisfy { $0 >= 0 && Int($0) < sequenceCount }
            && stride(from: 0, to: sampleIndex.count, by: 2).allSatisfy {
                sampleIndex[$0] >= 0 && sampleIndex[$0] < Int64(documentIndex.count) && sampleIndex[$0 + 1] >= -1
            }
            && shuffleIndex.allSatisfy { $0 >= 0 && $0 < Int64(rows - 1) }
    }

    /// Builds the indices over the sequences `split` of a dataset whose sequence lengths are
    /// `lengths`.
    public init(lengths: [Int32], split: Range<Int>, parameters p: Parameters) throws(DatasetError) {
        let extra = p.addExtraToken ? 1 : 0
        let sequenceLength = p.sequenceLength
        guard sequenceLength > 0 else { throw .invalidArgument("sequence length must be positive") }
        let tokensPerEpoch = split.reduce(0) { $0 + Int(lengths[$1]) }
        if p.sampleCount.map({ $0 > 0 }) ?? true, tokensPerEpoch <= extra {
            throw .invalidArgument("the split has \(tokensPerEpoch) tokens; cannot draw \(p.sampleCount.map(String.init) ?? "an epoch of") samples from it")
        }

        var epochs = 1
        if let wanted = p.sampleCount, wanted > 0 {
            // The fewest epochs whose tokens cover the wanted samples (plus the extra token).
            let needed = wanted.multipliedReportingOverflow(by: sequenceLength)
            guard !needed.overflow, needed.partialValue <= Int.max - extra else {
                throw .invalidArgument("\(wanted) samples of \(sequenceLength) tokens are too many to index")
            }
            let total = needed.partialValue + extra
            epochs = max(1, total / tokensPerEpoch + (total % tokensPerEpoch == 0 ? 0 : 1))
            // The document index lists the split's documents once per epoch (4 bytes each); the
            // sample and shuffle indices take 24 bytes per sample. More than the machine's memory
            // would fail in the allocator.
            let bytes = 4 * Double(epochs) * Double(split.count) + 24 * Double(wanted)
            let physical = SystemMemory.physicalBytes()
            guard physical <= 0 || bytes <= physical else {
                throw .invalidArgument("\(wanted) samples of \(sequenceLength) tokens need \(epochs) epochs over the split's "
                    + "\(tokensPerEpoch) tokens: their index would take \(SystemMemory.describe(bytes)), more than this "
                    + "machine's \(SystemMemory.describe(physical))")
            }
        }
        var samplesBeforeFinalEpoch = 0
        var separateFinalEpoch = false
        if epochs > 1, let wanted = p.sampleCount {
            samplesBeforeFinalEpoch = ((epochs - 1) * tokensPerEpoch - extra) / sequenceLength
            let fromFinalEpoch = wanted - samplesBeforeFinalEpoch
            let perEpoch = (tokensPerEpoch - extra) / sequenceLength
            separateFinalEpoch = fromFinalEpoch < Int(0.80 * Double(perEpoch))
        }

        var random = NumpyRandomState(seed: p.seed)
        let ids = split.map { Int32($0) }
        if separateFinalEpoch {
            var first = [Int32]()
            for _ in 0..<(epochs - 1) { first += ids }
            random.shuffle(&first)
            var last = ids
            random.shuffle(&last)
            documentIndex = first + last
        } else {
            var all = [Int32]()
            all.reserveCapacity(ids.count * epochs)
            for _ in 0..<epochs { all += ids }
            random.shuffle(&all)
            documentIndex = all
        }

        let available = epochs * tokensPerEpoch - extra
        let samples = p.dropLastPartialSequence
            ? available / sequenceLength
            : Int((Float(available) / Float(sequenceLength)).rounded(.up))  // float32, as helpers.cpp
        sampleIndex = Self.buildSampleIndex(lengths: lengths, documentIndex: documentIndex,
                                            sequenceLength: sequenceLength, samples: samples, extra: extra)

        if separateFinalEpoch {
            var first = (0..<Int64(samplesBeforeFinalEpoch)).map { $0 }
            random.shuffle(&first)
            var last = (Int64(samplesBeforeFinalEpoch)..<Int64(samples)).map { $0 }
            random.shuffle(&last)
            shuffleIndex = first + last
        } else {
            var all = (0..<Int64(samples)).map { $0 }
            random.shuffle(&all)
            shuffleIndex = all
        }
    }

    /// Walks the shuffled documents, cutting a sample every `sequenceLength` tokens.
    private static func buildSampleIndex(lengths: [Int32], documentIndex: [Int32], sequenceLength: Int,
                                         samples: Int, extra: Int) -> [Int64] {
        var rows = [Int64]()
        rows.reserveCapacity(2 * (samples + 1))
        rows += [0, 0]
        var position = 0
        var offset = 0
        for _ in 0..<samples {
            var remaining = sequenceLength + extra
            while remaining != 0 {
                let length = Int(lengths[Int(documentIndex[position])])
                let available = length - offset
                remaining -= available
                if remaining <= 0 {
                    offset += remaining + available - extra
                    remaining = 0
                } else if position == documentIndex.count - 1 {
                    offset = length - extra  // the last, partial sample (padded when served)
                    break
                } else {
                    position += 1
                    offset = 0
                }
            }
            rows += [Int64(position), Int64(offset)]
        }
        return rows
    }

    /// The position in `documentIndex` and token offset where raw sample `row` starts.
    @inline(__always)
    public func start(ofRawSample row: Int) -> (position: Int, offset: Int) {
        (Int(sampleIndex[2 * row]), Int(sampleIndex[2 * row + 1]))
    }
}
