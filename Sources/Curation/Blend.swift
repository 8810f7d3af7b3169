#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Foundation
import Datasets

/// MT-NLG's dataset blend (Smith et al. 2022, table 2): each dataset's share of the training
/// samples, given directly as a weight or as the epochs over its tokens, printed as Megatron's
/// `--data-path` string (the prefixes must hold no whitespace).
public struct Blend: Sendable {
    public struct Entry: Sendable {
        public var name: String
        /// The indexed dataset's prefix (`PREFIX.bin/.idx`).
        public var prefix: String
        public var tokens: Int
        /// The share of samples, normalised over the blend.
        public var weight: Double
    }

    public let entries: [Entry]

    /// Checks how the blend is given, before any data exists: each dataset has one non-negative
    /// weight or epochs, weights mixed with epochs come with `trainTokens`, and the weights are
    /// not all zero.
    public static func checkSpecification(_ datasets: [(name: String, weight: Double?, epochs: Double?)],
                                          trainTokens: Int?) throws(CurationError) {
        for dataset in datasets {
            switch (dataset.weight, dataset.epochs) {
            case let (weight?, nil) where weight >= 0 && weight.isFinite: continue
            case let (nil, epochs?) where epochs >= 0 && epochs.isFinite: continue
            default: throw CurationError("dataset \(dataset.name): give one non-negative weight or epochs")
            }
        }
        let mixed = datasets.contains { $0.weight != nil } && datasets.contains { $0.epochs != nil }
        if mixed && trainTokens == nil {
            throw CurationError("datasets given by weight and by epochs together need train_tokens (to turn epochs into a share)")
        }
        if datasets.allSatisfy({ ($0.weight ?? $0.epochs!) == 0 }) { throw CurationError("the blend's weights are all zero") }
    }

    /// Each dataset with either a weight (its share of the training samples) or epochs (passes
    /// over its tokens: a share of `epochs x tokens / trainTokens`); the shares are then
    /// normalised to sum to one. Epochs alone need no `trainTokens` (the shares are proportional
    /// to `epochs x tokens`); weights mixed with epochs do.
    public init(_ datasets: [(name: String, prefix: String, tokens: Int, weight: Double?, epochs: Double?)],
                trainTokens: Int? = nil) throws(CurationError) {
        try Self.checkSpecification(datasets.map { ($0.name, $0.weight, $0.epochs) }, trainTokens: trainTokens)
        let mixed = datasets.contains { $0.weight != nil } && datasets.contains { $0.epochs != nil }
        let raw = datasets.map { dataset in
            dataset.weight ?? dataset.epochs! * Double(dataset.tokens) / Double(mixed ? max(1, trainTokens!) : 1)
        }
        // A dataset drawn from must have something to draw: Megatron's blend would fail at training.
        if let empty = zip(datasets, raw).first(where: { $0.0.tokens == 0 && $0.1 > 0 })?.0 {
            throw CurationError("dataset \(empty.name) has no tokens (none left after curation?) but a share of the blend; "
                + "give it weight 0, leave it out, or loosen the steps that removed its documents")
        }
        let total = raw.reduce(0, +)
        guard total > 0 else { throw CurationError("the blend's weights are all zero") }
        entries = zip(datasets, raw).map { Entry(name: $0.name, prefix: $0.prefix, tokens: $0.tokens, weight: $1 / total) }
    }

    /// `--data-path W1 PREFIX1 W2 PREFIX2 ...`, the weights with 6 significant digits.
    public var dataPath: String {
        entries.map { String(format: "%.6g", $0.weight) + " " + $0.prefix }.joined(separator: " ")
    }

    /// The epochs each dataset is seen for in a run of `trainTokens` tokens.
    public func epochs(trainTokens: Int) -> [Double] {
        entries.map { $0.tokens > 0 ? $0.weight * Double(trainTokens) / Double($0.tokens) : 0 }
    }

    /// Reads `dataPath` back as `train` will (`DataPath`, then Megatron's per-dataset sample
    /// counts for `samples` training samples) and returns each dataset's share of them.
    public func checkedShares(samples: Int) throws(CurationError) -> [Double] {
        let words = dataPath.split(separator: " ").map(String.init)
        let parsed: DataPath
        do { parsed = try DataPath(words) } catch { throw CurationError("the blend's --data-path does not parse: \(error)") }
        guard parsed.prefixes == entries.map(\.prefix), let weights = parsed.weights else {
            throw CurationError("the blend's --data-path reads back as other datasets")
        }
        let (target, _) = Blending.sampleCounts(weights: Blending.normalize(weights), size: samples)
        return target.map { Double($0) / Double(samples) }
    }
}
