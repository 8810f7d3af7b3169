import Kernels

/// The whole model's forward and backward over one micro-batch (evaluation, scoring, serving and
/// one-rank training), in the model's own activations: a shape with fewer tokens reuses the set
/// it has (scoring and evaluation vary the shape every forward), a larger one replaces it.
extension GPTModel {
    /// Logits `[batch, seqLength, paddedVocabSize]` of the last `forward`, valid until `backward`
    /// (which overwrites them with their gradient).
    public var logits: UnsafeMutablePointer<Float> {
        guard let activations else { preconditionFailure("logits read before forward") }
        return activations.logits.pointer
    }

    /// Runs `tokens` (`[batch, seqLength]`) through the whole model and returns the masked mean
    /// cross-entropy against `targets` (ids, or `CrossEntropy.ignoreIndex`), weighted by
    /// `lossMask` when given. Keeps what `backward` needs. A training forward passes the run-wide
    /// index of the batch's first sample as `dropoutSample` (configured dropouts then apply).
    /// Throws, before computing anything, when a token or target id is outside the vocabulary or
    /// the sequence is too long.
    @discardableResult
    public func forward(tokens: UnsafePointer<Int32>, targets: UnsafePointer<Int32>,
                        lossMask: UnsafePointer<Float>? = nil, batch: Int,
                        seqLength: Int, dropoutSample: Int? = nil) throws(GPTInputError) -> CrossEntropy.Totals {
        precondition(part.isWhole, "the whole-model forward needs the whole model; a pipeline stage runs forward(chunk:)")
        precondition(config.bert == nil, "a BERT model runs forward(bert:)")
        let acts: GPTActivations
        if let existing = activations, existing.reshape(batch: batch, seqLength: seqLength) {
            acts = existing  // same shape, or fewer tokens (scoring and evaluation vary the shape every forward)
        } else {
            activations = nil  // free the old set before allocating the new one
            acts = makeActivations(chunk: 0, batch: batch, seqLength: seqLength)
            activations = acts
        }
        try load(tokens: tokens, targets: targets, lossMask: lossMask, into: acts)
        acts.dropoutSample = dropoutSample
        return forward(chunk: 0, activations: acts)!
    }

    /// Adds the gradient of `gradientScale * loss` (the loss of the last `forward`) to `grads`.
    /// With gradient accumulation over k micro-batches of equal weight, pass 1/k.
    public func backward(gradientScale: Float = 1) {
        guard let activations else { preconditionFailure("backward called without a forward") }
        backward(chunk: 0, activations: activations, gradientScale: gradientScale)
    }
}
