#if canImport(Glibc)
import Glibc
#endif
@testable import Evaluation
import FileSupport
import Testing

/// The generic multiple-choice format and what bad task input gets: one error naming the task,
/// the document and the field.
@Suite struct TaskInputTests {
    static let fixtures = LMEvalReferenceTests.fixtures

    /// A PiQA document rewritten as `{"context", "choices", "label"}` gives PiQA's prompts.
    @Test func genericMultipleChoiceIsPiQAsFormat() throws {
        let piqa = try TaskCatalog.task(named: "piqa"), generic = try TaskCatalog.task(named: "multiple_choice")
        for (index, document) in try TaskFile.read(path: Self.fixtures + "/tasks/piqa.jsonl").enumerated() {
            let parts = try piqa.format(document, line: index + 1)
            let rewritten = JSONValue.object([
                ("context", .string(parts.texts[0])), ("choices", .array(parts.choices.map { .string($0) })),
                ("label", .number(Double(parts.gold))),
            ])
            #expect(try generic.format(rewritten, line: index + 1) == parts)
        }
        let bundled = try TaskFile.read(path: Self.fixtures + "/tasks/multiple_choice.jsonl")
        #expect(try bundled.enumerated().map { try generic.format($1, line: $0 + 1).choices.count } == Array(repeating: 3, count: bundled.count))
    }

    /// RACE's `problems` field is a Python `repr`: single or double quotes, escapes, nesting.
    @Test func pythonLiteralsAsRACEStoresThem() throws {
        let text = #"[{'question': "It's a \"test\"", 'options': ['a\'b', "c\\d", 'e\nf', '\x41\u00e9'], 'n': [1, -2.5, True, None]}, ('t',)]"#
        let value = try PythonLiteral.parse(text)
        let expected = JSONValue.array([
            .object([("question", .string(#"It's a "test""#)),
                     ("options", .array([.string("a'b"), .string(#"c\d"#), .string("e\nf"), .string("Aé")])),
                     ("n", .array([.number(1), .number(-2.5), .bool(true), .null]))]),
            .array([.string("t")]),
        ])
        #expect(value == expected)
        #expect(throws: PythonLiteral.ParseError.self) { try PythonLiteral.parse("[1, 2") }
        #expect(throws: PythonLiteral.ParseError.self) { try PythonLiteral.parse("{'a' 1}") }
    }

    @Test func badDocumentsAreNamed() throws {
        let piqa = try TaskCatalog.task(named: "piqa")
        #expect(throws: TaskError.badDocument(task: "piqa", line: 3, reason: "no \"sol2\" field")) {
            try piqa.format(try JSONValue.parse(#"{"goal": "g", "sol1": "a", "label": 0}"#), line: 3)
        }
        #expect(throws: TaskError.badDocument(task: "piqa", line: 1, reason: "label 2 is not one of the 2 choices")) {
            try piqa.format(try JSONValue.parse(#"{"goal": "g", "sol1": "a", "sol2": "b", "label": 2}"#), line: 1)
        }
        #expect(throws: TaskError.badDocument(task: "winogrande", line: 1, reason: "\"sentence\" has no _ blank")) {
            try TaskCatalog.task(named: "winogrande").format(
                try JSONValue.parse(#"{"sentence": "no blank", "option1": "a", "option2": "b", "answer": "1"}"#), line: 1)
        }
        #expect(throws: TaskError.unknownTask("mmlu")) { try TaskCatalog.task(named: "mmlu") }
    }

    @Test func aLineThatIsNotJSONIsNamed() throws {
        let path = "/tmp/megatron-task-input-\(getpid()).jsonl"
        try AtomicFile.write(Array("{\"text\": \"a b\"}\n\n{\"text\": \"c\"\n".utf8), to: path)
        defer { unlink(path) }
        #expect(throws: (any Error).self) { try TaskFile.read(path: path) }
        do { _ = try TaskFile.read(path: path) } catch {
            #expect("\(error)".contains("line 3 is not valid JSON"))
        }
    }

    /// More examples than the pool holds (besides the evaluated document) is refused up front.
    @Test func tooFewFewShotExamplesIsAnError() throws {
        let documents = try TaskFile.read(path: Self.fixtures + "/tasks/piqa_fewshot.jsonl")
        #expect(throws: TaskError.notEnoughFewShotExamples(wanted: 6, available: 5)) {
            try TaskPromptBuilder(task: try TaskCatalog.task(named: "piqa"), fewShotPool: documents, numFewShot: 6, seed: 1,
                                  excludesEvaluated: true)
        }
    }

    /// A rolling task takes no few-shot examples.
    @Test func rollingTasksRefuseFewShot() throws {
        #expect(throws: TaskError.noFewShotForRollingTask("wikitext")) {
            try TaskPromptBuilder(task: try TaskCatalog.task(named: "wikitext"), fewShotPool: [], numFewShot: 1, seed: 1)
        }
    }

    /// lm-eval's rolling windows with a one-token context, for texts shorter than, equal to and
    /// longer than the window: every token is scored once, in order; the first window follows the
    /// end-of-text token, a later full one the token before it, and a short last one reads back a
    /// whole window.
    @Test func rollingWindowsScoreEveryTokenOnce() {
        let tokenizer = RequestTokenizer(endOfText: -1) { text in text.unicodeScalars.map { Int32($0.value) } }
        let maxLength = 4
        for length in 0...13 {
            let text = String(String.UnicodeScalarView((0..<length).map { Unicode.Scalar(UInt8(97 + $0)) }))
            let tokens = text.unicodeScalars.map { Int32($0.value) }
            let requests = tokenizer.rollingRequests(text, maxLength: maxLength)
            #expect(requests.flatMap(\.continuation) == tokens, "length \(length)")
            for (index, request) in requests.enumerated() {
                #expect(request.continuation.count <= maxLength)
                #expect(request.context.count + request.continuation.count == (index == 0 ? request.continuation.count + 1 : maxLength + 1))
                if index == 0 { #expect(request.context == [-1]) }
                let start = requests[..<index].reduce(0) { $0 + $1.continuation.count }
                if index > 0 { #expect(request.context == Array(tokens[(start - request.context.count)..<start])) }
            }
        }
    }

    /// WikiText's detokenizer on the constructs it rewrites, and the words and bytes counted on
    /// the page as distributed.
    @Test func wikitextPagesAreDetokenizedAsLMEvalDoes() throws {
        let page = " = A = \n \n = = B = = \n The dogs ' 1 @,@ 250 kg ( 2 @.@ 5 t ) at 40 \u{B0} C , in [ x ] { y } \" z \" ' q ' N times ; go /' 7/ caf\u{E9} 's !\n"
        let formatted = try TaskCatalog.task(named: "wikitext").format(.object([("page", .string(page))]), line: 1)
        // What lm-eval's wikitext_detokenizer returns for this page (its quote pattern pairs the
        // possessive's quote with the next one).
        #expect(formatted.target == " = A =\n\n== B ==\nThe dogs'1,250 kg (2.5 t) at 40\u{B0}C, in [x] {y} \"z\"' q 'N times; go /'[0-9]/ caf\u{E9}'s !\n")
        #expect(formatted.words == 50 && formatted.bytes == page.utf8.count)
    }
}
