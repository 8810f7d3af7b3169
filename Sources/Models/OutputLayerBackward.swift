import Kernels

extension VocabParallelCrossEntropy {
    /// The backward of the loss head's last two steps for `acts`: this cross-entropy's (the
    /// logits become their gradient, `scale` times the masked sum's) and then the output layer
    /// `layer`'s, whose input gradient overwrites `dinp` and whose parameter gradients add into
    /// `grad` (`ones` for its bias, if it has one). In bf16 or fp16 a block of rows at a time,
    /// so that the rounded logits gradient needs no buffer as large as the logits. `inp` is the
    /// layer's fp32 input, or in bf16 `savedInput` its rounded copy. GPT's head and BERT's
    /// masked-LM head end this way.
    func backward(through layer: ColumnParallelLinear, scale: Float, activations acts: GPTActivations,
                  dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, savedInput: UnsafePointer<BFloat16>? = nil,
                  params p: FP32Weights, grads grad: UnsafeMutablePointer<Float>, ones: UnsafePointer<Float>?,
                  precision: LinearPrecision) {
        let n = acts.batch * acts.seqLength, c = layer.inFeatures
        let block = precision.isReduced ? GPTMemory.outputLayerBlockRows(rows: n) : n
        for start in stride(from: 0, to: n, by: block) {
            let rows = min(block, n - start)
            backward(logitsToGradient: acts.logits.pointer + start * vocabCount, logSumExp: acts.logitsLSE.pointer + start,
                     targets: acts.targets.pointer + start,
                     lossMask: acts.hasLossMask ? UnsafePointer(acts.lossMask.pointer + start) : nil, scale: scale, rows: rows,
                     precision: precision)
            layer.backward(dinp: dinp + start * c, dout: acts.logits.pointer + start * vocabCount, inp: inp + start * c,
                           params: p, grads: grad, ones: ones, rows: rows, precision: precision, outputGradientRounded: true,
                           savedInput: savedInput.map { $0 + start * c })
        }
    }
}
