import Kernels

/// The input embedding with the word embedding split by vocabulary rows over the tensor-parallel
/// ranks (Megatron-LM section 3): rank i holds tokens `[i V/t, (i+1) V/t)`, looks up the tokens
/// of its range (zeros for the others), rank 0 adds the learned positions, and `g` sums the
/// partial embeddings. The backward needs no communication (with sequence parallelism, an
/// all-gather of the output gradient): each rank adds the output gradient into the rows of its
/// own tokens.
///
/// The same weight, or with `--untie-embeddings-and-output-weights` a weight of its own, is the
/// output layer (`outputLayer`, column parallel over the vocabulary): the logits stay split by
/// vocabulary for `VocabParallelCrossEntropy`.
public struct VocabParallelEmbedding: Sendable {
    /// Offset of this rank's word-embedding rows `[V/t, c]` (on an untied last stage without the
    /// input embedding, the output layer's).
    public let wordEmbeddings: Int
    /// Offset of this rank's output-layer rows `[V/t, c]`: `wordEmbeddings` when tied; nil on a
    /// stage without the head.
    public let outputWeights: Int?
    /// Offset of the (replicated) position embedding `[maxPositions, c]`; nil on a stage that
    /// only holds the output layer.
    public let positionEmbeddings: Int?
    /// Hidden size `c`.
    public let hidden: Int
    /// This rank's vocabulary range.
    public let vocabStart: Int
    public let vocabCount: Int
    /// Whether this rank adds the positions (rank 0, so the sum counts them once).
    public let addsPositions: Bool

    init(wordEmbeddings: Int, outputWeights: Int?, positionEmbeddings: Int?, config: GPTConfig, region: TensorParallelRegion) {
        self.wordEmbeddings = wordEmbeddings
        self.outputWeights = outputWeights
        self.positionEmbeddings = positionEmbeddings
        hidden = config.hiddenSize
        vocabCount = config.paddedVocabSize / region.size
        vocabStart = region.rank * vocabCount
        addsPositions = region.addsReplicatedBias
    }

    /// The output layer: logits `[rows, V/t]` of this rank's vocabulary range from the final
    /// LayerNorm's output (the caller enters the region with `f`).
    public var outputLayer: ColumnParallelLinear {
        guard let outputWeights else { preconditionFailure("this stage holds no output layer") }
        return ColumnParallelLinear(weight: outputWeights, bias: nil, inFeatures: hidden, localOutFeatures: vocabCount)
    }

    /// Embeds `batch x seqLength` tokens into `out` (`[batch, seqLength, c]`, the same on every
    /// rank; with sequence parallelism this rank's `1/t` of the rows), from the weights
    /// `precision` computes with (`LinearPrecision.embed`). Each rank's partial embedding goes to
    /// `partial` (`[batch, seqLength, c]`; `out` itself without sequence parallelism) and leaves
    /// the region with g.
    func forward(out: UnsafeMutablePointer<Float>, partial: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>,
                 batch: Int, seqLength: Int, params p: FP32Weights, precision: LinearPrecision, region: TensorParallelRegion) {
        guard let positionEmbeddings else { preconditionFailure("this stage holds no input embedding") }
        precision.embed(out: partial, tokens: tokens, words: wordEmbeddings, positions: addsPositions ? positionEmbeddings : nil,
                        params: p, batch: batch, seqLength: seqLength, channels: hidden, vocabStart: vocabStart,
                        vocabCount: vocabCount)
        region.leaveRegion(partial, into: out, rows: batch * seqLength, channels: hidden)
    }

    /// Adds the gradient `dout` of the embedding output (this rank's rows of it with sequence
    /// parallelism, gathered into `gathered` first) into this rank's word-embedding rows and the
    /// position embedding.
    func backward(dout: UnsafePointer<Float>, gathered: UnsafeMutablePointer<Float>?, tokens: UnsafePointer<Int32>,
                  batch: Int, seqLength: Int, grads grad: UnsafeMutablePointer<Float>, region: TensorParallelRegion) {
        guard let positionEmbeddings else { preconditionFailure("this stage holds no input embedding") }
        let gradient = region.leaveRegionBackward(dout, gatheringInto: gathered, rows: batch * seqLength, channels: hidden)
        Embedding.backward(dwte: grad + wordEmbeddings, dwpe: grad + positionEmbeddings, dout: gradient,
                           tokens: tokens, batch: batch, seqLength: seqLength, channels: hidden,
                           vocabStart: vocabStart, vocabCount: vocabCount)
    }
}

/// Cross-entropy over logits split by vocabulary (Megatron-LM section 3): instead of gathering
/// `[rows, V]` logits, the ranks all-reduce three numbers per row (the maximum, the sum of
/// exponentials and the target's logit) and each computes the loss and the gradient of its own
/// columns. With one rank it is the plain kernel.
public struct VocabParallelCrossEntropy: Sendable {
    /// This rank's vocabulary range.
    public let vocabStart: Int
    public let vocabCount: Int
    /// Columns of this rank's range inside the softmax: all of them, or with
    /// `GPTConfig.maskPaddedVocabulary` those below the true vocabulary size.
    public let validColumns: Int

    init(embedding: VocabParallelEmbedding, config: GPTConfig) {
        vocabStart = embedding.vocabStart
        vocabCount = embedding.vocabCount
        validColumns = config.maskPaddedVocabulary ? max(0, min(vocabCount, config.vocabSize - vocabStart)) : vocabCount
    }

    /// Writes each row's loss and log-sum-exp and returns the masked totals (the same on every
    /// rank). `scratch` holds `3 * rows` floats.
    func forward(losses: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>,
                 logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, lossMask: UnsafePointer<Float>?,
                 rows: Int, scratch: UnsafeMutablePointer<Float>, region: TensorParallelRegion) -> CrossEntropy.Totals {
        guard let group = region.group, group.size > 1 else {
            return CrossEntropy.forward(losses: losses, logSumExp: logSumExp, logits: logits, targets: targets,
                                        lossMask: lossMask, rows: rows, vocab: vocabCount, validColumns: validColumns)
        }
        return CrossEntropy.forwardVocabParallel(
            losses: losses, logSumExp: logSumExp, logits: logits, targets: targets, lossMask: lossMask, rows: rows,
            vocab: vocabCount, vocabStart: vocabStart, validColumns: validColumns, scratch: scratch) { buffer, count, maximum in
                group.allReduce(buffer, count: count, operation: maximum ? .max : .sum)
            }
    }

    /// Overwrites `logits` with the gradient of `scale` times the summed masked loss; in bf16 or
    /// fp16 also rounds it, row by row while in cache, into `precision`'s output-gradient operand
    /// (the output layer's backward then uses it as it is).
    func backward(logitsToGradient logits: UnsafeMutablePointer<Float>, logSumExp: UnsafePointer<Float>,
                  targets: UnsafePointer<Int32>, lossMask: UnsafePointer<Float>?, scale: Float, rows: Int,
                  precision: LinearPrecision) {
        let columns = vocabCount
        let rounding: ((Int, UnsafePointer<Float>) -> Void)?
        switch precision {
        case .fp32: rounding = nil
        case .bf16(let operands):
            rounding = { row, gradient in
                BFloat16Conversion.roundSerial(out: operands.outputGradient + row * columns, inp: gradient, count: columns)
            }
        case .fp16(let operands):
            rounding = { row, gradient in
                HalfPrecision.roundSerial(out: operands.outputGradient + row * columns, inp: gradient, count: columns)
            }
        }
        // On a GPU the bf16 block is rounded at once afterwards: the same values, not read row by row on the host.
        var wholeBlock: UnsafeMutablePointer<BFloat16>?
        if !CrossEntropy.prefersRowCallbacks, case .bf16(let operands) = precision { wholeBlock = operands.outputGradient }
        CrossEntropy.backward(logitsToGradient: logits, logSumExp: logSumExp, targets: targets, lossMask: lossMask,
                              scale: scale, rows: rows, vocab: vocabCount, vocabStart: vocabStart, validColumns: validColumns,
                              eachRow: wholeBlock == nil ? rounding : nil)
        if let wholeBlock { BFloat16Conversion.round(out: wholeBlock, inp: logits, count: rows * columns) }
    }
}
