import Tokenizer

extension TrainingConfig {
    /// The tokenizer and the data each model type reads, and what BERT does not run with yet.
    func validateModelType() throws(TrainingError) {
        guard modelType == .bert else {
            guard tokenizerFile != nil || (vocabFile != nil && mergeFile != nil) else {
                throw .invalidFlag("--tokenizer-file", "give --tokenizer-file, or --vocab-file and --merge-file")
            }
            try Self.check(tokenizerType: tokenizerType, tokenizerFile: tokenizerFile != nil)
            return
        }
        guard let type = tokenizerType, WordPieceTokenizer.megatronTypes[type] != nil, vocabFile != nil, mergeFile == nil,
              tokenizerFile == nil else {
            throw .invalidFlag("--model-type bert", "reads WordPiece: give --tokenizer-type BertWordPieceLowerCase or BertWordPieceCase with --vocab-file vocab.txt")
        }
        if device != .cpu { throw .invalidFlag("--device", "BERT runs on the CPU so far") }
        if applyResidualConnectionPostLayernorm && bertLayernormOrder == .pre {
            throw .invalidFlag("--bert-layernorm-order", "pre contradicts --apply-residual-connection-post-layernorm (post)")
        }
        if !(maskProb > 0 && maskProb < 1) { throw .invalidFlag("--mask-prob", "must be in (0, 1), got \(maskProb)") }
        if !(shortSeqProb >= 0 && shortSeqProb <= 1) { throw .invalidFlag("--short-seq-prob", "must be in [0, 1], got \(shortSeqProb)") }
    }
}
