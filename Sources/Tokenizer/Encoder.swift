/// Encodes text with a `Tokenizer`. Not thread-safe: each thread uses its own encoder, whose
/// cache of already-merged words makes repeated words cost one hash lookup.
public struct Encoder {
    /// The tokenizer this encoder uses.
    public let tokenizer: Tokenizer
    private var preTokenizer = GPT2PreTokenizer()
    private var cache = WordCache()
    private var symbols: [Int32] = []
    private var prefixed: [UInt8] = []
    private let wholeWordIDs: [[UInt8]: Int32]

    init(tokenizer: Tokenizer) {
        self.tokenizer = tokenizer
        var wholeWords = [[UInt8]: Int32]()
        if tokenizer.ignoreMerges {
            for (id, bytes) in tokenizer.tokenBytes.enumerated() { wholeWords[bytes] = Int32(id) }
        }
        wholeWordIDs = wholeWords
    }

    /// Appends the ids of `text` to `output`.
    public mutating func encode(_ text: String, into output: inout [Int32]) {
        var text = text
        text.withUTF8 { encode(utf8: $0, into: &output) }
    }

    /// Appends the ids of UTF-8 `text` to `output`.
    public mutating func encode(utf8 text: UnsafeBufferPointer<UInt8>, into output: inout [Int32]) {
        var segmentStart = 0
        var p = 0
        let added = tokenizer.addedTokens
        if !added.isEmpty {
            while p < text.count {
                if let (length, id) = addedToken(at: p, in: text, added) {
                    encodeSegment(UnsafeBufferPointer(rebasing: text[segmentStart..<p]), into: &output)
                    output.append(id)
                    p += length
                    segmentStart = p
                } else {
                    p += 1
                }
            }
        }
        encodeSegment(UnsafeBufferPointer(rebasing: text[segmentStart..<text.count]), into: &output)
    }

    @inline(__always)
    private func addedToken(at p: Int, in text: UnsafeBufferPointer<UInt8>,
                            _ added: [(content: String, id: Int32)]) -> (Int, Int32)? {
        for token in added {
            let matched = token.content.utf8.withContiguousStorageIfAvailable { content -> Bool in
                guard content.count <= text.count - p, content[0] == text[p] else { return false }
                for k in 1..<content.count where content[k] != text[p + k] { return false }
                return true
            } ?? false
            if matched { return (token.content.utf8.count, token.id) }
        }
        return nil
    }

    private mutating func encodeSegment(_ segment: UnsafeBufferPointer<UInt8>, into output: inout [Int32]) {
        if segment.isEmpty { return }
        if tokenizer.addPrefixSpace && segment[0] != UInt8(ascii: " ") {
            prefixed.removeAll(keepingCapacity: true)
            prefixed.append(UInt8(ascii: " "))
            prefixed.append(contentsOf: segment)
            let text = prefixed  // a local reference, so that encodeWords may mutate self
            text.withUnsafeBufferPointer { encodeWords($0, into: &output) }
        } else {
            encodeWords(segment, into: &output)
        }
    }

    private mutating func encodeWords(_ text: UnsafeBufferPointer<UInt8>, into output: inout [Int32]) {
        var splitter = preTokenizer
        preTokenizer = GPT2PreTokenizer()
        splitter.split(text) { range in
            encodeWord(UnsafeBufferPointer(rebasing: text[range]), into: &output)
        }
        preTokenizer = splitter
    }

    @inline(__always)
    private mutating func encodeWord(_ word: UnsafeBufferPointer<UInt8>, into output: inout [Int32]) {
        let hash = WordCache.hash(word)
        if cache.lookup(word, hash: hash, into: &output) { return }
        let start = output.count
        if let id = wholeWordIDs.isEmpty ? nil : wholeWordIDs[Array(word)] {
            output.append(id)
        } else {
            symbols.removeAll(keepingCapacity: true)
            for byte in word {
                let id = tokenizer.byteIDs[Int(byte)]
                if id >= 0 { symbols.append(id) }  // like HF without an unknown token: dropped
            }
            tokenizer.merges.apply(to: &symbols)
            output.append(contentsOf: symbols)
        }
        cache.insert(word, hash: hash, ids: output[start...])
    }
}
