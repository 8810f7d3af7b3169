#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Foundation
import Datasets
import FileSupport

/// The quality classifier of GPT-3 (Brown et al. 2020, appendix A) and MT-NLG: logistic
/// regression on hashed word n-gram features, trained to tell a high-quality reference corpus
/// (positive) from raw web text (negative); a document's score is its probability of being
/// positive.
///
/// Features: the text normalised (`TextNormalizer`: NFC, single spaces) and lower-cased, its words
/// and consecutive word pairs, each counted in bucket `FNV-1a-64(UTF-8) mod buckets`, the count
/// vector scaled to unit L2 norm. The model minimises scikit-learn's `LogisticRegression` objective
/// (`0.5 |w|^2 + C sum log-loss`, intercept not penalised) by full-batch Adam.
public struct QualityClassifier: Codable, Equatable, Sendable {
    public var buckets: Int
    /// Largest n of the word n-grams (1: words, 2: words and pairs).
    public var ngrams: Int
    public var weights: [Float]
    public var bias: Float

    public init(buckets: Int = 1 << 18, ngrams: Int = 2) {
        self.buckets = buckets
        self.ngrams = ngrams
        weights = [Float](repeating: 0, count: buckets)
        bias = 0
    }

    /// A document's sparse feature vector: (bucket, value) pairs, buckets ascending.
    public func features(_ text: String) -> [(Int, Float)] {
        let words = String(decoding: TextNormalizer.normalizedUTF8(text), as: UTF8.self).lowercased()
            .split(separator: " ").map { Array($0.utf8) }
        var counts = [Int: Float]()
        for n in 1...max(1, ngrams) where words.count >= n {
            for start in 0...(words.count - n) {
                // The hash of the n-gram's words joined by single spaces.
                var hash = FNV1a.offset
                for (k, word) in words[start..<(start + n)].enumerated() {
                    if k > 0 { hash = FNV1a.step(hash, 0x20) }
                    hash = word.reduce(hash, FNV1a.step)
                }
                counts[Int(hash % UInt64(buckets)), default: 0] += 1
            }
        }
        let norm = counts.values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return counts.sorted { $0.key < $1.key }.map { ($0.key, norm > 0 ? $0.value / norm : 0) }
    }

    /// The probability that `text` is of the positive (high-quality) kind.
    public func score(_ text: String) -> Double { score(features(text)) }

    func score(_ features: [(Int, Float)]) -> Double {
        var z = Double(bias)
        for (bucket, value) in features { z += Double(weights[bucket]) * Double(value) }
        return 1 / (1 + exp(-z))
    }

    /// Trains on labelled feature vectors (label true: positive) with inverse regularisation
    /// strength `c` for `iterations` full-batch Adam steps.
    public mutating func train(_ examples: [(features: [(Int, Float)], positive: Bool)], c: Double = 1, iterations: Int = 400,
                               learningRate: Double = 0.05) {
        var w = [Double](repeating: 0, count: buckets), b = 0.0
        var m = [Double](repeating: 0, count: buckets), v = [Double](repeating: 0, count: buckets)
        var mb = 0.0, vb = 0.0
        let beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8
        var gradient = [Double](repeating: 0, count: buckets)
        for step in 1...iterations {
            // Gradient of 0.5 |w|^2 + c sum log-loss.
            for i in 0..<buckets { gradient[i] = w[i] }
            var gb = 0.0
            for example in examples {
                var z = b
                for (bucket, value) in example.features { z += w[bucket] * Double(value) }
                let error = c * (1 / (1 + exp(-z)) - (example.positive ? 1 : 0))
                gb += error
                for (bucket, value) in example.features { gradient[bucket] += error * Double(value) }
            }
            let correction1 = 1 - pow(beta1, Double(step)), correction2 = 1 - pow(beta2, Double(step))
            for i in 0..<buckets where gradient[i] != 0 || m[i] != 0 {
                m[i] = beta1 * m[i] + (1 - beta1) * gradient[i]
                v[i] = beta2 * v[i] + (1 - beta2) * gradient[i] * gradient[i]
                w[i] -= learningRate * (m[i] / correction1) / ((v[i] / correction2).squareRoot() + epsilon)
            }
            mb = beta1 * mb + (1 - beta1) * gb
            vb = beta2 * vb + (1 - beta2) * gb * gb
            b -= learningRate * (mb / correction1) / ((vb / correction2).squareRoot() + epsilon)
        }
        weights = w.map { Float($0) }
        bias = Float(b)
    }

    /// Saves the model as JSON, atomically.
    public func save(to path: String) throws(CurationError) {
        let encoder = JSONEncoder()
        do {
            try AtomicFile.write(Array(try encoder.encode(self)), to: path)
        } catch let error as FileError {
            throw CurationError("\(error)")
        } catch {
            throw CurationError("\(path): \(error)")
        }
    }

    /// The largest n-gram order a classifier may use (`curate train-classifier --ngrams`).
    public static let maximumNGrams = 5

    public static func load(from path: String) throws(CurationError) -> QualityClassifier {
        do {
            let model = try JSONDecoder().decode(QualityClassifier.self, from: Data(try MappedFile.read(path: path)))
            guard model.buckets >= 1, model.weights.count == model.buckets else {
                throw CurationError("\(path): not a quality classifier (\(model.weights.count) weights for \(model.buckets) buckets)")
            }
            guard (1...maximumNGrams).contains(model.ngrams) else {
                throw CurationError("\(path): not a quality classifier (ngrams \(model.ngrams), expected 1...\(maximumNGrams))")
            }
            guard model.weights.allSatisfy(\.isFinite), model.bias.isFinite else {
                throw CurationError("\(path): not a quality classifier (a weight is not a finite number)")
            }
            return model
        } catch let error as CurationError {
            throw error
        } catch {
            throw CurationError("\(path): not a quality classifier: \(JSONDecoding.describe(error))")
        }
    }
}

/// numpy's legacy `RandomState.pareto(a)`, for GPT-3's document sampling: a document of score s is
/// kept when `pareto(alpha) > 1 - s` (alpha 9 in GPT-3).
public struct ParetoSampler {
    private var random: Datasets.NumpyRandomState

    public init(seed: UInt32) { random = Datasets.NumpyRandomState(seed: seed) }

    /// `random_sample()`: 53 random bits from two 32-bit draws.
    mutating func uniform() -> Double {
        let a = Double(random.next32() >> 5), b = Double(random.next32() >> 6)
        return (a * 67_108_864 + b) / 9_007_199_254_740_992
    }

    /// `pareto(alpha) = exp(standard_exponential() / alpha) - 1`, `standard_exponential() = -log(1 - U)`.
    public mutating func pareto(_ alpha: Double) -> Double {
        exp(-log(1 - uniform()) / alpha) - 1
    }

    /// GPT-3's rule for a document of score `score`.
    public mutating func keeps(score: Double, alpha: Double) -> Bool { pareto(alpha) > 1 - score }
}
