import FileSupport
import Foundation
import Testing
@testable import Tokenizer

/// BERT's WordPiece tokenizer against Google BERT's `FullTokenizer` (what Megatron-LM's
/// `BertWordPieceLowerCase` / `BertWordPieceCase` run) and Hugging Face tokenizers'
/// `BertTokenizerFast`, on hard texts with cased and uncased vocabularies trained on the corpus
/// (Fixtures/wordpiece, scripts/reference/wordpiece_fixtures.py).
@Suite struct WordPieceTests {
    static func tokenizer(_ vocabulary: String) throws -> WordPieceTokenizer {
        try WordPieceTokenizer(vocabularyFile: DataFixtures.path("wordpiece/\(vocabulary)/vocab.txt"),
                               lowerCase: vocabulary == "uncased")
    }

    @Test func matchesMegatronsTokenizerOnHardTexts() throws {
        let tokenizers = ["uncased": try Self.tokenizer("uncased"), "cased": try Self.tokenizer("cased")]
        let cases = try DataFixtures.json("wordpiece/cases.json").array
        #expect(cases.count == 36)
        for item in cases {
            let text = item["text"]!.string!, vocabulary = item["vocab"]!.string!
            let ours = tokenizers[vocabulary]!.encode(text)
            #expect(ours == item["megatron"]!.int32s, "\(vocabulary): \(text.debugDescription)")
        }
    }

    /// Hugging Face differs from Megatron only where its documented differences apply: special
    /// tokens spelled in the text, capital sigma ending a word, and words of 101-200 code points.
    @Test func differsFromHuggingFaceOnlyWhereDocumented() throws {
        let tokenizers = ["uncased": try Self.tokenizer("uncased"), "cased": try Self.tokenizer("cased")]
        var differing = [String]()
        for item in try DataFixtures.json("wordpiece/cases.json").array {
            let text = item["text"]!.string!, vocabulary = item["vocab"]!.string!
            if tokenizers[vocabulary]!.encode(text) != item["huggingface"]!.int32s { differing.append("\(vocabulary): \(text.prefix(12))") }
        }
        #expect(differing == ["uncased: Ångström übe", "uncased: xxxxxxxxxxxx", "uncased: ##hash ## #t",
                              "cased: xxxxxxxxxxxx", "cased: ##hash ## #t"])
    }

    @Test func splitsWordsIntoLongestPieces() throws {
        let tokenizer = try WordPieceTokenizer(tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff",
                                                        "##able", "aff", "##a", ",", "runn", "##ing"], lowerCase: true)
        #expect(tokenizer.encode("Unaffable, RUNNING") == [5, 6, 7, 10, 11, 12])
        #expect(tokenizer.encode("unaffablex") == [1], "no piece for the tail: the whole word is [UNK]")
        #expect(tokenizer.encode(String(repeating: "a", count: 201)) == [1])
        #expect(try tokenizer.decode([5, 6, 7, 10, 11, 12]) == "unaffable , running")
        #expect(throws: TokenizerError.self) { try tokenizer.decode([13]) }
    }

    @Test func readsVocabularyLinesAsBERTDoes() {
        #expect(WordPieceTokenizer.vocabularyLines("a\r\n b \rc\n\n##d") == ["a", "b", "c", "", "##d"])
        #expect(WordPieceTokenizer.vocabularyLines("x\n") == ["x"])
    }

    @Test func aVocabularyWithoutTheSpecialTokensIsRefused() throws {
        let directory = DataFixtures.temporaryDirectory()
        let path = directory + "/vocab.txt"
        try AtomicFile.write(Array("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n".utf8), to: path)
        #expect(throws: TokenizerError.malformed(path: path, reason: "the vocabulary has no [MASK] token")) {
            try WordPieceTokenizer(vocabularyFile: path, lowerCase: true)
        }
        #expect(throws: TokenizerError.self) { try WordPieceTokenizer(vocabularyFile: directory + "/missing.txt", lowerCase: true) }
    }

    @Test func lowerCasesAsPython() {
        let lowered = BertBasicTokenizer.pythonLowercased(Array("ΣΊΣΥΦΟΣ ΟΔΟΣ. Σ İ".unicodeScalars))
        #expect(String(scalars: lowered) == "σίσυφος οδος. σ i\u{307}")
    }
}
