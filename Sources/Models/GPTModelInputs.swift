import Kernels

/// A micro-batch's inputs checked against the model (ids in the vocabulary, the sequence within
/// the positions and, with sequence parallelism, divisible over the group) and copied into its
/// activations.
extension GPTModel {
    /// Checks a micro-batch's ids and copies its tokens, targets and loss mask into `acts` (the
    /// first chunk reads the tokens, the last the targets and mask).
    public func load(tokens: UnsafePointer<Int32>, targets: UnsafePointer<Int32>, lossMask: UnsafePointer<Float>?,
                     into acts: GPTActivations) throws(GPTInputError) {
        let n = acts.batch * acts.seqLength
        try validate(tokens: tokens, targets: targets, count: n, seqLength: acts.seqLength)
        MemoryCopy.copy(to: acts.tokens.pointer, from: tokens, count: n)
        MemoryCopy.copy(to: acts.targets.pointer, from: targets, count: n)
        acts.hasLossMask = lossMask != nil
        if let lossMask { MemoryCopy.copy(to: acts.lossMask.pointer, from: lossMask, count: n) }
    }

    private func validate(tokens: UnsafePointer<Int32>, targets: UnsafePointer<Int32>, count: Int,
                          seqLength: Int) throws(GPTInputError) {
        if seqLength > config.maxPositionEmbeddings {
            throw .sequenceTooLong(seqLength: seqLength, maxPositionEmbeddings: config.maxPositionEmbeddings)
        }
        if region.sequenceParallel && seqLength % region.size != 0 {
            throw .sequenceNotDivisible(seqLength: seqLength, tensorParallel: region.size)
        }
        let vocab = Int32(config.acceptedVocabularySize)
        for i in 0..<count {
            if tokens[i] < 0 || tokens[i] >= vocab {
                throw .tokenOutOfRange(position: i, id: Int(tokens[i]), vocabSize: Int(vocab))
            }
            if (targets[i] < 0 || targets[i] >= vocab) && targets[i] != CrossEntropy.ignoreIndex {
                throw .targetOutOfRange(position: i, id: Int(targets[i]), vocabSize: Int(vocab))
            }
        }
    }
}
