import ArgumentParser
import Tokenizer
import Training

/// The tokenizer flags shared by every command that reads text (Megatron's names).
struct TokenizerOptions: ParsableArguments {
    @Option(name: .flag(.tokenizerFile), help: .flag(.tokenizerFile))
    var tokenizerFile: String?

    @Option(name: .flag(.vocabFile), help: .flag(.vocabFile))
    var vocabFile: String?

    @Option(name: .flag(.mergeFile), help: .flag(.mergeFile))
    var mergeFile: String?

    @Option(name: .flag(.tokenizerType), help: .flag(.tokenizerType))
    var tokenizerType: String?

    /// Whether `--tokenizer-type` names BERT's WordPiece (with `--vocab-file vocab.txt` alone).
    var isWordPiece: Bool { tokenizerType.map { WordPieceTokenizer.megatronTypes[$0] != nil } ?? false }

    func validate() throws {
        if isWordPiece {
            guard vocabFile != nil, mergeFile == nil, tokenizerFile == nil else {
                throw ValidationError("--tokenizer-type \(tokenizerType!) takes --vocab-file (BERT's vocab.txt) alone")
            }
            return
        }
        switch (tokenizerFile, vocabFile, mergeFile) {
        case (.some, nil, nil), (nil, .some, .some): break
        case (.some, _, _): throw ValidationError("give either --tokenizer-file or --vocab-file with --merge-file, not both")
        case (nil, .some, nil): throw ValidationError("--vocab-file needs --merge-file")
        case (nil, nil, .some): throw ValidationError("--merge-file needs --vocab-file")
        case (nil, nil, nil): throw ValidationError("missing tokenizer: give --tokenizer-file, or --vocab-file and --merge-file")
        }
        do { try TrainingConfig.check(tokenizerType: tokenizerType, tokenizerFile: tokenizerFile != nil) } catch {
            throw ValidationError(error.description)
        }
    }

    /// Loads the byte-level BPE tokenizer the flags name (what every command but `tokenizer
    /// encode/decode` and `preprocess` needs: BERT's models are not built yet).
    func load() throws -> Tokenizer {
        if isWordPiece {
            throw ValidationError("--tokenizer-type \(tokenizerType!) works with `tokenizer encode`, `tokenizer decode` and `preprocess` only so far")
        }
        if let tokenizerFile { return try Tokenizer.load(tokenizerFile: tokenizerFile) }
        return try Tokenizer.load(vocabFile: vocabFile!, mergesFile: mergeFile!)
    }

    /// Loads the tokenizer the flags name, BPE or WordPiece.
    func loadText() throws -> any TextTokenizer {
        guard isWordPiece, let type = tokenizerType, let lowerCase = WordPieceTokenizer.megatronTypes[type] else {
            return try load()
        }
        return try WordPieceTokenizer(vocabularyFile: vocabFile!, lowerCase: lowerCase)
    }
}
