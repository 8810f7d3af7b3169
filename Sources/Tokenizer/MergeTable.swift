/// The BPE merge rules as an open-addressing hash table from a pair of token ids to the rule's
/// rank (lower merges first) and the id of the merged token.
struct MergeTable: Sendable {
    private var keys: [UInt64]
    private var ranks: [Int32]
    private var results: [Int32]
    private let mask: Int
    private static let empty = UInt64.max
    /// Number of rules.
    let count: Int

    /// Builds the table from rules in rank order.
    init(_ rules: [(left: Int32, right: Int32, merged: Int32)]) {
        var capacity = 16
        while capacity < rules.count * 2 { capacity <<= 1 }
        keys = [UInt64](repeating: Self.empty, count: capacity)
        ranks = [Int32](repeating: 0, count: capacity)
        results = [Int32](repeating: 0, count: capacity)
        mask = capacity - 1
        count = rules.count
        for (rank, rule) in rules.enumerated() {
            let key = Self.key(rule.left, rule.right)
            var slot = Self.hash(key) & mask
            while keys[slot] != Self.empty && keys[slot] != key { slot = (slot + 1) & mask }
            if keys[slot] == key { continue }  // a repeated rule keeps its first (lowest) rank
            keys[slot] = key
            ranks[slot] = Int32(rank)
            results[slot] = rule.merged
        }
    }

    @inline(__always)
    static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    @inline(__always)
    private static func hash(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 29)
    }

    /// The rank and merged id of the rule for `(left, right)`, if there is one.
    @inline(__always)
    func lookup(_ left: Int32, _ right: Int32) -> (rank: Int32, merged: Int32)? {
        let key = Self.key(left, right)
        return keys.withUnsafeBufferPointer { keys in
            var slot = Self.hash(key) & mask
            while true {
                let stored = keys[slot]
                if stored == key { return (ranks[slot], results[slot]) }
                if stored == Self.empty { return nil }
                slot = (slot + 1) & mask
            }
        }
    }

    /// Applies the rules to `symbols` in place: repeatedly merges every occurrence (left to right)
    /// of the adjacent pair with the lowest rank until no adjacent pair has a rule.
    func apply(to symbols: inout [Int32]) {
        while symbols.count > 1 {
            var bestRank = Int32.max
            var bestLeft: Int32 = 0
            var bestRight: Int32 = 0
            var bestMerged: Int32 = 0
            for i in 0..<(symbols.count - 1) {
                if let rule = lookup(symbols[i], symbols[i + 1]), rule.rank < bestRank {
                    bestRank = rule.rank
                    bestLeft = symbols[i]
                    bestRight = symbols[i + 1]
                    bestMerged = rule.merged
                }
            }
            if bestRank == .max { return }
            var write = 0
            var read = 0
            let n = symbols.count
            while read < n {
                if read + 1 < n && symbols[read] == bestLeft && symbols[read + 1] == bestRight {
                    symbols[write] = bestMerged
                    read += 2
                } else {
                    symbols[write] = symbols[read]
                    read += 1
                }
                write += 1
            }
            symbols.removeLast(n - write)
        }
    }
}
