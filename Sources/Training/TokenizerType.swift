import Tokenizer

extension TrainingConfig {
    /// Megatron's `--tokenizer-type` against the files given: `GPT2BPETokenizer` with
    /// `--vocab-file`/`--merge-file`, `HuggingFaceTokenizer` with `--tokenizer-file` (GPT); BERT's
    /// WordPiece types go with `--model-type bert`; the others (SentencePiece, tiktoken, ...) are
    /// not implemented.
    public static func check(tokenizerType type: String?, tokenizerFile: Bool) throws(TrainingError) {
        guard let type else { return }
        switch type {
        case "GPT2BPETokenizer" where !tokenizerFile, "HuggingFaceTokenizer" where tokenizerFile: return
        case "GPT2BPETokenizer", "HuggingFaceTokenizer":
            throw .invalidFlag("--tokenizer-type", "\(type) does not match the tokenizer files given")
        case _ where WordPieceTokenizer.megatronTypes[type] != nil:
            throw .invalidFlag("--tokenizer-type", "\(type) is BERT's: it needs --model-type bert")
        default:
            throw .invalidFlag("--tokenizer-type", "\(type) is not supported (GPT2BPETokenizer or HuggingFaceTokenizer)")
        }
    }
}

/// `--model-type`: which of Megatron's pretraining scripts `megatron train` plays.
public enum ModelType: String, CaseIterable, Sendable {
    /// pretrain_gpt.py: causal language modelling.
    case gpt
    /// pretrain_bert.py: masked language modelling plus sentence order.
    case bert
}

/// `--bert-layernorm-order`: where BERT's LayerNorms sit relative to the residual additions.
public enum BERTLayerNormOrder: String, CaseIterable, Sendable {
    /// After each residual addition (Devlin et al.'s BERT).
    case post
    /// Before each branch (Megatron-LM's rearrangement, which lets BERT scale).
    case pre
}
