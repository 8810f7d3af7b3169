import Datasets
import FileSupport
import Testing

/// megatron-core's BERT sample mapping (`helpers.build_mapping`) on random documents with empty,
/// one-sentence and long-sentence documents, for several lengths, probabilities, seeds and epoch
/// settings (Fixtures/bert/sample_index.json, scripts/reference/bert_sample_index_fixture.py).
@Suite struct BERTSampleIndexTests {
    @Test func matchesMegatronCore() throws {
        let fixture = try DataFixtures.json("bert/sample_index.json")
        let documents = fixture["document_indices"]!.array.map { Int64($0.number!) }
        let lengths = fixture["sentence_lengths"]!.int32s
        let cases = fixture["cases"]!.array
        #expect(cases.count == 4)
        for item in cases {
            let parameters = BERTSampleIndex.Parameters(
                epochs: Int(item["epochs"]!.number!), maxSamples: UInt64(item["max_samples"]!.number!),
                maxSequenceLength: Int32(item["max_sequence_length"]!.number!),
                shortSequenceProbability: item["short_sequence_probability"]!.number!, seed: Int32(item["seed"]!.number!),
                minSentences: Int32(item["min_sentences"]!.number!))
            let samples = BERTSampleIndex.build(documentIndices: documents, sentenceLengths: lengths, parameters: parameters)
            let flat = samples.flatMap { [$0.first, $0.end, $0.targetLength] }
            #expect(flat == item["mapping"]!.array.map { Int($0.number!) }, "seed \(item["seed"]!.number!)")
        }
    }

    /// The C++ standard's check of each engine: the 10000th output of a default-seeded one.
    @Test func mersenneTwistersMatchTheCppStandard() {
        var generator64 = MersenneTwister64(seed: 5489)
        var generator32 = MersenneTwister(seed: 5489)
        var last64: UInt64 = 0, last32: UInt32 = 0
        for _ in 0..<10000 {
            last64 = generator64.next64()
            last32 = generator32.next32()
        }
        #expect(last64 == 9_981_545_732_273_789_042)
        #expect(last32 == 4_123_659_995)
    }
}
