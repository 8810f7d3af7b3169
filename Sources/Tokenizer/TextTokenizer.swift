/// What encoding and decoding text needs from a tokenizer: GPT-2's byte-level BPE (`Tokenizer`)
/// or BERT's WordPiece (`WordPieceTokenizer`).
public protocol TextTokenizer: Sendable {
    /// Number of ids.
    var vocabularySize: Int { get }
    /// The id `--append-eod` appends after a document (`<|endoftext|>`); nil when there is none.
    var endOfDocumentID: Int32? { get }
    /// The ids of `text` (no special tokens added).
    func encode(_ text: String) -> [Int32]
    /// The text of `ids`; an id outside the vocabulary is an error.
    func decode(_ ids: [Int32]) throws(TokenizerError) -> String
    /// An encoder for one thread (BPE keeps a per-thread word cache).
    func makeDocumentEncoder() -> any DocumentEncoder
}

/// Encodes texts on one thread, appending ids.
public protocol DocumentEncoder {
    mutating func encode(_ text: String, into output: inout [Int32])
}

extension Tokenizer: TextTokenizer {
    public func makeDocumentEncoder() -> any DocumentEncoder { makeEncoder() }
}

extension Encoder: DocumentEncoder {}

extension WordPieceTokenizer: TextTokenizer {
    /// Megatron-LM's `--tokenizer-type` names of the WordPiece tokenizers, and whether each
    /// lower-cases.
    public static let megatronTypes: [String: Bool] = ["BertWordPieceLowerCase": true, "BertWordPieceCase": false]

    /// None: BERT separates documents by their sample construction, not by a token.
    public var endOfDocumentID: Int32? { nil }

    public func makeDocumentEncoder() -> any DocumentEncoder { WordPieceDocumentEncoder(tokenizer: self) }
}

/// `WordPieceTokenizer` as a `DocumentEncoder` (it keeps no per-thread state).
struct WordPieceDocumentEncoder: DocumentEncoder {
    let tokenizer: WordPieceTokenizer

    mutating func encode(_ text: String, into output: inout [Int32]) { output += tokenizer.encode(text) }
}
