import FileSupport
import Testing
import Tokenizer

/// The real GPT-2 vocabulary (data/gpt2) against ids from Hugging Face `tokenizers` and
/// `tiktoken` (Fixtures/tokenizer/hard_texts_gpt2.json).
@Suite struct TokenizerGPT2Tests {
    static let repository: String = {
        var path = DataFixtures.directory
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path
    }()

    @Test func gpt2VocabularyEncodesLikeTiktoken() throws {
        let tokenizer = try Tokenizer.load(vocabFile: Self.repository + "/data/gpt2/gpt2-vocab.json",
                                           mergesFile: Self.repository + "/data/gpt2/gpt2-merges.txt",
                                           splitSpecialTokens: true)  // as HF and tiktoken, which made the ids
        #expect(tokenizer.vocabularySize == 50257)
        #expect(tokenizer.endOfDocumentID == 50256)
        try TokenizerFixtureTests.expectEncodes(
            tokenizer, cases: DataFixtures.json("tokenizer/hard_texts_gpt2.json")["encode"]!.array)
    }
}
