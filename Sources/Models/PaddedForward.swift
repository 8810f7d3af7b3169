import Kernels

extension GPTModel {
    /// Runs a whole model's forward over `sequences` side by side, each padded on the right to the
    /// longest (with token 0, no targets): the attention is causal, so the padding changes nothing
    /// before it, and `logits` row `b * length + i` predicts what follows token `i` of sequence
    /// `b`. Returns that padded `length`. How lm-evaluation-harness's `hf` model batches its
    /// requests, and how `megatron serve` scores prompts that arrive together.
    @discardableResult
    public func forward(padded sequences: [[Int32]]) throws(GPTInputError) -> Int {
        let batch = sequences.count, length = sequences.map(\.count).max() ?? 0
        var tokens = [Int32](repeating: 0, count: batch * length)
        for (b, sequence) in sequences.enumerated() {
            for (i, token) in sequence.enumerated() { tokens[b * length + i] = token }
        }
        let targets = [Int32](repeating: CrossEntropy.ignoreIndex, count: batch * length)
        try tokens.withUnsafeBufferPointer { x throws(GPTInputError) in
            try targets.withUnsafeBufferPointer { y throws(GPTInputError) in
                _ = try forward(tokens: x.baseAddress!, targets: y.baseAddress!, batch: batch, seqLength: length)
            }
        }
        return length
    }
}
