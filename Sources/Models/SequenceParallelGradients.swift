import Parameters

extension GPTModel {
    /// Whether the run splits the residual region's tokens over the tensor-parallel group.
    public var sequenceParallel: Bool { region.sequenceParallel }

    /// Indices (in `layout`) of the tensors whose gradient each tensor-parallel rank computes from
    /// its own tokens only under sequence parallelism: the layers' and the final LayerNorms'
    /// weights and biases, BERT's token-type embedding (added to each rank's rows after the
    /// embedding's reduce-scatter) and BERT's masked-LM dense layer and LayerNorm (run on each
    /// rank's tokens, as Megatron's). Every other replicated tensor (the row-parallel biases, the
    /// position embedding, BERT's pooled head, which reads the gathered rows) gets its gradient
    /// whole on every rank.
    var sequenceParallelPartialTensors: [Int] {
        layout.specs.indices.filter {
            let name = layout.specs[$0].name
            return name.contains("layernorm.") || name == tokenTypeEmbeddingName
                || BERTMaskedLMHead.tokenLocalTensorNames.contains(name)
        }
    }

    /// Floats of the gradients `allReduceSequenceParallelGradients` sums (0 without sequence parallelism).
    public var sequenceParallelGradientCount: Int {
        region.sequenceParallel ? sequenceParallelPartialTensors.reduce(0) { $0 + layout.specs[$1].count } : 0
    }

    /// With sequence parallelism, sums the LayerNorm gradients over the tensor-parallel group so
    /// that every rank holds the gradient of all tokens (Megatron's `finalize_model_grads` does
    /// this once per step, after the last micro-batch's backward, in one flat all-reduce, as
    /// here). Does nothing otherwise. The gradients are packed into `scratch` (at least
    /// `sequenceParallelGradientCount` floats; a caller running every step keeps one), or into a
    /// buffer allocated for the call.
    public func allReduceSequenceParallelGradients(packingInto scratch: FloatBuffer? = nil) {
        guard region.sequenceParallel, let group = region.group else { return }
        let tensors = sequenceParallelPartialTensors
        let total = tensors.reduce(0) { $0 + layout.specs[$1].count }
        guard total > 0 else { return }
        let flat = scratch.flatMap { $0.count >= total ? $0 : nil } ?? FloatBuffer(count: total)
        var offset = 0
        for index in tensors {
            let count = layout.specs[index].count
            (flat.pointer + offset).update(from: grads.pointer(at: index), count: count)
            offset += count
        }
        group.allReduce(flat.pointer, count: total, operation: .sum)
        offset = 0
        for index in tensors {
            let count = layout.specs[index].count
            grads.pointer(at: index).update(from: flat.pointer + offset, count: count)
            offset += count
        }
    }
}
