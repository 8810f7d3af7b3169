import FileSupport

/// BERT's WordPiece tokenizer as Megatron-LM runs it (`BertWordPieceLowerCase` and
/// `BertWordPieceCase`, i.e. Google BERT's `FullTokenizer`): `BertBasicTokenizer`'s words, each
/// split greedily into the longest vocabulary entries from its start, pieces after the first
/// prefixed `##`; a word with no such split, or longer than 200 code points, is `[UNK]`.
///
/// Hugging Face tokenizers' `BertWordPieceTokenizer` gives the same ids except in three places:
/// it matches a special token spelled in the text (`"[CLS]"`) as that token, where this splits it
/// as punctuation and letters; it lower-cases capital sigma to σ everywhere (Python's `str.lower`,
/// here, gives ς at the end of a word); and its longest word is 100 code points, not 200.
public final class WordPieceTokenizer: Sendable {
    /// The vocabulary, by id (`vocab.txt`'s lines).
    public let tokens: [String]
    /// Ids by code points: Swift's `String` equality is canonical equivalence ("e\u{301}" ==
    /// "é"), BERT's (Python's) compares code points.
    private let ids: [[Unicode.Scalar]: Int32]
    private let basic: BertBasicTokenizer
    /// `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]` and `[PAD]`.
    public let unknownID: Int32, classID: Int32, separatorID: Int32, maskID: Int32, padID: Int32
    /// The longest word split into pieces (Google BERT's `max_input_chars_per_word`).
    public static let maxWordLength = 200

    /// Reads `vocab.txt` (one token per line, the line number its id); it must hold the five
    /// special tokens.
    public convenience init(vocabularyFile path: String, lowerCase: Bool) throws(TokenizerError) {
        let bytes: [UInt8]
        do { bytes = try MappedFile(path: path).withBytes { Array($0) } } catch {
            throw .unreadable(path: path, reason: "\(error)")
        }
        let text: String
        do { text = try UTF8Text.decode(bytes, source: path) } catch { throw .malformed(path: path, reason: error.reason) }
        try self.init(tokens: Self.vocabularyLines(text), lowerCase: lowerCase, source: path)
    }

    /// The lines of a `vocab.txt` as Python reads them (`\n`, `\r\n` or `\r` ends a line) and
    /// BERT's `load_vocab` keeps them: stripped of whitespace at both ends.
    static func vocabularyLines(_ text: String) -> [String] {
        var lines = [String](), line = String.UnicodeScalarView()
        var previous: Unicode.Scalar?
        func finish() {
            lines.append(String(scalars: line.trimmingPythonSpace()))
            line = String.UnicodeScalarView()
        }
        for scalar in text.unicodeScalars {
            if scalar == "\n" {
                if previous != "\r" { finish() }
            } else if scalar == "\r" {
                finish()
            } else {
                line.append(scalar)
            }
            previous = scalar
        }
        if !line.isEmpty { finish() }
        return lines
    }

    /// A tokenizer over `tokens` (id = index); `source` names them in errors.
    public init(tokens: [String], lowerCase: Bool, source: String = "vocabulary") throws(TokenizerError) {
        var ids = [[Unicode.Scalar]: Int32](minimumCapacity: tokens.count)
        for (index, token) in tokens.enumerated() { ids[Array(token.unicodeScalars)] = Int32(index) }  // repeated: the last line, as BERT's dict
        func special(_ name: String) throws(TokenizerError) -> Int32 {
            guard let id = ids[Array(name.unicodeScalars)] else {
                throw .malformed(path: source, reason: "the vocabulary has no \(name) token")
            }
            return id
        }
        self.tokens = tokens
        self.ids = ids
        basic = BertBasicTokenizer(lowerCase: lowerCase)
        unknownID = try special("[UNK]")
        classID = try special("[CLS]")
        separatorID = try special("[SEP]")
        maskID = try special("[MASK]")
        padID = try special("[PAD]")
    }

    /// Number of ids.
    public var vocabularySize: Int { tokens.count }

    /// The ids of `text`, without `[CLS]` / `[SEP]`.
    public func encode(_ text: String) -> [Int32] {
        var out = [Int32]()
        for word in basic.words(text) { appendPieces(of: word, to: &out) }
        return out
    }

    /// Greedy longest-match-first split of one word.
    private func appendPieces(of word: [Unicode.Scalar], to out: inout [Int32]) {
        guard word.count <= Self.maxWordLength else { return out.append(unknownID) }
        var pieces = [Int32]()
        var start = 0
        var candidate = [Unicode.Scalar]()
        while start < word.count {
            var end = word.count
            var found: Int32?
            while start < end {
                candidate.removeAll(keepingCapacity: true)
                if start > 0 { candidate += ["#", "#"] }
                candidate += word[start..<end]
                if let id = ids[candidate] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let found else { return out.append(unknownID) }
            pieces.append(found)
            start = end
        }
        out.append(contentsOf: pieces)
    }

    /// Megatron's `detokenize`: the tokens joined by spaces, `##` pieces glued to the one before.
    public func decode(_ ids: [Int32]) throws(TokenizerError) -> String {
        var words = [String]()
        for id in ids {
            guard id >= 0 && Int(id) < tokens.count else {
                throw .invalidArgument("token id \(id) is outside the vocabulary (0..<\(tokens.count))")
            }
            let token = tokens[Int(id)]
            if token.hasPrefix("##"), !words.isEmpty {
                words[words.count - 1] += token.dropFirst(2)
            } else {
                words.append(token)
            }
        }
        return words.joined(separator: " ")
    }
}
