#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Accelerator
import Kernels
import Parameters

/// A head on each sequence's first token (`[CLS]`) after the final LayerNorm: the pooler
/// (dense + tanh, Megatron-core's `Pooler`), then a linear layer to `head.outputs` logits:
/// pretraining's `binary_head` (sentence order), fine-tuning's `classification_head` (a task's
/// classes) or `multichoice_head` (one logit per choice, a question's `choices` consecutive
/// sequences compared in one softmax). Replicated over tensor-parallel ranks. A fine-tuning
/// head drops out the pooled output before its last layer in training (`--hidden-dropout`, as
/// Megatron's `Classification` and `MultipleChoice`); pretraining's binary head does not.
struct BERTPooledHead {
    let pooler: ColumnParallelLinear
    let output: ColumnParallelLinear
    let head: BERTHead
    let hidden: Int

    static let poolerName = "pooler.dense.weight", poolerBiasName = "pooler.dense.bias"

    /// Megatron's name of the linear layer after the pooler for `head`.
    static func outputName(_ head: BERTHead) -> String {
        switch head {
        case .pretraining: "binary_head"
        case .classification: "classification_head"
        case .multipleChoice: "multichoice_head"
        }
    }

    static func parameterSpecs(_ config: GPTConfig, _ head: BERTHead) -> [ParameterSpec] {
        let c = config.hiddenSize, name = outputName(head)
        return [
            ParameterSpec(name: poolerName, shape: [c, c], weightDecay: true),
            ParameterSpec(name: poolerBiasName, shape: [c], weightDecay: false),
            ParameterSpec(name: name + ".weight", shape: [head.outputs, c], weightDecay: true),
            ParameterSpec(name: name + ".bias", shape: [head.outputs], weightDecay: false),
        ]
    }

    init(offsets: ParameterOffsets, config: GPTConfig, head: BERTHead) {
        let c = config.hiddenSize, name = Self.outputName(head)
        pooler = ColumnParallelLinear(weight: offsets[Self.poolerName], bias: offsets[Self.poolerBiasName], inFeatures: c,
                                      localOutFeatures: c)
        output = ColumnParallelLinear(weight: offsets[name + ".weight"], bias: offsets[name + ".bias"], inFeatures: c,
                                      localOutFeatures: head.outputs)
        self.head = head
        hidden = c
    }

    /// Logits into `bert.sequenceLogits`; returns the cross-entropy totals against
    /// `bert.sequenceLabels` (one per sequence, or per question of `choices` sequences).
    func forward(lnf: UnsafePointer<Float>, activations acts: GPTActivations, bert: BERTActivations,
                 params p: FP32Weights, dropout: ModelDropout?) -> CrossEntropy.Totals {
        let b = acts.batch, c = hidden
        for sequence in 0..<b {
            MemoryCopy.copy(to: bert.firstTokens.pointer + sequence * c, from: lnf + sequence * acts.seqLength * c, count: c)
        }
        pooler.forward(out: bert.pooled.pointer, inp: bert.firstTokens.pointer, params: p, rows: b, precision: .fp32)
        GPU.hostWillRead()
        for i in 0..<b * c { bert.pooled.pointer[i] = tanhf(bert.pooled.pointer[i]) }
        let input = droppingInput(bert, dropout)?
            .applyPooled(out: bert.droppedPooled.pointer, inp: bert.pooled.pointer, sequences: b) ?? UnsafePointer(bert.pooled.pointer)
        output.forward(out: bert.sequenceLogits.pointer, inp: input, params: p, rows: b, precision: .fp32)
        // Multiple choice: the b x 1 logits are b / choices rows of `choices`.
        let rows = b / head.sequencesPerLabel
        return CrossEntropy.forward(losses: bert.sequenceLosses.pointer, logSumExp: bert.sequenceLSE.pointer,
                                    logits: bert.sequenceLogits.pointer, targets: bert.sequenceLabels.pointer, lossMask: nil,
                                    rows: rows, vocab: head.classes)
    }

    /// Adds into `dlnf`'s first-token rows the gradient of `gradientScale` times the mean loss
    /// `totals`, and the heads' parameter gradients into `grad`.
    func backward(totals: CrossEntropy.Totals, gradientScale: Float, dlnf: UnsafeMutablePointer<Float>,
                  activations acts: GPTActivations, bert: BERTActivations, scratch s: GPTScratch,
                  params p: FP32Weights, grads grad: UnsafeMutablePointer<Float>, dropout: ModelDropout?) {
        let b = acts.batch, c = hidden
        let ones = UnsafePointer(s.ones.pointer)
        let scale = totals.weight > 0 ? gradientScale / Float(totals.weight) : 0
        CrossEntropy.backward(logitsToGradient: bert.sequenceLogits.pointer, logSumExp: bert.sequenceLSE.pointer,
                              targets: bert.sequenceLabels.pointer, lossMask: nil, scale: scale,
                              rows: b / head.sequencesPerLabel, vocab: head.classes)
        let dropping = droppingInput(bert, dropout)  // the forward's dropped rows are kept
        output.backward(dinp: bert.dPooled.pointer, dout: bert.sequenceLogits.pointer,
                        inp: dropping == nil ? bert.pooled.pointer : bert.droppedPooled.pointer, params: p,
                        grads: grad, ones: ones, rows: b, precision: .fp32)
        dropping?.applyPooled(out: bert.dPooled.pointer, inp: bert.dPooled.pointer, sequences: b)
        GPU.hostWillRead()
        for i in 0..<b * c { bert.dPooled.pointer[i] *= 1 - bert.pooled.pointer[i] * bert.pooled.pointer[i] }
        pooler.backward(dinp: bert.dFirstTokens.pointer, dout: bert.dPooled.pointer, inp: bert.firstTokens.pointer, params: p,
                        grads: grad, ones: ones, rows: b, precision: .fp32)
        for sequence in 0..<b {
            Residual.addInPlace(dlnf + sequence * acts.seqLength * c, bert.dFirstTokens.pointer + sequence * c, count: c)
        }
    }

    /// The dropout on the last layer's input, for forward and backward alike: a training
    /// forward's (`dropout`) where this head drops its input (a fine-tuning head with hidden
    /// dropout, `bert.droppedPooled` allocated), nil otherwise.
    private func droppingInput(_ bert: BERTActivations, _ dropout: ModelDropout?) -> ModelDropout? {
        bert.droppedPooled.count > 0 ? dropout : nil
    }
}
