import ArgumentParser
import Datasets
import Tokenizer

/// `megatron preprocess`: JSONL corpus -> Megatron `.bin/.idx` datasets (preprocess_data.py).
struct PreprocessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preprocess",
        abstract: "Tokenize a JSONL corpus into Megatron indexed datasets (PREFIX_KEY_document.bin/.idx).",
        discussion: """
        Each line of --input is a JSON object; each --json-keys field becomes one document of the
        dataset for that key. Tokens are uint16 when the vocabulary has fewer than 65500 ids, else
        int32. A malformed line or a missing key stops the run with the file and line number
        (with --skip-invalid the line is skipped and counted). Output files are renamed into place
        only after the whole input has been processed.
        """)

    @Option(name: .long, help: "JSONL input file.")
    var input: String

    @Option(name: .long, parsing: .upToNextOption, help: "JSON keys to tokenize, one dataset each.")
    var jsonKeys: [String] = ["text"]

    @Option(name: .long, help: "Output prefix; writes PREFIX_KEY_document.bin/.idx.")
    var outputPrefix: String

    @OptionGroup var tokenizer: TokenizerOptions

    @Flag(name: .long, help: "Append <|endoftext|> to every non-empty document.")
    var appendEod = false

    @Option(name: .long, help: "Encoding threads (1-256).")
    var workers: Int = 1

    @Option(name: .long, help: "Print a progress line every N documents.")
    var logInterval: Int = 10_000

    @Flag(name: .long, help: "Skip malformed lines and lines without the keys (counted) instead of stopping.")
    var skipInvalid = false

    @Flag(name: .long, help: "Each sentence a sequence of its document (BERT's data): writes PREFIX_KEY_sentence.bin/.idx.")
    var splitSentences = false

    func validate() throws {
        guard (1...256).contains(workers) else { throw ValidationError("--workers must be in 1...256, got \(workers)") }
        guard logInterval >= 1 else { throw ValidationError("--log-interval must be at least 1") }
    }

    func run() throws {
        let tokenizer = try tokenizer.loadText()
        var preprocessor = Preprocessor(inputPath: input, outputPrefix: outputPrefix)
        preprocessor.jsonKeys = jsonKeys
        preprocessor.appendEndOfDocument = appendEod
        preprocessor.workers = workers
        preprocessor.skipInvalid = skipInvalid
        preprocessor.splitSentences = splitSentences
        let result = try preprocessor.run(tokenizer: tokenizer, reportInterval: logInterval) { progress in
            printError(Self.progressLine(progress))
        }
        printError(Self.progressLine(result) + (skipInvalid ? " Skipped \(result.skipped) invalid lines." : ""))
        for key in jsonKeys {
            printError("wrote \(preprocessor.datasetPrefix(key: key)).bin/.idx")
        }
    }

    static func progressLine(_ progress: Preprocessor.Progress) -> String {
        "Processed \(progress.documents) documents, \(progress.tokens) tokens "
            + "(\(fixed(progress.documentsPerSecond, 0)) docs/s, \(fixed(progress.megabytesPerSecond, 2)) MB/s)."
    }
}
