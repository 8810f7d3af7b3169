/// Where megatron-core's distributed optimizer keeps each parameter's state in a legacy
/// `distrib_optim.pt`: the flat tensors there are one model chunk's parameter-and-gradient
/// buffer with each bucket's end padding taken out (`buckets_coalesced`), so a parameter's place
/// depends on how the buffer was cut into buckets, which the file does not record. It follows from
/// the run's arguments as megatron-core's `_ParamAndGradBuffer` lays the buffer out:
/// - the parameters from last to first, each starting at the next multiple of 64 elements;
/// - a bucket closes after the parameter that brings it to `bucketSize` elements or more
///   (`--overlap-grad-reduce`; `--ddp-bucket-size`, by default max(4e7, 1e6 x DP)); only the
///   first pipeline stage's first model chunk is cut so (the other stages' are not on the
///   critical path);
/// - under pipeline parallelism with tied embeddings the word embedding (first stage) and its copy
///   (last stage) each get a bucket of their own;
/// - each bucket ends padded to a multiple of 128 elements and DP, which the saved tensors drop.
struct MegatronLMBufferLayout {
    /// Each parameter's first element in the coalesced tensors, in the order given.
    let starts: [Int]
    /// The coalesced tensors' length (megatron-core's `numel_unpadded`).
    let count: Int

    /// The layout of parameters of `counts` elements in `named_parameters` order; `ownBucket`
    /// marks those that get a bucket of their own; `bucketSize` nil for one bucket.
    init(counts: [Int], ownBucket: [Bool], bucketSize: Int?) {
        var starts = [Int](repeating: 0, count: counts.count)
        var coalesced = 0  // the closed buckets' unpadded elements
        var bucketStart = 0, next = 0, bucketIsEmpty = true
        // Closes the open bucket at `end` (in the padded buffer); returns where the next one starts.
        func close(at end: Int) -> Int {
            coalesced += end - bucketStart
            bucketStart = (end + 127) / 128 * 128  // a multiple of 64 whatever DP pads to, which is all placing needs
            bucketIsEmpty = true
            return bucketStart
        }
        for i in counts.indices.reversed() {
            next = (next + 63) / 64 * 64
            if ownBucket[i] && !bucketIsEmpty { next = close(at: next) }
            starts[i] = coalesced + next - bucketStart
            bucketIsEmpty = false
            let end = next + counts[i]
            next = (bucketSize.map { end - bucketStart >= $0 } ?? false) || ownBucket[i] ? close(at: end) : end
        }
        if !bucketIsEmpty { _ = close(at: next) }
        self.starts = starts
        self.count = coalesced
    }
}
