import Datasets
import Testing
@testable import Tokenizer

/// Our BPE trainer against Hugging Face's `BpeTrainer` on the bundled corpus
/// (Fixtures/tokenizer/trainer_compression.json): tokens per byte within 1%.
@Suite struct BPETrainerTests {
    static let corpus = TokenizerGPT2Tests.repository + "/data/devils-dictionary/devils_dictionary.jsonl"

    @Test func compressesLikeHuggingFacesTrainer() throws {
        var documents = [String]()
        try TextDocuments.forEach(in: Self.corpus) { documents.append($0) }
        let bytes = documents.reduce(0) { $0 + $1.utf8.count }
        for reference in try DataFixtures.json("tokenizer/trainer_compression.json").array {
            let size = Int(reference["vocab_size"]!.number!)
            var trainer = BPETrainer(vocabularySize: size, minimumFrequency: 0)
            for document in documents { trainer.add(document) }
            let tokenizer = try trainer.train()
            #expect(tokenizer.vocabularySize == Int(reference["final_vocab_size"]!.number!))
            var encoder = tokenizer.makeEncoder()
            var tokens = 0
            for document in documents {
                var ids = [Int32]()
                encoder.encode(document, into: &ids)
                tokens += ids.count
            }
            let ours = Double(tokens) / Double(bytes)
            let theirs = reference["tokens_per_byte"]!.number!
            print("vocab \(size): \(tokens) tokens, \(ours) tokens/byte vs Hugging Face \(theirs)")
            #expect(abs(ours / theirs - 1) < 0.01, "vocab \(size)")
        }
    }

    @Test func reproducesHuggingFacesVocabularyAndMerges() throws {
        var trainer = BPETrainer(vocabularySize: 2048, minimumFrequency: 0)
        try TextDocuments.forEach(in: Self.corpus) { trainer.add($0) }
        let ours = try trainer.train()
        let theirs = try Tokenizer.load(tokenizerFile: DataFixtures.path("tokenizer/tokenizer.json"))
        #expect(ours.tokens == theirs.tokens)
        #expect(ours.mergeRules.map(\.merged) == theirs.mergeRules.map(\.merged))
    }

    @Test func trainedVocabularyStartsWithAddedTokensAndBytes() throws {
        var trainer = BPETrainer(vocabularySize: 300)
        for _ in 0..<3 { trainer.add("low lower lowest newer wider <|endoftext|>") }
        let tokenizer = try trainer.train()
        #expect(tokenizer.tokens[0] == "<|endoftext|>")
        #expect(tokenizer.tokens[1] == "!")  // byte characters sorted by code point
        #expect(tokenizer.vocabularySize <= 300)
        #expect(tokenizer.tokens.contains("Ġlow"))
        let text = "lowest newer"
        #expect(try tokenizer.decode(tokenizer.encode(text)) == text)
        #expect(throws: TokenizerError.self) { try BPETrainer(vocabularySize: 100).train() }
    }
}
