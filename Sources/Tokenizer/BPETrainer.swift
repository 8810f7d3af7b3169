/// Learns a byte-level BPE vocabulary from text, the way Hugging Face's `BpeTrainer` does:
/// count pre-tokens (GPT-2's regular expression), start from the added tokens and the 256 byte
/// characters (sorted), then repeatedly merge the most frequent adjacent pair (ties: the pair
/// with the smaller ids) until the vocabulary has the requested size or no pair occurs
/// `minimumFrequency` times. Pair counts are updated incrementally, touching only the words
/// that contain the merged pair.
public struct BPETrainer {
    /// The vocabulary size to reach, counting added tokens and the 256 byte characters.
    public var vocabularySize: Int
    /// Pairs seen fewer times than this are never merged.
    public var minimumFrequency: Int
    /// Tokens placed first in the vocabulary and matched verbatim in text (e.g. `<|endoftext|>`).
    public var addedTokens: [String]
    private var wordCounts: [[UInt8]: Int] = [:]
    private var preTokenizer = GPT2PreTokenizer()
    /// UTF-8 bytes counted so far.
    public private(set) var byteCount = 0

    public init(vocabularySize: Int, minimumFrequency: Int = 2, addedTokens: [String] = ["<|endoftext|>"]) {
        self.vocabularySize = vocabularySize
        self.minimumFrequency = minimumFrequency
        self.addedTokens = addedTokens
    }

    /// Counts the pre-tokens of one text (one document).
    public mutating func add(_ text: String) {
        var text = text
        byteCount += text.utf8.count
        text.withUTF8 { bytes in
            var splitter = preTokenizer
            splitter.split(bytes) { range in
                wordCounts[Array(bytes[range]), default: 0] += 1
            }
            preTokenizer = splitter
        }
    }

    /// Runs the merges and returns the trained tokenizer.
    public func train() throws(TokenizerError) -> Tokenizer {
        let alphabetSize = 256 + addedTokens.count
        guard vocabularySize >= alphabetSize else {
            throw .invalidArgument("--vocab-size \(vocabularySize) is smaller than the \(addedTokens.count) "
                                   + "added tokens plus 256 byte characters")
        }
        var tokens = addedTokens
        let alphabet = ByteLevelAlphabet.characterForByte.sorted { $0.value < $1.value }
        var byteIDs = [Int32](repeating: 0, count: 256)
        for scalar in alphabet {
            byteIDs[Int(ByteLevelAlphabet.byteForCharacter[scalar.value]!)] = Int32(tokens.count)
            tokens.append(String(Character(scalar)))
        }
        var ids = [String: Int32]()
        for (id, token) in tokens.enumerated() { ids[token] = Int32(id) }

        var state = MergeState(words: wordCounts.map { (word, count) in (word.map { byteIDs[Int($0)] }, count) })
        var merges = [(String, String)]()
        while tokens.count < vocabularySize, let (pair, count) = state.popMostFrequentPair() {
            if count < max(minimumFrequency, 1) { break }
            let left = tokens[Int(pair.left)], right = tokens[Int(pair.right)]
            let merged = left + right
            let mergedID: Int32
            if let existing = ids[merged] {
                mergedID = existing
            } else {
                mergedID = Int32(tokens.count)
                tokens.append(merged)
                ids[merged] = mergedID
            }
            merges.append((left, right))
            state.merge(pair, into: mergedID)
        }
        return try Tokenizer(vocabulary: ids, merges: merges, addedTokens: addedTokens, source: "trainer")
    }
}

/// The words being merged, their pair counts, and a max-heap of candidate pairs with lazily
/// corrected counts.
private struct MergeState {
    typealias Pair = (left: Int32, right: Int32)
    var words: [[Int32]]
    var counts: [Int]
    var pairCounts: [UInt64: Int] = [:]
    var pairWords: [UInt64: [Int32]] = [:]
    var heap = PairHeap()
    var visited: [Int] = []
    var stamp = 0

    init(words: [([Int32], Int)]) {
        self.words = words.map(\.0)
        counts = words.map(\.1)
        visited = [Int](repeating: -1, count: words.count)
        for (w, word) in self.words.enumerated() where word.count > 1 {
            for i in 0..<(word.count - 1) {
                let key = MergeTable.key(word[i], word[i + 1])
                pairCounts[key, default: 0] += counts[w]
                pairWords[key, default: []].append(Int32(w))
            }
        }
        for (key, count) in pairCounts { heap.push(count: count, key: key) }
    }

    /// The pair with the highest current count, or nil when none is left.
    mutating func popMostFrequentPair() -> (Pair, Int)? {
        while let top = heap.pop() {
            let actual = pairCounts[top.key] ?? 0
            if actual == top.count {
                return ((Int32(truncatingIfNeeded: top.key >> 32), Int32(truncatingIfNeeded: top.key)), actual)
            }
            if actual > 0 { heap.push(count: actual, key: top.key) }
        }
        return nil
    }

    /// Replaces every occurrence of `pair` (left to right) by `merged` and updates the counts.
    mutating func merge(_ pair: Pair, into merged: Int32) {
        let key = MergeTable.key(pair.left, pair.right)
        stamp += 1
        var gained = Set<UInt64>()
        for w32 in pairWords[key] ?? [] {
            let w = Int(w32)
            if visited[w] == stamp { continue }
            visited[w] = stamp
            let old = words[w]
            var new = [Int32]()
            new.reserveCapacity(old.count)
            var i = 0
            while i < old.count {
                if i + 1 < old.count && old[i] == pair.left && old[i + 1] == pair.right {
                    new.append(merged)
                    i += 2
                } else {
                    new.append(old[i])
                    i += 1
                }
            }
            if new.count == old.count { continue }
            let count = counts[w]
            for i in 0..<(old.count - 1) { pairCounts[MergeTable.key(old[i], old[i + 1])]! -= count }
            for i in 0..<max(new.count - 1, 0) {
                let newKey = MergeTable.key(new[i], new[i + 1])
                pairCounts[newKey, default: 0] += count
                if new[i] == merged || new[i + 1] == merged {
                    pairWords[newKey, default: []].append(w32)
                    gained.insert(newKey)
                }
            }
            words[w] = new
        }
        pairCounts[key] = nil
        pairWords[key] = nil
        for newKey in gained {
            if let count = pairCounts[newKey], count > 0 { heap.push(count: count, key: newKey) }
        }
    }
}

/// A binary max-heap of (count, pair key); equal counts pop the smaller key first.
private struct PairHeap {
    private var items: [(count: Int, key: UInt64)] = []

    private static func above(_ a: (count: Int, key: UInt64), _ b: (count: Int, key: UInt64)) -> Bool {
        a.count != b.count ? a.count > b.count : a.key < b.key
    }

    mutating func push(count: Int, key: UInt64) {
        items.append((count, key))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.above(items[i], items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> (count: Int, key: UInt64)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var best = i
                if l < items.count && Self.above(items[l], items[best]) { best = l }
                if r < items.count && Self.above(items[r], items[best]) { best = r }
                if best == i { break }
                items.swapAt(i, best)
                i = best
            }
        }
        return top
    }
}
