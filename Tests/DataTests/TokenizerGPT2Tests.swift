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
                                           mergesFile: Self.repository + "/data/gpt2/gpt2-merges.txt")
        #expect(tokenizer.vocabularySize == 50257)
        #expect(tokenizer.endOfDocumentID == 50256)
        let cases = try DataFixtures.json("tokenizer/hard_texts_gpt2.json")["encode"]!.array
        #expect(cases.count > 30)
        var encoder = tokenizer.makeEncoder()
        for item in cases {
            let text = item["text"]!.string!
            var ids = [Int32]()
            encoder.encode(text, into: &ids)
            #expect(ids == item["ids"]!.int32s, "text: \(text.debugDescription)")
            #expect(try tokenizer.decode(ids) == text)
        }
    }
}
