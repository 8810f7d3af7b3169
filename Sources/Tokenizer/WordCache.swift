/// Remembers the token ids of words already encoded, keyed by the word's bytes, so that the BPE
/// merge loop runs once per distinct word. Words and ids live in two flat arenas; the table is
/// cleared when it fills up.
struct WordCache {
    private var slots: [Int32]          // entry index + 1, 0 = empty
    private var entryHashes: [UInt64] = []
    private var wordStarts: [Int32] = [0]
    private var idStarts: [Int32] = [0]
    private var wordBytes: [UInt8] = []
    private var ids: [Int32] = []
    private let maximumEntries: Int

    init(capacity: Int = 1 << 16) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: 0, count: size)
        maximumEntries = capacity
    }

    @inline(__always)
    static func hash(_ word: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in word { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return h ^ (h >> 29)
    }

    /// Appends the cached ids of `word` to `output`; false if the word is not cached.
    @inline(__always)
    func lookup(_ word: UnsafeBufferPointer<UInt8>, hash: UInt64, into output: inout [Int32]) -> Bool {
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let entry = Int(slots[slot]) - 1
            if entry < 0 { return false }
            if entryHashes[entry] == hash && matches(entry, word) {
                let range = Int(idStarts[entry])..<Int(idStarts[entry + 1])
                output.append(contentsOf: ids[range])
                return true
            }
            slot = (slot + 1) & mask
        }
    }

    private func matches(_ entry: Int, _ word: UnsafeBufferPointer<UInt8>) -> Bool {
        let start = Int(wordStarts[entry])
        guard Int(wordStarts[entry + 1]) - start == word.count else { return false }
        return wordBytes.withUnsafeBufferPointer { stored in
            for k in 0..<word.count where stored[start + k] != word[k] { return false }
            return true
        }
    }

    /// Stores the ids of `word` (which must not be cached yet).
    mutating func insert(_ word: UnsafeBufferPointer<UInt8>, hash: UInt64, ids wordIDs: ArraySlice<Int32>) {
        if entryHashes.count >= maximumEntries || wordBytes.count > (1 << 30) { clear() }
        let entry = entryHashes.count
        entryHashes.append(hash)
        wordBytes.append(contentsOf: word)
        wordStarts.append(Int32(wordBytes.count))
        ids.append(contentsOf: wordIDs)
        idStarts.append(Int32(ids.count))
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while slots[slot] != 0 { slot = (slot + 1) & mask }
        slots[slot] = Int32(entry + 1)
    }

    private mutating func clear() {
        for i in slots.indices { slots[i] = 0 }
        entryHashes.removeAll(keepingCapacity: true)
        wordStarts = [0]
        idStarts = [0]
        wordBytes.removeAll(keepingCapacity: true)
        ids.removeAll(keepingCapacity: true)
    }
}
