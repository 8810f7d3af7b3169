extension TrainingConfig {
    /// Megatron's `--tokenizer-type` against the files given: `GPT2BPETokenizer` with
    /// `--vocab-file`/`--merge-file`, `HuggingFaceTokenizer` with `--tokenizer-file`; the other
    /// types (SentencePiece, tiktoken, BERT WordPiece, ...) are not implemented.
    public static func check(tokenizerType type: String?, tokenizerFile: Bool) throws(TrainingError) {
        guard let type else { return }
        switch type {
        case "GPT2BPETokenizer" where !tokenizerFile, "HuggingFaceTokenizer" where tokenizerFile: return
        case "GPT2BPETokenizer", "HuggingFaceTokenizer":
            throw .invalidFlag("--tokenizer-type", "\(type) does not match the tokenizer files given")
        default:
            throw .invalidFlag("--tokenizer-type", "\(type) is not supported (GPT2BPETokenizer or HuggingFaceTokenizer)")
        }
    }
}
