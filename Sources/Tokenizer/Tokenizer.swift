/// A GPT-2 style byte-level BPE tokenizer: text is split into pre-tokens by GPT-2's regular
/// expression, each pre-token's UTF-8 bytes start as one token per byte, and the merge rules
/// are applied in rank order. Added (special) tokens such as `<|endoftext|>` are cut out of the
/// text first and map to their own ids. Decoding concatenates the tokens' bytes, so
/// `decode(encode(text)) == text` for every string when the vocabulary has all 256 byte tokens
/// and `addPrefixSpace` is off.
///
/// The tokenizer is immutable and can be shared between threads; each thread encodes with its
/// own `Encoder`, which caches the ids of words it has seen.
public final class Tokenizer: Sendable {
    /// The vocabulary spelling of each id (byte-level characters; added tokens as written).
    public let tokens: [String]
    /// The bytes each id decodes to.
    let tokenBytes: [[UInt8]]
    let ids: [String: Int32]
    let merges: MergeTable
    /// The merge rules in rank order, as ids.
    let mergeRules: [(left: Int32, right: Int32, merged: Int32)]
    /// The id of the one-byte token for each byte value, -1 where the vocabulary has none.
    let byteIDs: [Int32]
    /// Added tokens, cut out of the text before pre-tokenization, longest first.
    public let addedTokens: [(content: String, id: Int32)]
    /// Prepend a space to text that does not start with one (GPT-2's `add_prefix_space`).
    public let addPrefixSpace: Bool
    /// Look each whole pre-token up in the vocabulary before merging (HF's `ignore_merges`).
    public let ignoreMerges: Bool

    /// Builds a tokenizer. `vocabulary` maps spellings to ids, `merges` are pairs of spellings in
    /// rank order, `addedTokens` name vocabulary entries that are matched verbatim in text.
    /// `source` names the file(s) in error messages.
    public init(vocabulary: [String: Int32], merges: [(String, String)], addedTokens: [String],
                addPrefixSpace: Bool = false, ignoreMerges: Bool = false,
                source: String) throws(TokenizerError) {
        guard let largest = vocabulary.values.max(), vocabulary.values.min()! >= 0 else {
            throw .malformed(path: source, reason: "the vocabulary is empty or has negative ids")
        }
        guard Int(largest) < max(2 * vocabulary.count, 1 << 24) else {
            throw .malformed(path: source, reason: "id \(largest) is far beyond the \(vocabulary.count) vocabulary entries")
        }
        var tokens = [String](repeating: "", count: Int(largest) + 1)
        var seen = [Bool](repeating: false, count: tokens.count)
        for (token, id) in vocabulary {
            if seen[Int(id)] {
                throw .malformed(path: source, reason: "id \(id) is used by two vocabulary entries")
            }
            seen[Int(id)] = true
            tokens[Int(id)] = token
        }
        var added = [(content: String, id: Int32)]()
        for content in addedTokens {
            guard let id = vocabulary[content] else {
                throw .malformed(path: source, reason: "added token \(content) is not in the vocabulary")
            }
            if !content.isEmpty { added.append((content, id)) }
        }
        let addedIDs = Set(added.map(\.id))
        self.tokenBytes = tokens.enumerated().map { id, token in
            addedIDs.contains(Int32(id)) ? Array(token.utf8) : (ByteLevelAlphabet.decode(token) ?? Array(token.utf8))
        }
        var byteIDs = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            byteIDs[byte] = vocabulary[String(Character(ByteLevelAlphabet.characterForByte[byte]))] ?? -1
        }
        var rules = [(left: Int32, right: Int32, merged: Int32)]()
        rules.reserveCapacity(merges.count)
        for (rank, (left, right)) in merges.enumerated() {
            guard let l = vocabulary[left], let r = vocabulary[right], let m = vocabulary[left + right] else {
                throw .malformed(path: source, reason:
                    "merge rule \(rank + 1) '\(left) \(right)' uses a token that is not in the vocabulary")
            }
            rules.append((l, r, m))
        }
        self.tokens = tokens
        self.ids = vocabulary
        self.mergeRules = rules
        self.merges = MergeTable(rules)
        self.byteIDs = byteIDs
        self.addedTokens = added.sorted { $0.content.utf8.count > $1.content.utf8.count }
        self.addPrefixSpace = addPrefixSpace
        self.ignoreMerges = ignoreMerges
    }

    /// Number of ids (one more than the largest id).
    public var vocabularySize: Int { tokens.count }

    /// The id of a vocabulary spelling or added token.
    public func id(of token: String) -> Int32? { ids[token] }

    /// The end-of-document token `<|endoftext|>`, if the vocabulary has it.
    public var endOfDocumentID: Int32? { ids["<|endoftext|>"] }

    /// A new encoder with an empty word cache; use one per thread.
    public func makeEncoder() -> Encoder { Encoder(tokenizer: self) }

    /// Encodes one text (convenience for a few calls; keep an `Encoder` for many).
    public func encode(_ text: String) -> [Int32] {
        var encoder = makeEncoder()
        var output = [Int32]()
        encoder.encode(text, into: &output)
        return output
    }

    /// The text that `ids` stand for. Byte sequences that are not valid UTF-8 (a token sequence
    /// cut inside a character) become U+FFFD.
    public func decode(_ ids: [Int32]) throws(TokenizerError) -> String {
        var bytes = [UInt8]()
        for id in ids {
            guard id >= 0 && Int(id) < tokenBytes.count else {
                throw .invalidArgument("token id \(id) is outside the vocabulary (size \(tokenBytes.count))")
            }
            bytes += tokenBytes[Int(id)]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

}
