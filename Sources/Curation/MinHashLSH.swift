/// Near-duplicate clusters from MinHash signatures by LSH banding (Leskovec, Rajaraman and
/// Ullman, Mining of Massive Datasets, ch. 3): the signature is cut into `bands` bands of `rows`
/// values; documents equal in any band are candidates, a candidate pair whose signatures agree
/// on at least `threshold` of their values (the Jaccard estimate) is joined, and the clusters are
/// the connected components. Documents are added in priority order; one that joins an earlier
/// cluster is a duplicate (a document kept earlier stays kept even if a later one links its
/// cluster to another). Each bucket keeps one member per cluster, so a new document is compared
/// with that member only.
///
/// Memory grows with the documents: their signatures (4 bytes per permutation) and one bucket
/// entry per band (about 12 bytes each).
public struct MinHashLSH {
    public let permutations: MinHashPermutations
    public let bands: Int
    public let rows: Int
    /// The estimated Jaccard similarity a candidate pair must reach (nil: every candidate joins).
    public let verificationThreshold: Double?

    private var signatures: [UInt32] = []
    /// Per band, the documents in each bucket (by a 64-bit hash of the band's values).
    private var buckets: [[UInt64: [Int32]]]
    /// Union-find parents; a root is its cluster's first (kept) document.
    private var parent: [Int32] = []
    /// For each document joined to a cluster: the document it matched and their Jaccard estimate.
    public private(set) var matches: [Int: (document: Int, jaccard: Double)] = [:]

    public init(permutations: MinHashPermutations, bands: Int, rows: Int, verificationThreshold: Double?) {
        precondition(bands >= 1 && rows >= 1 && bands * rows <= permutations.count)
        self.permutations = permutations
        self.bands = bands
        self.rows = rows
        self.verificationThreshold = verificationThreshold
        buckets = Array(repeating: [:], count: bands)
    }

    public var count: Int { parent.count }

    /// The bands and rows that minimise the weighted false-positive and false-negative areas under
    /// the LSH S-curve for `threshold` (datasketch's `_optimal_param`, its integrals computed with
    /// Simpson's rule on 200 intervals): with weights (0.5, 0.5) and 128 permutations at 0.8 it
    /// gives datasketch's (9, 13).
    public static func optimalBands(threshold: Double, permutations: Int, falsePositiveWeight: Double = 0.5,
                                    falseNegativeWeight: Double = 0.5) -> (bands: Int, rows: Int) {
        func integral(_ f: (Double) -> Double, _ low: Double, _ high: Double) -> Double {
            let n = 200, h = (high - low) / Double(n)
            var sum = f(low) + f(high)
            for i in 1..<n { sum += f(low + Double(i) * h) * (i % 2 == 1 ? 4 : 2) }
            return sum * h / 3
        }
        var best = (bands: 1, rows: 1), bestError = Double.infinity
        for b in 1...permutations {
            for r in 1...(permutations / b) {
                let candidate = { (s: Double) in 1 - pow(1 - pow(s, Double(r)), Double(b)) }
                let falsePositive = integral(candidate, 0, threshold)
                let falseNegative = integral({ 1 - candidate($0) }, threshold, 1)
                let error = falsePositive * falsePositiveWeight + falseNegative * falseNegativeWeight
                if error < bestError { bestError = error; best = (b, r) }
            }
        }
        return best
    }

    /// The probability that a pair of Jaccard similarity `s` becomes a candidate: `1 - (1 - s^r)^b`.
    public func candidateProbability(_ s: Double) -> Double { 1 - pow(1 - pow(s, Double(rows)), Double(bands)) }

    /// Adds the next document (in priority order) with its signature; returns the index of the kept
    /// document of its cluster (itself when it is the first of its cluster so far).
    @discardableResult
    public mutating func add(_ signature: UnsafePointer<UInt32>) -> Int {
        let index = parent.count, n = permutations.count
        signatures.append(contentsOf: UnsafeBufferPointer(start: signature, count: n))
        parent.append(Int32(index))
        for band in 0..<bands {
            var key: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(band + 1)
            for row in 0..<rows {
                key = (key ^ UInt64(signature[band * rows + row])) &* 0x100_0000_01B3
                key ^= key >> 29
            }
            let members = buckets[band][key, default: []]
            for other in members where find(Int(other)) != find(index) {
                let jaccard = signatures.withUnsafeBufferPointer { all in
                    permutations.jaccard(all.baseAddress! + Int(other) * n, all.baseAddress! + index * n)
                }
                if let verificationThreshold, jaccard < verificationThreshold { continue }
                union(index, Int(other))
                if matches[index] == nil { matches[index] = (Int(other), jaccard) }
            }
            // A bucket keeps one member per cluster: a family of near-copies costs one comparison
            // per band and document, not one per earlier copy.
            if !members.contains(where: { find(Int($0)) == find(index) }) { buckets[band][key, default: []].append(Int32(index)) }
        }
        return find(index)
    }

    /// The kept document of `document`'s cluster.
    public mutating func find(_ document: Int) -> Int {
        var root = document
        while Int(parent[root]) != root { root = Int(parent[root]) }
        var node = document
        while Int(parent[node]) != root {
            let next = Int(parent[node])
            parent[node] = Int32(root)
            node = next
        }
        return root
    }

    /// Joins two clusters under the earlier root, the higher-priority document.
    private mutating func union(_ x: Int, _ y: Int) {
        let a = find(x), b = find(y)
        if a != b { parent[max(a, b)] = Int32(min(a, b)) }
    }
}

#if canImport(Glibc)
import Glibc
#endif
