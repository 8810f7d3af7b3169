/// Megatron's `--split` string ("969,30,1"): weights for the train, validation and test splits,
/// normalised and turned into contiguous ranges of a dataset's sequences.
public struct DataSplit: Sendable, Equatable {
    /// The three split names, in order.
    public static let names = ["train", "valid", "test"]
    /// The string as given (part of the index cache description).
    public let text: String
    /// Normalised weights (sum 1).
    public let weights: [Double]

    /// Parses the numbers of `text` (separated by anything but digits and dots); missing entries
    /// are 0. Throws if there is no positive weight or more than three.
    public init(_ text: String) throws(DatasetError) {
        var numbers = [Double]()
        var current = ""
        for character in text + "," {
            if character.isASCII && (character.isNumber || character == ".") {
                current.append(character)
            } else if !current.isEmpty {
                guard let value = Double(current) else { throw .invalidArgument("--split \(text): '\(current)' is not a number") }
                numbers.append(value)
                current = ""
            } else if character == "-" {
                throw .invalidArgument("--split \(text): weights must not be negative")
            }
        }
        guard !numbers.isEmpty, numbers.count <= 3 else {
            throw .invalidArgument("--split \(text): expected up to three weights such as 969,30,1")
        }
        while numbers.count < 3 { numbers.append(0) }
        let total = numpySum(numbers)
        guard total > 0 else { throw .invalidArgument("--split \(text): the weights sum to zero") }
        self.text = text
        weights = numbers.map { $0 / total }
    }

    /// The split giving split `index` (0 train, 1 valid, 2 test) every document: how a per-split
    /// path (`--train-data-path` and its siblings) is read.
    public static func whole(_ index: Int) -> DataSplit {
        var weights = [0.0, 0, 0]
        weights[index] = 1
        return DataSplit(text: weights.map { String(Int($0)) }.joined(separator: ","), weights: weights)
    }

    private init(text: String, weights: [Double]) {
        self.text = text
        self.weights = weights
    }

    /// `[lo, hi)` fractions of each split, nil where the split has no weight.
    public var bookends: [(Double, Double)?] {
        var low = 0.0
        return weights.map { weight in
            let high = low + weight
            defer { low = high }
            return high <= low ? nil : (low, high)
        }
    }

    /// The sequence ranges of the splits for a dataset of `count` sequences (Python's
    /// half-to-even rounding, as Megatron does). A split without weight is nil.
    public func ranges(count: Int) -> [Range<Int>?] {
        bookends.map { bookend in
            bookend.map { low, high in
                let begin = Int((low * Double(count)).rounded(.toNearestOrEven))
                let end = Int((high * Double(count)).rounded(.toNearestOrEven))
                return begin..<max(begin, end)
            }
        }
    }
}

/// `numpy.sum` of float64 values in numpy's order (pairwise with eight accumulators), so that
/// normalised weights match Megatron's to the last bit.
func numpySum(_ values: [Double]) -> Double {
    values.withUnsafeBufferPointer { pairwiseSum($0) }
}

private func pairwiseSum(_ a: UnsafeBufferPointer<Double>) -> Double {
    let n = a.count
    if n < 8 {
        var sum = -0.0
        for x in a { sum += x }
        return sum
    }
    if n <= 128 {
        var r = Array(a[0..<8])
        var i = 8
        while i + 8 <= n {
            for j in 0..<8 { r[j] += a[i + j] }
            i += 8
        }
        var sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n { sum += a[i]; i += 1 }
        return sum
    }
    let half = (n / 2) & ~7
    return pairwiseSum(UnsafeBufferPointer(rebasing: a[0..<half])) + pairwiseSum(UnsafeBufferPointer(rebasing: a[half..<n]))
}
