import Datasets

/// MinHash signatures as datasketch computes them (`datasketch.MinHash` with its default SHA-1
/// hash), bit for bit for the same number of permutations, seed and scheme, so that a user can
/// check them and the tests do.
///
/// - `affine32` (datasketch 2.x's default): each shingle's 32-bit SHA-1 hash goes through the
///   MurmurHash3 finalizer, then `a h + b mod 2^32` with odd `a`.
/// - `legacy` (datasketch before 2.0): `((a h + b) mod 2^64 mod (2^61 - 1)) & (2^32 - 1)`.
///
/// In both the `a` and `b` come from `numpy.random.RandomState(seed)` drawn as datasketch draws
/// them, and the signature is the minimum over the shingles (2^32 - 1 for no shingle).
public struct MinHashPermutations: Sendable {
    public enum Scheme: String, Sendable, CaseIterable {
        case affine32
        case legacy
    }

    public let scheme: Scheme
    /// Multipliers and offsets, one pair per permutation (32-bit values for `affine32`).
    let a: [UInt64]
    let b: [UInt64]

    public var count: Int { a.count }

    public init(count: Int, seed: UInt32 = 1, scheme: Scheme = .affine32) {
        precondition(count >= 1)
        self.scheme = scheme
        var random = NumpyRandomState(seed: seed)
        switch scheme {
        case .affine32:
            // randint(0, 2^31, n, uint32) * 2 + 1, then randint(0, 2^32, n, uint32).
            a = (0..<count).map { _ in random.randomInterval(0x7FFF_FFFF) * 2 + 1 }
            b = (0..<count).map { _ in random.randomInterval(0xFFFF_FFFF) }
        case .legacy:
            // Per permutation randint(1, p) then randint(0, p), p = 2^61 - 1, as uint64.
            var a = [UInt64](), b = [UInt64]()
            for _ in 0..<count {
                a.append(1 + random.randomInterval(MinHashPermutations.mersennePrime - 2))
                b.append(random.randomInterval(MinHashPermutations.mersennePrime - 1))
            }
            self.a = a
            self.b = b
        }
    }

    static let mersennePrime: UInt64 = (1 << 61) - 1

    /// MurmurHash3's 32-bit finalizer.
    @inline(__always)
    static func fmix32(_ value: UInt32) -> UInt32 {
        var h = value
        h ^= h >> 16
        h = h &* 0x85EB_CA6B
        h ^= h >> 13
        h = h &* 0xC2B2_AE35
        return h ^ (h >> 16)
    }

    /// Lowers `signature` (`count` values) to the permuted hashes of one shingle's 32-bit hash.
    @inline(__always)
    func update(_ signature: UnsafeMutablePointer<UInt32>, hash: UInt32) {
        switch scheme {
        case .affine32:
            let h = Self.fmix32(hash)
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    for i in 0..<a.count {
                        let value = UInt32(truncatingIfNeeded: a[i]) &* h &+ UInt32(truncatingIfNeeded: b[i])
                        signature[i] = min(signature[i], value)
                    }
                }
            }
        case .legacy:
            let h = UInt64(hash)
            for i in 0..<a.count {
                let value = UInt32(truncatingIfNeeded: (a[i] &* h &+ b[i]) % Self.mersennePrime)
                signature[i] = min(signature[i], value)
            }
        }
    }

    /// The signature of a document's shingles (`shingles` calls its argument with each
    /// shingle's bytes, which must stay valid until `shingles` returns: they are hashed in groups)
    /// into `signature` (`count` values).
    public func signature(into signature: UnsafeMutablePointer<UInt32>,
                          shingles: ((UnsafeRawBufferPointer) -> Void) -> Void) {
        signature.update(repeating: .max, count: count)
        // Shingles are hashed eight at a time (`SHA1.hash32(lanes:)`).
        var pending = [UnsafeRawBufferPointer]()
        pending.reserveCapacity(8)
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 8) { hashes in
            func flush() {
                SHA1.hash32(lanes: pending, into: hashes.baseAddress!)
                for i in 0..<pending.count { update(signature, hash: hashes[i]) }
                pending.removeAll(keepingCapacity: true)
            }
            shingles { bytes in
                pending.append(bytes)
                if pending.count == 8 { flush() }
            }
            if !pending.isEmpty { flush() }
        }
    }

    /// The fraction of equal values of two signatures: datasketch's `MinHash.jaccard`, the
    /// estimate of the shingle sets' Jaccard similarity.
    public func jaccard(_ x: UnsafePointer<UInt32>, _ y: UnsafePointer<UInt32>) -> Double {
        var equal = 0
        for i in 0..<count where x[i] == y[i] { equal += 1 }
        return Double(equal) / Double(count)
    }
}

/// A document's word n-gram shingles: the text normalised (`TextNormalizer`: NFC, every run of
/// whitespace one space), split at the spaces, each n consecutive words with their single spaces
/// between them as UTF-8 bytes (Python: `" ".join(words[i:i+n]).encode()`); a document of fewer
/// than n words is one shingle of all of them, an empty one has none. Each distinct shingle
/// counts once in a MinHash, so repeats need no removing.
public enum WordShingles {
    /// Calls `body` with each shingle of the normalised UTF-8 text `text`.
    public static func forEach(in text: UnsafeRawBufferPointer, n: Int, _ body: (UnsafeRawBufferPointer) -> Void) {
        guard !text.isEmpty else { return }
        var starts = [0]
        for i in 0..<text.count where text[i] == 0x20 { starts.append(i + 1) }
        let words = starts.count
        if words <= n {
            body(text)
            return
        }
        for first in 0...(words - n) {
            let start = starts[first]
            let end = first + n < words ? starts[first + n] - 1 : text.count
            body(UnsafeRawBufferPointer(rebasing: text[start..<end]))
        }
    }
}
