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

    @Option(name: .long, help: "GPT2BPETokenizer (vocab + merges) or HuggingFaceTokenizer (tokenizer.json); optional, checked against the files given.")
    var tokenizerType: String?

    func validate() throws {
        switch (tokenizerFile, vocabFile, mergeFile) {
        case (.some, nil, nil), (nil, .some, .some): break
        case (.some, _, _): throw ValidationError("give either --tokenizer-file or --vocab-file with --merge-file, not both")
        case (nil, .some, nil): throw ValidationError("--vocab-file needs --merge-file")
        case (nil, nil, .some): throw ValidationError("--merge-file needs --vocab-file")
        case (nil, nil, nil): throw ValidationError("missing tokenizer: give --tokenizer-file, or --vocab-file and --merge-file")
        }
        if let type = tokenizerType {
            switch type {
            case "GPT2BPETokenizer" where vocabFile != nil, "HuggingFaceTokenizer" where tokenizerFile != nil: break
            case "GPT2BPETokenizer", "HuggingFaceTokenizer":
                throw ValidationError("--tokenizer-type \(type) does not match the tokenizer files given")
            default:
                throw ValidationError("--tokenizer-type \(type) is not supported (GPT2BPETokenizer or HuggingFaceTokenizer)")
            }
        }
    }

    /// Loads the tokenizer the flags name.
    func load() throws -> Tokenizer {
        if let tokenizerFile { return try Tokenizer.load(tokenizerFile: tokenizerFile) }
        return try Tokenizer.load(vocabFile: vocabFile!, mergesFile: mergeFile!)
    }
}
