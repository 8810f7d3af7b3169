import Datasets
import FileSupport
import Testing
import Tokenizer

/// megatron-core's BERT samples (segments, sentence-order swap, truncation, n-gram and whole-word
/// masking with 80/10/10 replacement) for the same sentences, sample index and seed, under three
/// settings (Fixtures/bert/samples.json, scripts/reference/bert_sample_fixture.py).
@Suite struct BERTSampleTests {
    @Test func matchesMegatronCore() throws {
        let fixture = try DataFixtures.json("bert/samples.json")
        let vocabulary = try WordPieceTokenizer(vocabularyFile: DataFixtures.path("wordpiece/uncased/vocab.txt"), lowerCase: true)
        let sentences = fixture["sentences"]!.array.map(\.int32s)
        let documents = fixture["document_indices"]!.array.map { Int64($0.number!) }
        let cases = fixture["cases"]!.array
        #expect(cases.count == 3)
        var maskedTokens = 0
        for item in cases {
            let head = item["classification_head"]! == .bool(true)
            let length = Int(item["sequence_length"]!.number!), seed = Int(item["seed"]!.number!)
            let parameters = BERTSampleIndex.Parameters(epochs: 1, maxSamples: UInt64.max, maxSequenceLength: Int32(length - 3),
                                                        shortSequenceProbability: 0.1, seed: Int32(seed), minSentences: head ? 2 : 1)
            let index = BERTSampleIndex.build(documentIndices: documents, sentenceLengths: sentences.map { Int32($0.count) },
                                              parameters: parameters)
            #expect(index.flatMap { [$0.first, $0.end, $0.targetLength] } == item["mapping"]!.array.map { Int($0.number!) })
            var builder = BERTSampleBuilder(cls: vocabulary.classID, sep: vocabulary.separatorID, mask: vocabulary.maskID,
                                            pad: vocabulary.padID, isContinuation: vocabulary.tokens.map { $0.hasPrefix("##") },
                                            sequenceLength: length, seed: seed, classificationHead: head)
            builder.maxNgram = Int(item["max_ngram"]!.number!)
            builder.wholeWordMasking = item["whole_word"]! == .bool(true)
            builder.longerNgrams = item["longer_ngrams"]! == .bool(true)
            for (i, expected) in item["samples"]!.array.enumerated() {
                let entry = index[i]
                let sample = builder.sample(index: i, sentences: Array(sentences[entry.first..<entry.end]),
                                            targetLength: entry.targetLength)
                func ints(_ key: String) -> [Int64] { expected[key]!.array.map { Int64($0.number!) } }
                #expect(sample.text == ints("text"), "seed \(seed) sample \(i)")
                #expect(sample.types == ints("types"), "seed \(seed) sample \(i)")
                #expect(sample.labels == ints("labels"), "seed \(seed) sample \(i)")
                #expect(sample.paddingMask == ints("padding_mask"), "seed \(seed) sample \(i)")
                #expect(sample.lossMask == ints("loss_mask"), "seed \(seed) sample \(i)")
                #expect(sample.isRandom == (expected["is_random"]!.number! == 1), "seed \(seed) sample \(i)")
                #expect(sample.truncated == (expected["truncated"]!.number! == 1), "seed \(seed) sample \(i)")
                maskedTokens += Int(sample.lossMask.reduce(0, +))
            }
        }
        #expect(maskedTokens == 374 + 246 + 331)
    }
}
