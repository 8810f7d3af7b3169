import Kernels
@testable import Models
import Parameters
import Testing
import TestSupport

/// In bf16 and fp16 the embedding output is the rounded sum of the *rounded* word and position
/// rows (BERT's: that, rounded, plus the rounded token-type row, rounded again), as Megatron's
/// bf16 and fp16 models look tokens up in their low-precision weights and add in that
/// precision; so a model whose fp32 master weights live in the distributed optimizer needs no
/// fp32 copy of the embeddings.
@Suite struct LowPrecisionEmbeddingTests {
    /// `value` rounded to `precision` (fp32: itself).
    static func rounded(_ value: Float, _ precision: ComputePrecision) -> Float {
        switch precision {
        case .fp32: value
        case .bf16: BFloat16(value).float
        case .fp16: Float(Float16(value))
        }
    }

    /// The embedding output of `model`'s last forward against rows summed from `tables` (layout
    /// indices, each with the row index of every token) in `precision`, as Megatron sums them:
    /// the first two, then each further one, rounded after each sum.
    static func expectEmbedded(_ model: GPTModel, rows n: Int, tables: [(index: Int, row: (Int) -> Int)],
                               precision: ComputePrecision) throws {
        let c = model.config.hiddenSize
        let embedded = try #require(model.activations).embedded.pointer
        var mismatches = 0, differsFromFP32 = 0
        for r in 0..<n {
            for i in 0..<c {
                var sum: Float = 0, exact: Float = 0
                for (k, table) in tables.enumerated() {
                    let weight = model.params.pointer(at: table.index)[table.row(r) * c + i]
                    sum = (k < 2 ? sum : rounded(sum, precision)) + rounded(weight, precision)
                    exact += weight
                }
                if embedded[r * c + i].bitPattern != rounded(sum, precision).bitPattern { mismatches += 1 }
                if embedded[r * c + i] != rounded(exact, precision) { differsFromFP32 += 1 }
            }
        }
        #expect(mismatches == 0, "\(mismatches) of \(n * c) embedded values")
        // The weights' own rounding shows: a lookup in fp32 would differ here.
        #expect(differsFromFP32 > 0)
    }

    @Test(arguments: [ComputePrecision.bf16, .fp16])
    func gptEmbedsTheRoundedWeights(precision: ComputePrecision) throws {
        let model = try ActivationReuseTests.model(precision)
        let batch = 2, length = 9
        var random = RandomGenerator(seed: 5)
        let tokens = (0..<batch * length).map { _ in Int32(random.next() % 150) }
        _ = try model.forward(tokens: tokens, targets: tokens, batch: batch, seqLength: length)
        let words = model.layout.index(of: wordEmbeddingName)!, positions = model.layout.index(of: positionEmbeddingName)!
        try Self.expectEmbedded(model, rows: batch * length, tables: [(words, { Int(tokens[$0]) }), (positions, { $0 % length })],
                                precision: precision)
    }

    @Test func bertEmbedsTheRoundedTokenTypesToo() throws {
        let fixture = try BERTReferenceFixture()
        let model = try fixture.model("pre", precision: .bf16)
        let batch = fixture.batch
        _ = try model.forward(bert: batch)
        let tables: [(index: Int, row: (Int) -> Int)] = [
            (model.layout.index(of: wordEmbeddingName)!, { Int(batch.tokens[$0]) }),
            (model.layout.index(of: positionEmbeddingName)!, { $0 % batch.seqLength }),
            (model.layout.index(of: tokenTypeEmbeddingName)!, { Int(batch.tokenTypes[$0]) }),
        ]
        try Self.expectEmbedded(model, rows: batch.batch * batch.seqLength, tables: tables, precision: .bf16)
    }
}
