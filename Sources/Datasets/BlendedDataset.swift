/// Anything that serves training samples by index, GPT's or BERT's.
public protocol TrainingSampleSource: AnyObject, Sendable {
    /// Number of samples.
    var count: Int { get }
    /// Appends sample `i` (`0 <= i < count`) to `batch`, setting its sequence length.
    func append(sample i: Int, to batch: inout MicroBatch)
}

/// Anything that serves GPT samples by index: one dataset split or a blend of several.
public protocol GPTSampleSource: TrainingSampleSource {
    /// Sample `i`, `0 <= i < count`.
    func sample(_ i: Int) -> GPTSample
}

extension GPTSampleSource {
    public func append(sample i: Int, to batch: inout MicroBatch) {
        let sample = sample(i)
        batch.sequenceLength = sample.tokens.count
        batch.tokens += sample.tokens
        batch.labels += sample.labels
        batch.lossMask += sample.lossMask
    }
}

extension GPTDataset: GPTSampleSource {}

/// Megatron's weighted blending (`--data-path 0.3 a 0.7 b`): sample i of the blend comes from
/// the dataset whose weight times i is furthest ahead of the samples it has given so far.
public enum Blending {
    /// Weights divided by their sum (numpy's summation order).
    public static func normalize(_ weights: [Double]) -> [Double] {
        let total = numpySum(weights)
        return weights.map { $0 / total }
    }

    /// For each of `size` samples, which dataset serves it and which of that dataset's samples.
    /// Greedy: dataset d maximising `w[d] * max(i, 1) - served[d]`, the first on ties.
    public static func indices(weights: [Double], size: Int) -> (dataset: [Int], sample: [Int]) {
        var served = [Int](repeating: 0, count: weights.count)
        var datasetIndex = [Int](repeating: 0, count: size)
        var sampleIndex = [Int](repeating: 0, count: size)
        for i in 0..<size {
            let x = max(Double(i), 1.0)
            var best = 0
            var bestError = weights[0] * x - Double(served[0])
            for d in 1..<weights.count {
                let error = weights[d] * x - Double(served[d])
                if error > bestError {
                    best = d
                    bestError = error
                }
            }
            datasetIndex[i] = best
            sampleIndex[i] = served[best]
            served[best] += 1
        }
        return (datasetIndex, sampleIndex)
    }

    /// `indices` for sources of `counts` samples; throws if one would be asked for more samples than it has.
    public static func checkedIndices(weights: [Double], size: Int, counts: [Int]) throws(DatasetError) -> (dataset: [Int], sample: [Int]) {
        let indices = indices(weights: weights, size: size)
        var needed = [Int](repeating: 0, count: counts.count)
        for (d, s) in zip(indices.dataset, indices.sample) { needed[d] = max(needed[d], s + 1) }
        for (d, count) in counts.enumerated() where needed[d] > count {
            throw .invalidArgument("blend dataset \(d) has \(count) samples but the blend needs \(needed[d])")
        }
        return indices
    }

    /// Samples each dataset must serve for a blend of `size` (`ceil(size * w)`), and the number
    /// each is built with (0.5% more, as Megatron's builder asks for).
    public static func sampleCounts(weights: [Double], size: Int) -> (target: [Int], buffer: [Int]) {
        let target = weights.map { Int((Double(size) * $0).rounded(.up)) }
        return (target, target.map { Int((Double($0) * 1.005).rounded(.up)) })
    }
}

/// A weighted blend of GPT datasets.
public final class BlendedGPTDataset: GPTSampleSource, @unchecked Sendable {
    public let datasets: [GPTSampleSource]
    public let weights: [Double]
    public let datasetIndex: [Int]
    public let datasetSampleIndex: [Int]

    /// Blends `datasets` with `weights` (normalised here) into `size` samples. Throws if a dataset
    /// would be asked for more samples than it has.
    public init(datasets: [GPTSampleSource], weights: [Double], size: Int) throws(DatasetError) {
        precondition(datasets.count == weights.count && !datasets.isEmpty)
        self.datasets = datasets
        self.weights = Blending.normalize(weights)
        (datasetIndex, datasetSampleIndex) = try Blending.checkedIndices(weights: self.weights, size: size,
                                                                         counts: datasets.map(\.count))
    }

    public var count: Int { datasetIndex.count }

    public func sample(_ i: Int) -> GPTSample {
        datasets[datasetIndex[i]].sample(datasetSampleIndex[i])
    }
}

/// A weighted blend of any training sources (BERT's datasets; GPT's have `BlendedGPTDataset`),
/// with Megatron's greedy blending order: sample `i` is sample `datasetSampleIndex[i]` of source
/// `datasetIndex[i]`.
public final class BlendedSampleSource: TrainingSampleSource, @unchecked Sendable {
    public let sources: [any TrainingSampleSource]
    public let datasetIndex: [Int]
    public let datasetSampleIndex: [Int]

    /// Blends `sources` with `weights` (normalised here) into `size` samples. Throws if a source
    /// would be asked for more samples than it has.
    public init(sources: [any TrainingSampleSource], weights: [Double], size: Int) throws(DatasetError) {
        precondition(sources.count == weights.count && !sources.isEmpty)
        self.sources = sources
        (datasetIndex, datasetSampleIndex) = try Blending.checkedIndices(weights: Blending.normalize(weights), size: size,
                                                                         counts: sources.map(\.count))
    }

    public var count: Int { datasetIndex.count }

    public func append(sample i: Int, to batch: inout MicroBatch) {
        sources[datasetIndex[i]].append(sample: datasetSampleIndex[i], to: &batch)
    }
}
