import FileSupport
import Testing
@testable import Tokenizer

/// Our tokenizer against Hugging Face `tokenizers` on hard texts (fixtures from
/// scripts/reference/tokenizer_fixtures.py).
@Suite struct TokenizerFixtureTests {
    static let tokenizerJSON = DataFixtures.path("tokenizer/tokenizer.json")

    @Test func encodesHardTextsLikeHuggingFace() throws {
        let tokenizer = try Tokenizer.load(tokenizerFile: Self.tokenizerJSON)
        try Self.expectEncodes(tokenizer, cases: DataFixtures.json("tokenizer/hard_texts.json")["encode"]!.array)
    }

    /// Each case's text encodes to its ids and decodes back to the text.
    static func expectEncodes(_ tokenizer: Tokenizer, cases: [JSONValue]) throws {
        #expect(cases.count > 30)
        var encoder = tokenizer.makeEncoder()
        for item in cases {
            let text = item["text"]!.string!
            var ids = [Int32]()
            encoder.encode(text, into: &ids)
            #expect(ids == item["ids"]!.int32s, "text: \(text.debugDescription)")
            #expect(try tokenizer.decode(ids) == text, "round trip: \(text.debugDescription)")
        }
    }

    @Test func gpt2FilesEncodeLikeTokenizerJSON() throws {
        let fromJSON = try Tokenizer.load(tokenizerFile: Self.tokenizerJSON)
        let fromGPT2 = try Tokenizer.load(vocabFile: DataFixtures.path("tokenizer/vocab.json"),
                                          mergesFile: DataFixtures.path("tokenizer/merges.txt"), splitSpecialTokens: true)
        #expect(fromGPT2.vocabularySize == fromJSON.vocabularySize)
        for item in try DataFixtures.json("tokenizer/hard_texts.json")["encode"]!.array {
            let text = item["text"]!.string!
            #expect(fromGPT2.encode(text) == fromJSON.encode(text), "text: \(text.debugDescription)")
        }
    }

    @Test func decodesPartialCharactersLikeHuggingFace() throws {
        let tokenizer = try Tokenizer.load(tokenizerFile: Self.tokenizerJSON)
        for item in try DataFixtures.json("tokenizer/hard_texts.json")["decode"]!.array {
            let ids = item["ids"]!.int32s
            #expect(try tokenizer.decode(ids) == item["text_keep_special"]!.string!, "ids: \(ids)")
        }
    }

    @Test func savedFilesReloadIdentically() throws {
        let tokenizer = try Tokenizer.load(tokenizerFile: Self.tokenizerJSON)
        let directory = DataFixtures.temporaryDirectory()
        try tokenizer.save(to: directory)
        let reloaded = try Tokenizer.load(tokenizerFile: directory + "/tokenizer.json")
        let gpt2 = try Tokenizer.load(vocabFile: directory + "/vocab.json", mergesFile: directory + "/merges.txt",
                                      splitSpecialTokens: true)
        #expect(reloaded.tokens == tokenizer.tokens)
        let text = "The Devil's Dictionary, 1911: ÆSTHETE, n. — “a dabbler” 🎩  <|endoftext|>end"
        #expect(reloaded.encode(text) == tokenizer.encode(text))
        #expect(gpt2.encode(text) == tokenizer.encode(text))
    }

    @Test func gpt2FilesKeepSpecialTextLiteralLikeMegatronAndAcceptCRLF() throws {
        let directory = DataFixtures.temporaryDirectory()
        let merges = try MappedFile.read(path: DataFixtures.path("tokenizer/merges.txt"))
        var crlf = [UInt8]()
        for byte in merges { if byte == 0x0A { crlf.append(0x0D) }; crlf.append(byte) }
        try AtomicFile.write(crlf, to: directory + "/merges.txt")
        let megatron = try Tokenizer.load(vocabFile: DataFixtures.path("tokenizer/vocab.json"),
                                          mergesFile: directory + "/merges.txt")
        let reference = try Tokenizer.load(tokenizerFile: Self.tokenizerJSON)
        #expect(megatron.encode("The Devil's Dictionary") == reference.encode("The Devil's Dictionary"))
        let eod = try #require(megatron.endOfDocumentID)
        #expect(!megatron.encode("end<|endoftext|>start").contains(eod))
        #expect(reference.encode("end<|endoftext|>start").contains(eod))
        #expect(try megatron.decode(megatron.encode("a <|endoftext|> b")) == "a <|endoftext|> b")
    }

    @Test func badFilesAreClearErrors() throws {
        let directory = DataFixtures.temporaryDirectory()
        try AtomicFile.write(Array("{\"a\": 0, ".utf8), to: directory + "/vocab.json")
        try AtomicFile.write(Array("#version: 0.2\na b\n".utf8), to: directory + "/merges.txt")
        #expect(throws: TokenizerError.self) {
            try Tokenizer.load(vocabFile: directory + "/vocab.json", mergesFile: directory + "/merges.txt")
        }
        try AtomicFile.write(Array("{\"a\": 0, \"b\": 1}".utf8), to: directory + "/vocab.json")
        do {
            _ = try Tokenizer.load(vocabFile: directory + "/vocab.json", mergesFile: directory + "/merges.txt")
            Issue.record("a merge of tokens whose result is missing must fail")
        } catch {
            #expect(error.description.contains("merge rule 1"))
        }
        #expect(throws: TokenizerError.self) { try Tokenizer.load(tokenizerFile: directory + "/missing.json") }
        let tokenizer = try Tokenizer.load(tokenizerFile: Self.tokenizerJSON)
        #expect(throws: TokenizerError.self) { try tokenizer.decode([Int32(tokenizer.vocabularySize)]) }
        // An id that does not fit the tokenizer's ids is named as such, not as invalid JSON.
        try AtomicFile.write(Array("{\"a\": 0, \"b\": 4294967301}".utf8), to: directory + "/vocab.json")
        #expect(throws: TokenizerError.malformed(path: directory + "/vocab.json",
                                                 reason: "token \"b\" has id 4294967301, outside 0...2147483647")) {
            try Tokenizer.load(vocabFile: directory + "/vocab.json", mergesFile: directory + "/merges.txt")
        }
        // Saving into a path that is a file says it cannot write there.
        do {
            try tokenizer.save(to: directory + "/vocab.json")
            Issue.record("saving into a file must fail")
        } catch {
            #expect(error.description.hasPrefix("cannot write \(directory)/vocab.json/"), "\(error)")
        }
    }
}
