import Testing
@testable import Tokenizer

@Suite struct TokenizerRoundTripTests {
    @Test func byteLevelAlphabetIsABijection() {
        #expect(Set(ByteLevelAlphabet.characterForByte).count == 256)
        #expect(ByteLevelAlphabet.encode(Array(" hello".utf8)) == "Ġhello")
        #expect(ByteLevelAlphabet.decode("Ġhello") == Array(" hello".utf8))
    }
}
