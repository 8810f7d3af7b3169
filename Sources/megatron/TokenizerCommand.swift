import ArgumentParser
import Datasets
import FileSupport
import Tokenizer
#if canImport(Glibc)
import Glibc
#endif

/// `megatron tokenizer`: train a byte-level BPE vocabulary, encode and decode text.
struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Train, encode and decode with a GPT-2 style byte-level BPE tokenizer (encode and decode BERT's WordPiece too).",
        subcommands: [Train.self, Encode.self, Decode.self, Bench.self])

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Learn a vocabulary; writes tokenizer.json, vocab.json and merges.txt.",
            discussion: """
            Inputs ending in .jsonl or .json are read as JSON lines (the --json-keys fields of each
            line are documents); other files are plain text, one document per line.
            """)

        @Option(name: .long, parsing: .upToNextOption, help: "Text or JSONL files.")
        var input: [String]

        @Option(name: .long, help: "Vocabulary size, counting <|endoftext|> and the 256 byte tokens.")
        var vocabSize: Int

        @Option(name: .long, help: "Directory for tokenizer.json, vocab.json and merges.txt (created if missing).")
        var output: String

        @Option(name: .long, help: "Pairs seen fewer times are not merged.")
        var minFrequency: Int = 2

        @Option(name: .long, parsing: .upToNextOption, help: "JSON keys holding text (JSONL inputs).")
        var jsonKeys: [String] = ["text"]

        func validate() throws {
            guard !input.isEmpty else { throw ValidationError("--input needs at least one file") }
            guard vocabSize > 0 else { throw ValidationError("--vocab-size must be positive") }
        }

        func run() throws {
            var trainer = BPETrainer(vocabularySize: vocabSize, minimumFrequency: minFrequency)
            let start = monotonicSeconds()
            for path in input {
                try TextDocuments.forEach(in: path, jsonKeys: jsonKeys) { trainer.add($0) }
            }
            let tokenizer = try trainer.train()
            try Directory.create(output)
            try tokenizer.save(to: output)
            let seconds = monotonicSeconds() - start
            printError("trained \(tokenizer.vocabularySize) tokens on \(trainer.byteCount) bytes in "
                       + "\(fixed(seconds)) s; wrote \(output)/tokenizer.json, vocab.json, merges.txt")
        }
    }

    struct Encode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read text on stdin; print its token ids separated by spaces.")

        @OptionGroup var tokenizer: TokenizerOptions

        func run() throws {
            let tokenizer = try tokenizer.loadText()
            let text = try UTF8Text.decode(readStandardInput(), source: "standard input")
            print(tokenizer.encode(text).map(String.init).joined(separator: " "))
        }
    }

    struct Decode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read token ids (whitespace-separated) on stdin; print the text.")

        @OptionGroup var tokenizer: TokenizerOptions

        func run() throws {
            let tokenizer = try tokenizer.loadText()
            let text = String(decoding: readStandardInput(), as: UTF8.self)
            var ids = [Int32]()
            for word in text.split(whereSeparator: { $0.isWhitespace }) {
                guard let id = Int32(word) else { throw ValidationError("'\(word)' on stdin is not a token id") }
                ids.append(id)
            }
            print(try tokenizer.decode(ids), terminator: "")
        }
    }
}

/// All of stdin.
func readStandardInput() -> [UInt8] {
    var bytes = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = read(0, &chunk, chunk.count)
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return bytes
}

/// Writes a line to stderr.
func printError(_ line: String) {
    writeError(line + "\n")
}

/// Writes text to stderr as is.
func writeError(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
