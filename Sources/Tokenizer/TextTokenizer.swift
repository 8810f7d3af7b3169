/// What encoding and decoding text needs from a tokenizer: GPT-2's byte-level BPE (`Tokenizer`)
/// or BERT's WordPiece (`WordPieceTokenizer`).
public protocol TextTokenizer: Sendable {
    /// Number of ids.
    var vocabularySize: Int { get }
    /// The ids of `text` (no special tokens added).
    func encode(_ text: String) -> [Int32]
    /// The text of `ids`; an id outside the vocabulary is an error.
    func decode(_ ids: [Int32]) throws(TokenizerError) -> String
}

extension Tokenizer: TextTokenizer {}

extension WordPieceTokenizer: TextTokenizer {
    /// Megatron-LM's `--tokenizer-type` names of the WordPiece tokenizers, and whether each
    /// lower-cases.
    public static let megatronTypes: [String: Bool] = ["BertWordPieceLowerCase": true, "BertWordPieceCase": false]
}
