#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import FileSupport
import Testing
@testable import Datasets
import Tokenizer

@Suite struct PreprocessorTests {
    static let tokenizer = try! Tokenizer.load(tokenizerFile: DataFixtures.path("tokenizer/tokenizer.json"))

    static func write(_ lines: [String]) throws -> String {
        let path = DataFixtures.temporaryDirectory() + "/corpus.jsonl"
        try AtomicFile.write(Array(lines.joined(separator: "\n").utf8), to: path)
        return path
    }

    static let lines = [
        #"{"text": "The Devil's Dictionary.", "title": "one"}"#,
        #"{"title": "two", "text": "ABSURDITY, n.\nA statement or belief manifestly inconsistent with one's own opinion. \u00e9\ud83d\ude00"}"#,
        #"{"text": "", "title": ""}"#,
        "",
        #"{"text": "Last line without a newline", "title": "x"}"#,
    ]

    @Test(arguments: [1, 2]) func writesOneDocumentPerLineWithEOD(workers: Int) throws {
        let input = try Self.write(Self.lines)
        var preprocessor = Preprocessor(inputPath: input, outputPrefix: input + "-out")
        preprocessor.jsonKeys = ["text", "title"]
        preprocessor.appendEndOfDocument = true
        preprocessor.workers = workers
        let progress = try preprocessor.run(tokenizer: Self.tokenizer)
        #expect(progress.documents == 4)

        let eod = Self.tokenizer.endOfDocumentID!
        let texts = ["The Devil's Dictionary.",
                     "ABSURDITY, n.\nA statement or belief manifestly inconsistent with one's own opinion. é😀",
                     "", "Last line without a newline"]
        let titles = ["one", "two", "", "x"]
        for (key, expected) in [("text", texts), ("title", titles)] {
            let dataset = try IndexedDataset(prefix: preprocessor.datasetPrefix(key: key))
            #expect(dataset.dtype == .uint16)
            #expect(dataset.documentCount == 4)
            var sequence = 0
            for (document, text) in expected.enumerated() {
                let sequences = Int(dataset.documentIndices[document + 1] - dataset.documentIndices[document])
                if text.isEmpty {
                    #expect(sequences == 0, "empty documents have no sequence (as in Megatron)")
                    continue
                }
                #expect(sequences == 1)
                #expect(dataset.tokens(ofSequence: sequence) == Self.tokenizer.encode(text) + [eod])
                sequence += 1
            }
        }
    }

    /// `--split-sentences` with BERT's WordPiece: `_sentence` datasets whose documents are their
    /// sentences, each encoded alone; empty documents stay (no sequences).
    @Test(arguments: [1, 2]) func splitsSentencesIntoSequences(workers: Int) throws {
        let wordPiece = try WordPieceTokenizer(vocabularyFile: DataFixtures.path("wordpiece/uncased/vocab.txt"), lowerCase: true)
        let documents = [["First sentence here.", "Second one follows!", "And a third?"], [],
                         ["Dr. Who arrived.", "He left, n. b. unseen."], ["LOVE, n. A temporary insanity."]]
        let input = try Self.write(documents.map { #"{"text": ""# + $0.joined(separator: " ") + #""}"# })
        var preprocessor = Preprocessor(inputPath: input, outputPrefix: input + "-bert")
        preprocessor.splitSentences = true
        preprocessor.workers = workers
        #expect(preprocessor.datasetPrefix(key: "text") == input + "-bert_text_sentence")
        let progress = try preprocessor.run(tokenizer: wordPiece)
        #expect(progress.documents == 4)
        let dataset = try IndexedDataset(prefix: preprocessor.datasetPrefix(key: "text"))
        #expect(dataset.documentIndices == [0, 3, 3, 5, 6])
        for (sequence, sentence) in documents.joined().enumerated() {
            #expect(dataset.tokens(ofSequence: sequence) == wordPiece.encode(sentence), "\(sentence)")
        }
        preprocessor.appendEndOfDocument = true
        #expect(throws: DatasetError.self) { try preprocessor.run(tokenizer: wordPiece) }
    }

    @Test func malformedLinesStopWithTheLineNumberAndWriteNothing() throws {
        let input = try Self.write([Self.lines[0], #"{"text": "unterminated}"#, Self.lines[1]])
        var preprocessor = Preprocessor(inputPath: input, outputPrefix: input + "-out")
        do {
            _ = try preprocessor.run(tokenizer: Self.tokenizer)
            Issue.record("a malformed line must stop the run")
        } catch {
            #expect(error.description.hasPrefix("\(input):2: malformed JSON"), "\(error)")
        }
        #expect(throws: DatasetError.self) { try IndexedDataset(prefix: preprocessor.datasetPrefix(key: "text")) }

        preprocessor.jsonKeys = ["body"]
        #expect(throws: DatasetError.invalidArgument("\(input):1: no key \"body\"")) {
            try preprocessor.run(tokenizer: Self.tokenizer)
        }
    }

    @Test func readsAPipe() throws {
        let directory = DataFixtures.temporaryDirectory()
        let fifo = directory + "/input.jsonl"
        #expect(mkfifo(fifo, 0o600) == 0)
        let text = Self.lines[0] + "\n" + Self.lines[1] + "\n"
        DispatchQueue.global().async {
            let file = fopen(fifo, "w")!
            fputs(text, file)
            fclose(file)
        }
        let progress = try Preprocessor(inputPath: fifo, outputPrefix: directory + "/out").run(tokenizer: Self.tokenizer)
        #expect(progress.documents == 2)
    }

    @Test func skipInvalidCountsAndContinues() throws {
        let input = try Self.write([Self.lines[0], "not json", #"[1, 2]"#, #"{"text": 5}"#, Self.lines[1]])
        var preprocessor = Preprocessor(inputPath: input, outputPrefix: input + "-out")
        preprocessor.skipInvalid = true
        let progress = try preprocessor.run(tokenizer: Self.tokenizer)
        #expect(progress.documents == 2)
        #expect(progress.skipped == 3)
        #expect(try IndexedDataset(prefix: preprocessor.datasetPrefix(key: "text")).documentCount == 2)
    }

    /// Bytes that are not UTF-8 stop the run with the line (JSON text is UTF-8), or are skipped
    /// and counted with --skip-invalid; they never become U+FFFD silently.
    @Test func invalidUTF8IsAnErrorWithTheLine() throws {
        let input = DataFixtures.temporaryDirectory() + "/bytes.jsonl"
        let bad: [UInt8] = Array(#"{"text": "ok "#.utf8) + [0xFF, 0xFE] + Array(#" bad"}"#.utf8)
        try AtomicFile.write(Array((Self.lines[0] + "\n").utf8) + bad + [0x0A] + Array((Self.lines[1] + "\n").utf8), to: input)
        var preprocessor = Preprocessor(inputPath: input, outputPrefix: input + "-out")
        do {
            _ = try preprocessor.run(tokenizer: Self.tokenizer)
            Issue.record("invalid UTF-8 must stop the run")
        } catch {
            #expect(error.description.hasPrefix("\(input):2: malformed JSON: invalid UTF-8"), "\(error)")
        }
        preprocessor.skipInvalid = true
        let progress = try preprocessor.run(tokenizer: Self.tokenizer)
        #expect(progress.documents == 2 && progress.skipped == 1)
    }

    @Test func jsonParserHandlesEscapesAndRejectsBadSyntax() throws {
        let value = try JSONValue.parse(#" {"a": [1, -2.5e3, true, false, null], "b": "x\"\\\/\b\f\n\r\t\u0041\ud83d\ude00"} "#)
        #expect(value["a"] == .array([.number(1), .number(-2500), .bool(true), .bool(false), .null]))
        #expect(value["b"] == .string("x\"\\/\u{8}\u{C}\n\r\tA😀"))
        for bad in ["{", "{\"a\" 1}", "[1,]", "01", "\"\\x\"", "{\"a\": 1} x", "\"a\nb\"", "tru", "1.", "-"] {
            #expect(throws: JSONError.self, "\(bad)") { try JSONValue.parse(bad) }
        }
    }
}
