import Dispatch
import Kernels
import Testing
import TestSupport

/// Rank threads call the bf16 GEMM side by side: the primitive cache (first use of a shape raced
/// by several threads) and the stream pool must give every caller its own correct result.
@Suite struct BF16MatmulConcurrencyTests {
    @Test func concurrentCallersGetTheirOwnResults() {
        let (rows, inF, outF) = (41, 67, 23)  // a shape no other test creates first
        let callers = 4
        let inputs = (0..<callers).map { BFloat16Buffer(rounding: randomFloats(rows * inF, seed: 600 + UInt64($0)),
                                                        count: rows * inF) }
        let weight = BFloat16Buffer(rounding: randomFloats(outF * inF, seed: 700), count: outF * inF)
        let expected: [[Float]] = (0..<callers).map { caller in
            var y = [Float](repeating: 0, count: rows * outF)
            BF16Matmul.forward(out: &y, inp: inputs[caller].pointer, weight: weight.pointer, bias: nil, rows: rows,
                               inFeatures: inF, outFeatures: outF, backend: .widenedSGEMM)
            return y
        }
        let outputs = (0..<callers).map { _ in BFloat16TestOutput(count: rows * outF) }
        withSingleThreadedBLAS {
            DispatchQueue.concurrentPerform(iterations: callers) { caller in
                for _ in 0..<20 {
                    BF16Matmul.forward(out: outputs[caller].pointer, inp: inputs[caller].pointer, weight: weight.pointer,
                                       bias: nil, rows: rows, inFeatures: inF, outFeatures: outF)
                }
            }
        }
        for caller in 0..<callers {
            #expect(relativeError(outputs[caller].array, expected[caller]) < 1e-6, "caller \(caller)")
        }
    }
}

/// An fp32 output buffer that concurrent callers may write (each its own).
final class BFloat16TestOutput: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: count)
        pointer.initialize(repeating: .nan, count: count)
    }
    deinit { pointer.deallocate() }
    var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}
