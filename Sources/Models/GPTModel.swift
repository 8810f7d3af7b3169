import Distributed
import Kernels
import Parameters

/// A GPT language model on one rank: pre-LayerNorm transformer blocks, learned positions, GELU
/// MLP, final LayerNorm and an output layer tied to the word embedding (REFERENCE section 1).
///
/// Parameters live in one `ParameterStore` and their gradients in a second one of the same
/// layout. `forward` runs a micro-batch to the loss and keeps the activations the backward pass
/// needs; `backward` adds the gradient of every parameter into `grads`.
public final class GPTModel {
    /// The model's shape.
    public let config: GPTConfig
    /// Parameter layout shared by `params` and `grads` (and the optimizer moments).
    public let layout: ParameterLayout
    /// The weights.
    public let params: ParameterStore
    /// Gradients, accumulated by `backward` until `zeroGrad`.
    public let grads: ParameterStore

    let offsets: GPTOffsets
    private var activations: GPTActivations?
    /// The tensor-parallel group (nil: the whole model on this rank).
    public let tensorParallel: Communicator?
    /// Tensor-parallel size and this rank's index in the group.
    public var tensorParallelSize: Int { tensorParallel?.size ?? 1 }
    public var tensorParallelRank: Int { tensorParallel?.rank ?? 0 }
    /// How each parameter tensor is split over the tensor-parallel ranks (index as `layout.specs`).
    public let shards: [TensorShard]

    /// Creates a model with Megatron's initialization from `seed`: weights normal(0, std), the
    /// attention and MLP output projections normal(0, std / sqrt(2 * numLayers)), biases zero,
    /// LayerNorm weights one.
    ///
    /// With a tensor-parallel group of t ranks (Megatron-LM section 3), this rank holds 1/t of
    /// the word embedding (a vocabulary range), of the QKV and fc1 weights (column parallel: its
    /// heads and its slice of the 4h units) and of the attention-projection and fc2 weights (row
    /// parallel), and full copies of LayerNorms, position embeddings and output biases. The full
    /// weights are generated from `seed` and sliced, so every layout starts from the same model.
    public init(config: GPTConfig, seed: UInt64 = 1234, tensorParallel: Communicator? = nil) throws(ConfigurationError) {
        try config.validate()
        let t = tensorParallel?.size ?? 1
        for (value, flag) in [(config.numAttentionHeads, "--num-attention-heads"), (config.hiddenSize, "--hidden-size"),
                              (config.paddedVocabSize, "the padded vocabulary")] where value % t != 0 {
            throw .invalid(flag: "--tensor-model-parallel-size", reason: "\(t) does not divide \(flag) \(value)")
        }
        self.config = config
        self.tensorParallel = tensorParallel
        layout = ParameterLayout(Self.parameterSpecs(config, tensorParallel: t))
        shards = layout.specs.map { TensorShard(name: $0.name) }
        params = ParameterStore(layout: layout)
        grads = ParameterStore(layout: layout)
        offsets = GPTOffsets(layout: layout, numLayers: config.numLayers)
        if t == 1 {
            Self.initialize(params, config: config, seed: seed)
        } else {
            let full = ParameterStore(layout: ParameterLayout(Self.parameterSpecs(config)))
            Self.initialize(full, config: config, seed: seed)
            for (index, shard) in shards.enumerated() {
                shard.slice(full.pointer(at: index), into: params.pointer(at: index),
                            fullShape: full.layout.specs[index].shape, rank: tensorParallelRank, size: t)
            }
        }
    }

    /// The parameter tensors in buffer order, with Megatron-core names; with tensor parallelism,
    /// the shapes of one rank's shards.
    public static func parameterSpecs(_ config: GPTConfig, tensorParallel t: Int = 1) -> [ParameterSpec] {
        let c = config.hiddenSize
        let f = config.ffnHiddenSize
        var specs = [
            ParameterSpec(name: "embedding.word_embeddings.weight", shape: [config.paddedVocabSize, c], weightDecay: true),
            ParameterSpec(name: "embedding.position_embeddings.weight", shape: [config.maxPositionEmbeddings, c], weightDecay: true),
        ]
        for layer in 0..<config.numLayers {
            let p = "decoder.layers.\(layer)."
            specs += [
                ParameterSpec(name: p + "input_layernorm.weight", shape: [c], weightDecay: false),
                ParameterSpec(name: p + "input_layernorm.bias", shape: [c], weightDecay: false),
                ParameterSpec(name: p + "self_attention.linear_qkv.weight", shape: [3 * c, c], weightDecay: true),
                ParameterSpec(name: p + "self_attention.linear_qkv.bias", shape: [3 * c], weightDecay: false),
                ParameterSpec(name: p + "self_attention.linear_proj.weight", shape: [c, c], weightDecay: true),
                ParameterSpec(name: p + "self_attention.linear_proj.bias", shape: [c], weightDecay: false),
                ParameterSpec(name: p + "pre_mlp_layernorm.weight", shape: [c], weightDecay: false),
                ParameterSpec(name: p + "pre_mlp_layernorm.bias", shape: [c], weightDecay: false),
                ParameterSpec(name: p + "mlp.linear_fc1.weight", shape: [f, c], weightDecay: true),
                ParameterSpec(name: p + "mlp.linear_fc1.bias", shape: [f], weightDecay: false),
                ParameterSpec(name: p + "mlp.linear_fc2.weight", shape: [c, f], weightDecay: true),
                ParameterSpec(name: p + "mlp.linear_fc2.bias", shape: [c], weightDecay: false),
            ]
        }
        specs += [
            ParameterSpec(name: "decoder.final_layernorm.weight", shape: [c], weightDecay: false),
            ParameterSpec(name: "decoder.final_layernorm.bias", shape: [c], weightDecay: false),
        ]
        return specs.map { spec in
            var shard = spec
            shard.shape = TensorShard(name: spec.name).shape(of: spec.shape, size: t)
            return shard
        }
    }

    private static func initialize(_ params: ParameterStore, config: GPTConfig, seed: UInt64) {
        var rng = RandomGenerator(seed: seed)
        let std = config.initMethodStd
        let outputStd = std / Float(2 * config.numLayers).squareRoot()
        for (index, spec) in params.layout.specs.enumerated() {
            let pointer = params.pointer(at: index)
            if spec.name.hasSuffix("layernorm.weight") {
                pointer.update(repeating: 1, count: spec.count)
            } else if spec.name.hasSuffix(".bias") {
                pointer.update(repeating: 0, count: spec.count)
            } else if spec.name.hasSuffix("linear_proj.weight") || spec.name.hasSuffix("linear_fc2.weight") {
                rng.fillNormal(pointer, count: spec.count, std: outputStd)
            } else {
                rng.fillNormal(pointer, count: spec.count, std: std)
            }
        }
    }

    /// Sets every gradient to zero (before the first micro-batch of a step).
    public func zeroGrad() { grads.zero() }

    /// Logits `[batch, seqLength, paddedVocabSize]` of the last `forward`, valid until `backward`
    /// (which overwrites them with their gradient).
    public var logits: UnsafeMutablePointer<Float> {
        guard let activations else { preconditionFailure("logits read before forward") }
        return activations.logits.pointer
    }

    /// Runs `tokens` (`[batch, seqLength]`) through the model and returns the masked mean
    /// cross-entropy against `targets` (ids, or `CrossEntropy.ignoreIndex`), weighted by
    /// `lossMask` when given. Keeps what `backward` needs. Throws, before computing anything,
    /// when a token or target id is outside the vocabulary or the sequence is too long.
    @discardableResult
    public func forward(tokens: UnsafePointer<Int32>, targets: UnsafePointer<Int32>,
                        lossMask: UnsafePointer<Float>? = nil, batch: Int,
                        seqLength: Int) throws(GPTInputError) -> CrossEntropy.Totals {
        try validate(tokens: tokens, targets: targets, count: batch * seqLength, seqLength: seqLength)
        let acts = activationsFor(batch: batch, seqLength: seqLength)
        let n = batch * seqLength
        let c = config.hiddenSize
        let t = tensorParallelSize, first = tensorParallelRank == 0
        let local = c / t                           // this rank's attention width (its heads)
        let f = config.ffnHiddenSize / t            // this rank's MLP units
        let vp = config.paddedVocabSize / t         // this rank's vocabulary range
        let vocabStart = tensorParallelRank * vp
        let h = config.numAttentionHeads / t
        let eps = config.layerNormEpsilon
        let p = params.buffer.pointer
        let o = offsets
        acts.tokens.pointer.update(from: tokens, count: n)
        acts.targets.pointer.update(from: targets, count: n)
        acts.hasLossMask = lossMask != nil
        if let lossMask { acts.lossMask.pointer.update(from: lossMask, count: n) }

        // Vocabulary-parallel embedding: each rank looks up its range, one adds the positions,
        // and the all-reduce assembles the sum (g: all-reduce forward).
        Embedding.forward(out: acts.embedded.pointer, tokens: tokens, wte: p + o.wordEmbeddings,
                          wpe: first ? p + o.positionEmbeddings : nil, batch: batch, seqLength: seqLength, channels: c,
                          vocabStart: vocabStart, vocabCount: vp)
        tensorParallel?.allReduce(acts.embedded.pointer, count: n * c, operation: .sum)
        var residual = acts.embedded.pointer
        for (l, layer) in o.layers.enumerated() {
            let a = acts.layers[l]
            LayerNorm.forward(out: a.ln1.pointer, mean: a.ln1Mean.pointer, rstd: a.ln1Rstd.pointer, inp: residual,
                              weight: p + layer.ln1Weight, bias: p + layer.ln1Bias, rows: n, channels: c, eps: eps)
            // Column-parallel QKV (this rank's heads), local attention, row-parallel projection
            // whose partial sums are all-reduced (the bias is added once, by the first rank).
            Matmul.forward(out: a.qkv.pointer, inp: a.ln1.pointer, weight: p + layer.qkvWeight, bias: p + layer.qkvBias,
                           rows: n, inFeatures: c, outFeatures: 3 * local)
            Attention.forward(out: a.attention.pointer, logSumExp: a.attentionLSE.pointer, qkv: a.qkv.pointer,
                              scratch: acts.attentionScratch.pointer, batch: batch, seqLength: seqLength, heads: h, channels: local)
            Matmul.forward(out: a.residual2.pointer, inp: a.attention.pointer, weight: p + layer.projWeight,
                           bias: first ? p + layer.projBias : nil, rows: n, inFeatures: local, outFeatures: c)
            tensorParallel?.allReduce(a.residual2.pointer, count: n * c, operation: .sum)
            Residual.addInPlace(a.residual2.pointer, residual, count: n * c)
            LayerNorm.forward(out: a.ln2.pointer, mean: a.ln2Mean.pointer, rstd: a.ln2Rstd.pointer, inp: a.residual2.pointer,
                              weight: p + layer.ln2Weight, bias: p + layer.ln2Bias, rows: n, channels: c, eps: eps)
            Matmul.forward(out: a.fc.pointer, inp: a.ln2.pointer, weight: p + layer.fc1Weight, bias: p + layer.fc1Bias,
                           rows: n, inFeatures: c, outFeatures: f)
            GELU.forward(out: acts.gelu.pointer, inp: a.fc.pointer, count: n * f)
            Matmul.forward(out: a.residual3.pointer, inp: acts.gelu.pointer, weight: p + layer.fc2Weight,
                           bias: first ? p + layer.fc2Bias : nil, rows: n, inFeatures: f, outFeatures: c)
            tensorParallel?.allReduce(a.residual3.pointer, count: n * c, operation: .sum)
            Residual.addInPlace(a.residual3.pointer, a.residual2.pointer, count: n * c)
            residual = a.residual3.pointer
        }
        LayerNorm.forward(out: acts.lnf.pointer, mean: acts.lnfMean.pointer, rstd: acts.lnfRstd.pointer, inp: residual,
                          weight: p + o.finalLNWeight, bias: p + o.finalLNBias, rows: n, channels: c, eps: eps)
        Matmul.forward(out: acts.logits.pointer, inp: acts.lnf.pointer, weight: p + o.wordEmbeddings, bias: nil,
                       rows: n, inFeatures: c, outFeatures: vp)
        let mask = acts.hasLossMask ? UnsafePointer(acts.lossMask.pointer) : nil
        let totals: CrossEntropy.Totals
        if let group = tensorParallel, group.size > 1 {
            totals = CrossEntropy.forwardVocabParallel(
                losses: acts.losses.pointer, logSumExp: acts.logitsLSE.pointer, logits: acts.logits.pointer,
                targets: acts.targets.pointer, lossMask: mask, rows: n, vocab: vp, vocabStart: vocabStart,
                scratch: acts.crossEntropyScratch.pointer) { buffer, count, maximum in
                    group.allReduce(buffer, count: count, operation: maximum ? .max : .sum)
                }
        } else {
            totals = CrossEntropy.forward(losses: acts.losses.pointer, logSumExp: acts.logitsLSE.pointer,
                                          logits: acts.logits.pointer, targets: acts.targets.pointer,
                                          lossMask: mask, rows: n, vocab: vp)
        }
        acts.totals = totals
        return totals
    }

    /// Adds the gradient of `gradientScale * loss` (the loss of the last `forward`) to `grads`.
    /// With gradient accumulation over k micro-batches of equal weight, pass 1/k.
    public func backward(gradientScale: Float = 1) {
        guard let acts = activations, let totals = acts.totals else {
            preconditionFailure("backward called without a forward")
        }
        let batch = acts.batch, seqLength = acts.seqLength
        let n = batch * seqLength
        let c = config.hiddenSize
        let t = tensorParallelSize
        let local = c / t
        let f = config.ffnHiddenSize / t
        let vp = config.paddedVocabSize / t
        let vocabStart = tensorParallelRank * vp
        let h = config.numAttentionHeads / t
        let p = params.buffer.pointer
        let g = grads.buffer.pointer
        let o = offsets
        let ones = UnsafePointer(acts.ones.pointer)
        let dresidual = acts.dresidual.pointer

        let scale = totals.weight > 0 ? gradientScale / Float(totals.weight) : 0
        CrossEntropy.backward(logitsToGradient: acts.logits.pointer, logSumExp: acts.logitsLSE.pointer,
                              targets: acts.targets.pointer,
                              lossMask: acts.hasLossMask ? UnsafePointer(acts.lossMask.pointer) : nil,
                              scale: scale, rows: n, vocab: vp, vocabStart: vocabStart)
        // Output layer (tied to the word embedding), then the final LayerNorm. Each rank's
        // vocabulary range gives part of the input gradient (f: all-reduce backward).
        Matmul.backward(dinp: acts.dln.pointer, dweight: g + o.wordEmbeddings, dbias: nil, dout: acts.logits.pointer,
                        inp: acts.lnf.pointer, weight: p + o.wordEmbeddings, ones: nil,
                        rows: n, inFeatures: c, outFeatures: vp)
        tensorParallel?.allReduce(acts.dln.pointer, count: n * c, operation: .sum)
        dresidual.update(repeating: 0, count: n * c)
        let lastResidual = o.layers.isEmpty ? acts.embedded.pointer : acts.layers[o.layers.count - 1].residual3.pointer
        LayerNorm.backward(dinp: dresidual, dweight: g + o.finalLNWeight, dbias: g + o.finalLNBias, dout: acts.dln.pointer,
                           inp: lastResidual, weight: p + o.finalLNWeight, mean: acts.lnfMean.pointer,
                           rstd: acts.lnfRstd.pointer, rows: n, channels: c)
        for l in stride(from: o.layers.count - 1, through: 0, by: -1) {
            let layer = o.layers[l]
            let a = acts.layers[l]
            let residual = l == 0 ? acts.embedded.pointer : acts.layers[l - 1].residual3.pointer
            // MLP: the GELU output is recomputed instead of stored.
            GELU.forward(out: acts.gelu.pointer, inp: a.fc.pointer, count: n * f)
            Matmul.backward(dinp: acts.dfc.pointer, dweight: g + layer.fc2Weight, dbias: g + layer.fc2Bias,
                            dout: dresidual, inp: acts.gelu.pointer, weight: p + layer.fc2Weight, ones: ones,
                            rows: n, inFeatures: f, outFeatures: c)
            GELU.backward(dinp: acts.dfc.pointer, inp: a.fc.pointer, dout: acts.dfc.pointer, count: n * f)
            Matmul.backward(dinp: acts.dln.pointer, dweight: g + layer.fc1Weight, dbias: g + layer.fc1Bias,
                            dout: acts.dfc.pointer, inp: a.ln2.pointer, weight: p + layer.fc1Weight, ones: ones,
                            rows: n, inFeatures: c, outFeatures: f)
            tensorParallel?.allReduce(acts.dln.pointer, count: n * c, operation: .sum)
            LayerNorm.backward(dinp: dresidual, dweight: g + layer.ln2Weight, dbias: g + layer.ln2Bias,
                               dout: acts.dln.pointer, inp: a.residual2.pointer, weight: p + layer.ln2Weight,
                               mean: a.ln2Mean.pointer, rstd: a.ln2Rstd.pointer, rows: n, channels: c)
            // Attention.
            Matmul.backward(dinp: acts.dattention.pointer, dweight: g + layer.projWeight, dbias: g + layer.projBias,
                            dout: dresidual, inp: a.attention.pointer, weight: p + layer.projWeight, ones: ones,
                            rows: n, inFeatures: local, outFeatures: c)
            Attention.backward(dqkv: acts.dqkv.pointer, dout: acts.dattention.pointer, out: a.attention.pointer,
                               logSumExp: a.attentionLSE.pointer, qkv: a.qkv.pointer,
                               scratch: acts.attentionScratch.pointer,
                               batch: batch, seqLength: seqLength, heads: h, channels: local)
            Matmul.backward(dinp: acts.dln.pointer, dweight: g + layer.qkvWeight, dbias: g + layer.qkvBias,
                            dout: acts.dqkv.pointer, inp: a.ln1.pointer, weight: p + layer.qkvWeight, ones: ones,
                            rows: n, inFeatures: c, outFeatures: 3 * local)
            tensorParallel?.allReduce(acts.dln.pointer, count: n * c, operation: .sum)
            LayerNorm.backward(dinp: dresidual, dweight: g + layer.ln1Weight, dbias: g + layer.ln1Bias,
                               dout: acts.dln.pointer, inp: residual, weight: p + layer.ln1Weight,
                               mean: a.ln1Mean.pointer, rstd: a.ln1Rstd.pointer, rows: n, channels: c)
        }
        Embedding.backward(dwte: g + o.wordEmbeddings, dwpe: g + o.positionEmbeddings, dout: dresidual,
                           tokens: acts.tokens.pointer, batch: batch, seqLength: seqLength, channels: c,
                           vocabStart: vocabStart, vocabCount: vp)
        acts.totals = nil
    }

    private func validate(tokens: UnsafePointer<Int32>, targets: UnsafePointer<Int32>, count: Int,
                          seqLength: Int) throws(GPTInputError) {
        if seqLength > config.maxPositionEmbeddings {
            throw .sequenceTooLong(seqLength: seqLength, maxPositionEmbeddings: config.maxPositionEmbeddings)
        }
        let vocab = Int32(config.paddedVocabSize)
        for i in 0..<count {
            if tokens[i] < 0 || tokens[i] >= vocab {
                throw .tokenOutOfRange(position: i, id: Int(tokens[i]), vocabSize: Int(vocab))
            }
            if (targets[i] < 0 || targets[i] >= vocab) && targets[i] != CrossEntropy.ignoreIndex {
                throw .targetOutOfRange(position: i, id: Int(targets[i]), vocabSize: Int(vocab))
            }
        }
    }

    private func activationsFor(batch: Int, seqLength: Int) -> GPTActivations {
        if let existing = activations, existing.batch == batch, existing.seqLength == seqLength {
            return existing
        }
        activations = nil  // free the old set before allocating the new one
        let created = GPTActivations(config: config, batch: batch, seqLength: seqLength, tensorParallel: tensorParallelSize)
        activations = created
        return created
    }
}

/// Offsets (in floats) of one transformer layer's tensors inside the parameter layout; the
/// same offsets address the gradients.
struct GPTLayerOffsets {
    var ln1Weight = 0, ln1Bias = 0, qkvWeight = 0, qkvBias = 0, projWeight = 0, projBias = 0
    var ln2Weight = 0, ln2Bias = 0, fc1Weight = 0, fc1Bias = 0, fc2Weight = 0, fc2Bias = 0
}

/// Offsets of every tensor of a GPT, resolved once so the step does no name look-ups.
struct GPTOffsets {
    let wordEmbeddings: Int
    let positionEmbeddings: Int
    let layers: [GPTLayerOffsets]
    let finalLNWeight: Int
    let finalLNBias: Int

    init(layout: ParameterLayout, numLayers: Int) {
        func at(_ name: String) -> Int { layout.entry(name).offset }
        wordEmbeddings = at("embedding.word_embeddings.weight")
        positionEmbeddings = at("embedding.position_embeddings.weight")
        layers = (0..<numLayers).map { l in
            let p = "decoder.layers.\(l)."
            var o = GPTLayerOffsets()
            o.ln1Weight = at(p + "input_layernorm.weight")
            o.ln1Bias = at(p + "input_layernorm.bias")
            o.qkvWeight = at(p + "self_attention.linear_qkv.weight")
            o.qkvBias = at(p + "self_attention.linear_qkv.bias")
            o.projWeight = at(p + "self_attention.linear_proj.weight")
            o.projBias = at(p + "self_attention.linear_proj.bias")
            o.ln2Weight = at(p + "pre_mlp_layernorm.weight")
            o.ln2Bias = at(p + "pre_mlp_layernorm.bias")
            o.fc1Weight = at(p + "mlp.linear_fc1.weight")
            o.fc1Bias = at(p + "mlp.linear_fc1.bias")
            o.fc2Weight = at(p + "mlp.linear_fc2.weight")
            o.fc2Bias = at(p + "mlp.linear_fc2.bias")
            return o
        }
        finalLNWeight = at("decoder.final_layernorm.weight")
        finalLNBias = at("decoder.final_layernorm.bias")
    }
}

/// A micro-batch the model cannot run; the message says what to fix.
public enum GPTInputError: Error, CustomStringConvertible, Equatable {
    case sequenceTooLong(seqLength: Int, maxPositionEmbeddings: Int)
    case tokenOutOfRange(position: Int, id: Int, vocabSize: Int)
    case targetOutOfRange(position: Int, id: Int, vocabSize: Int)

    public var description: String {
        switch self {
        case let .sequenceTooLong(seqLength, maxPositions):
            "sequence length \(seqLength) exceeds --max-position-embeddings \(maxPositions)"
        case let .tokenOutOfRange(position, id, vocab):
            "token id \(id) at position \(position) is outside the padded vocabulary 0..<\(vocab) (wrong tokenizer or --vocab-size?)"
        case let .targetOutOfRange(position, id, vocab):
            "target id \(id) at position \(position) is outside the padded vocabulary 0..<\(vocab) and is not the ignore index -100"
        }
    }
}
