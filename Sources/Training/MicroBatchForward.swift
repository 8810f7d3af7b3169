import Datasets
import Kernels
import Models

extension GPTModel {
    /// Forward of the whole model over a micro-batch from a `MicroBatchLoader` (masked-mean loss
    /// against its labels).
    @discardableResult
    public func forward(_ batch: MicroBatch) throws(GPTInputError) -> CrossEntropy.Totals {
        try batch.withPointers { tokens, labels, mask throws(GPTInputError) in
            try forward(tokens: tokens, targets: labels, lossMask: mask, batch: batch.batchSize, seqLength: batch.sequenceLength)
        }
    }

    /// Checks and copies a loader's micro-batch into `acts` (see `load(tokens:targets:lossMask:into:)`).
    func load(_ batch: MicroBatch, into acts: GPTActivations) throws(GPTInputError) {
        try batch.withPointers { tokens, labels, mask throws(GPTInputError) in
            try load(tokens: tokens, targets: labels, lossMask: mask, into: acts)
        }
    }
}

extension MicroBatch {
    /// Calls `body` with pointers to the tokens, labels and loss mask.
    func withPointers<R>(_ body: (UnsafePointer<Int32>, UnsafePointer<Int32>, UnsafePointer<Float>) throws(GPTInputError) -> R)
        throws(GPTInputError) -> R {
        let result: Result<R, GPTInputError> = tokens.withUnsafeBufferPointer { tokens in
            labels.withUnsafeBufferPointer { labels in
                lossMask.withUnsafeBufferPointer { mask in
                    Result { () throws(GPTInputError) in try body(tokens.baseAddress!, labels.baseAddress!, mask.baseAddress!) }
                }
            }
        }
        return try result.get()
    }
}
