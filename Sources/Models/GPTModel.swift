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
    /// The activations of the whole-model `forward` / `backward` (the pipeline executor keeps its own).
    private var activations: GPTActivations?
    private var scratch: GPTScratch?
    /// The tensor-parallel group (nil: the whole model on this rank).
    public let tensorParallel: Communicator?
    /// Tensor-parallel size and this rank's index in the group.
    public var tensorParallelSize: Int { tensorParallel?.size ?? 1 }
    public var tensorParallelRank: Int { tensorParallel?.rank ?? 0 }
    /// How each parameter tensor is split over the tensor-parallel ranks (index as `layout.specs`).
    public let shards: [TensorShard]
    /// The layers, embedding and head this pipeline stage holds.
    public let part: GPTPipelinePart

    /// Creates a model with Megatron's initialization from `seed`: weights normal(0, std), the
    /// attention and MLP output projections normal(0, std / sqrt(2 * numLayers)), biases zero,
    /// LayerNorm weights one.
    ///
    /// With a tensor-parallel group of t ranks (Megatron-LM section 3), this rank holds 1/t of
    /// the word embedding (a vocabulary range), of the QKV and fc1 weights (column parallel: its
    /// heads and its slice of the 4h units) and of the attention-projection and fc2 weights (row
    /// parallel), and full copies of LayerNorms, position embeddings and output biases. With a
    /// pipeline `part`, it holds only that stage's layers, embedding and head. The full weights
    /// are generated from `seed` and sliced, so every layout starts from the same model.
    public init(config: GPTConfig, seed: UInt64 = 1234, tensorParallel: Communicator? = nil,
                part: GPTPipelinePart? = nil) throws(ConfigurationError) {
        try config.validate()
        let t = tensorParallel?.size ?? 1
        for (value, flag) in [(config.numAttentionHeads, "--num-attention-heads"), (config.hiddenSize, "--hidden-size"),
                              (config.paddedVocabSize, "the padded vocabulary")] where value % t != 0 {
            throw .invalid(flag: "--tensor-model-parallel-size", reason: "\(t) does not divide \(flag) \(value)")
        }
        let part = part ?? .whole(numLayers: config.numLayers)
        guard part.numLayers == config.numLayers else {
            throw .invalid(flag: "--pipeline-model-parallel-size", reason: "\(part) was cut from \(part.numLayers) layers, the model has \(config.numLayers)")
        }
        self.config = config
        self.tensorParallel = tensorParallel
        self.part = part
        layout = ParameterLayout(Self.parameterSpecs(config, tensorParallel: t, part: part))
        shards = layout.specs.map { TensorShard(name: $0.name) }
        params = ParameterStore(layout: layout)
        grads = ParameterStore(layout: layout)
        offsets = GPTOffsets(layout: layout, part: part)
        if t == 1 && part.isWhole {
            Self.initialize(params, config: config, seed: seed)
        } else {
            let full = ParameterStore(layout: ParameterLayout(Self.parameterSpecs(config)))
            Self.initialize(full, config: config, seed: seed)
            for (index, shard) in shards.enumerated() {
                let source = full.layout.index(of: layout.specs[index].name)!
                shard.slice(full.pointer(at: source), into: params.pointer(at: index),
                            fullShape: full.layout.specs[source].shape, rank: tensorParallelRank, size: t)
            }
        }
    }

    /// The parameter tensors in buffer order, with Megatron-core names; with tensor parallelism,
    /// the shapes of one rank's shards.
    public static func parameterSpecs(_ config: GPTConfig, tensorParallel t: Int = 1,
                                      part: GPTPipelinePart? = nil) -> [ParameterSpec] {
        let c = config.hiddenSize
        let f = config.ffnHiddenSize
        let part = part ?? .whole(numLayers: config.numLayers)
        var specs = [ParameterSpec]()
        if part.holdsWordEmbedding {
            specs.append(ParameterSpec(name: "embedding.word_embeddings.weight", shape: [config.paddedVocabSize, c], weightDecay: true))
        }
        if part.holdsEmbedding {
            specs.append(ParameterSpec(name: "embedding.position_embeddings.weight", shape: [config.maxPositionEmbeddings, c], weightDecay: true))
        }
        for layer in part.layers {
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
        if part.holdsHead {
            specs += [
                ParameterSpec(name: "decoder.final_layernorm.weight", shape: [c], weightDecay: false),
                ParameterSpec(name: "decoder.final_layernorm.bias", shape: [c], weightDecay: false),
            ]
        }
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

    /// Runs `tokens` (`[batch, seqLength]`) through the whole model and returns the masked mean
    /// cross-entropy against `targets` (ids, or `CrossEntropy.ignoreIndex`), weighted by
    /// `lossMask` when given. Keeps what `backward` needs. Throws, before computing anything,
    /// when a token or target id is outside the vocabulary or the sequence is too long.
    @discardableResult
    public func forward(tokens: UnsafePointer<Int32>, targets: UnsafePointer<Int32>,
                        lossMask: UnsafePointer<Float>? = nil, batch: Int,
                        seqLength: Int) throws(GPTInputError) -> CrossEntropy.Totals {
        precondition(part.isWhole, "the whole-model forward needs the whole model; a pipeline stage runs forward(chunk:)")
        let acts: GPTActivations
        if let existing = activations, existing.batch == batch, existing.seqLength == seqLength {
            acts = existing
        } else {
            activations = nil  // free the old set before allocating the new one
            acts = makeActivations(chunk: 0, batch: batch, seqLength: seqLength)
            activations = acts
        }
        try load(tokens: tokens, targets: targets, lossMask: lossMask, into: acts)
        return forward(chunk: 0, activations: acts)!
    }

    /// Adds the gradient of `gradientScale * loss` (the loss of the last `forward`) to `grads`.
    /// With gradient accumulation over k micro-batches of equal weight, pass 1/k.
    public func backward(gradientScale: Float = 1) {
        guard let activations else { preconditionFailure("backward called without a forward") }
        backward(chunk: 0, activations: activations, gradientScale: gradientScale)
    }

    /// Activation storage for one micro-batch in flight through model chunk `chunk`.
    public func makeActivations(chunk: Int, batch: Int, seqLength: Int) -> GPTActivations {
        GPTActivations(config: config, batch: batch, seqLength: seqLength, tensorParallel: tensorParallelSize,
                       layerCount: part.chunkLayers[chunk].count, head: part.computesLoss(chunk: chunk))
    }

    /// Checks a micro-batch's ids and copies its tokens, targets and loss mask into `acts` (the
    /// first chunk reads the tokens, the last the targets and mask).
    public func load(tokens: UnsafePointer<Int32>, targets: UnsafePointer<Int32>, lossMask: UnsafePointer<Float>?,
                     into acts: GPTActivations) throws(GPTInputError) {
        let n = acts.batch * acts.seqLength
        try validate(tokens: tokens, targets: targets, count: n, seqLength: acts.seqLength)
        acts.tokens.pointer.update(from: tokens, count: n)
        acts.targets.pointer.update(from: targets, count: n)
        acts.hasLossMask = lossMask != nil
        if let lossMask { acts.lossMask.pointer.update(from: lossMask, count: n) }
    }

    private func scratchFor(batch: Int, seqLength: Int) -> GPTScratch {
        if let scratch, scratch.batch == batch, scratch.seqLength == seqLength { return scratch }
        scratch = nil
        let created = GPTScratch(config: config, batch: batch, seqLength: seqLength, tensorParallel: tensorParallelSize)
        scratch = created
        return created
    }

    /// Runs model chunk `chunk` forward on `acts`: the first chunk of the first stage embeds the
    /// loaded tokens, any other starts from `acts.input`; the last chunk of the last stage returns
    /// the masked mean cross-entropy (nil from any other chunk, whose output is `acts.output`).
    @discardableResult
    public func forward(chunk: Int, activations acts: GPTActivations) -> CrossEntropy.Totals? {
        let batch = acts.batch, seqLength = acts.seqLength
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
        let s = scratchFor(batch: batch, seqLength: seqLength)

        if part.embeds(chunk: chunk) {
            // Vocabulary-parallel embedding: each rank looks up its range, one adds the positions,
            // and the all-reduce assembles the sum (g: all-reduce forward).
            Embedding.forward(out: acts.embedded.pointer, tokens: acts.tokens.pointer, wte: p + o.wordEmbeddings!,
                              wpe: first ? p + o.positionEmbeddings! : nil, batch: batch, seqLength: seqLength, channels: c,
                              vocabStart: vocabStart, vocabCount: vp)
            tensorParallel?.allReduce(acts.embedded.pointer, count: n * c, operation: .sum)
        }
        var residual = acts.embedded.pointer
        for (l, layer) in o.chunks[chunk].enumerated() {
            let a = acts.layers[l]
            LayerNorm.forward(out: a.ln1.pointer, mean: a.ln1Mean.pointer, rstd: a.ln1Rstd.pointer, inp: residual,
                              weight: p + layer.ln1Weight, bias: p + layer.ln1Bias, rows: n, channels: c, eps: eps)
            // Column-parallel QKV (this rank's heads), local attention, row-parallel projection
            // whose partial sums are all-reduced (the bias is added once, by the first rank).
            Matmul.forward(out: a.qkv.pointer, inp: a.ln1.pointer, weight: p + layer.qkvWeight, bias: p + layer.qkvBias,
                           rows: n, inFeatures: c, outFeatures: 3 * local)
            Attention.forward(out: a.attention.pointer, logSumExp: a.attentionLSE.pointer, qkv: a.qkv.pointer,
                              scratch: s.attentionScratch.pointer, batch: batch, seqLength: seqLength, heads: h, channels: local)
            Matmul.forward(out: a.residual2.pointer, inp: a.attention.pointer, weight: p + layer.projWeight,
                           bias: first ? p + layer.projBias : nil, rows: n, inFeatures: local, outFeatures: c)
            tensorParallel?.allReduce(a.residual2.pointer, count: n * c, operation: .sum)
            Residual.addInPlace(a.residual2.pointer, residual, count: n * c)
            LayerNorm.forward(out: a.ln2.pointer, mean: a.ln2Mean.pointer, rstd: a.ln2Rstd.pointer, inp: a.residual2.pointer,
                              weight: p + layer.ln2Weight, bias: p + layer.ln2Bias, rows: n, channels: c, eps: eps)
            Matmul.forward(out: a.fc.pointer, inp: a.ln2.pointer, weight: p + layer.fc1Weight, bias: p + layer.fc1Bias,
                           rows: n, inFeatures: c, outFeatures: f)
            GELU.forward(out: s.gelu.pointer, inp: a.fc.pointer, count: n * f)
            Matmul.forward(out: a.residual3.pointer, inp: s.gelu.pointer, weight: p + layer.fc2Weight,
                           bias: first ? p + layer.fc2Bias : nil, rows: n, inFeatures: f, outFeatures: c)
            tensorParallel?.allReduce(a.residual3.pointer, count: n * c, operation: .sum)
            Residual.addInPlace(a.residual3.pointer, a.residual2.pointer, count: n * c)
            residual = a.residual3.pointer
        }
        acts.forwarded = true
        guard part.computesLoss(chunk: chunk) else { return nil }
        LayerNorm.forward(out: acts.lnf.pointer, mean: acts.lnfMean.pointer, rstd: acts.lnfRstd.pointer, inp: residual,
                          weight: p + o.finalLNWeight!, bias: p + o.finalLNBias!, rows: n, channels: c, eps: eps)
        Matmul.forward(out: acts.logits.pointer, inp: acts.lnf.pointer, weight: p + o.wordEmbeddings!, bias: nil,
                       rows: n, inFeatures: c, outFeatures: vp)
        let mask = acts.hasLossMask ? UnsafePointer(acts.lossMask.pointer) : nil
        let totals: CrossEntropy.Totals
        if let group = tensorParallel, group.size > 1 {
            totals = CrossEntropy.forwardVocabParallel(
                losses: acts.losses.pointer, logSumExp: acts.logitsLSE.pointer, logits: acts.logits.pointer,
                targets: acts.targets.pointer, lossMask: mask, rows: n, vocab: vp, vocabStart: vocabStart,
                scratch: s.crossEntropyScratch.pointer) { buffer, count, maximum in
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

    /// Adds model chunk `chunk`'s parameter gradients for the micro-batch of `acts` to `grads`.
    /// The chunk with the loss starts from `gradientScale * loss`; any other from
    /// `acts.outputGradient`. Afterwards `acts.inputGradient` holds the gradient of the chunk's
    /// input (the first chunk of the first stage adds it into the embeddings instead).
    public func backward(chunk: Int, activations acts: GPTActivations, gradientScale: Float = 1) {
        precondition(acts.forwarded, "backward called without a forward")
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
        let s = scratchFor(batch: batch, seqLength: seqLength)
        let ones = UnsafePointer(s.ones.pointer)
        let dresidual = acts.dresidual.pointer
        let layers = o.chunks[chunk]

        if part.computesLoss(chunk: chunk) {
            guard let totals = acts.totals else { preconditionFailure("backward called without a forward") }
            let scale = totals.weight > 0 ? gradientScale / Float(totals.weight) : 0
            CrossEntropy.backward(logitsToGradient: acts.logits.pointer, logSumExp: acts.logitsLSE.pointer,
                                  targets: acts.targets.pointer,
                                  lossMask: acts.hasLossMask ? UnsafePointer(acts.lossMask.pointer) : nil,
                                  scale: scale, rows: n, vocab: vp, vocabStart: vocabStart)
            // Output layer (tied to the word embedding), then the final LayerNorm. Each rank's
            // vocabulary range gives part of the input gradient (f: all-reduce backward).
            Matmul.backward(dinp: s.dln.pointer, dweight: g + o.wordEmbeddings!, dbias: nil, dout: acts.logits.pointer,
                            inp: acts.lnf.pointer, weight: p + o.wordEmbeddings!, ones: nil,
                            rows: n, inFeatures: c, outFeatures: vp)
            tensorParallel?.allReduce(s.dln.pointer, count: n * c, operation: .sum)
            dresidual.update(repeating: 0, count: n * c)
            let lastResidual = layers.isEmpty ? acts.embedded.pointer : acts.layers[layers.count - 1].residual3.pointer
            LayerNorm.backward(dinp: dresidual, dweight: g + o.finalLNWeight!, dbias: g + o.finalLNBias!, dout: s.dln.pointer,
                               inp: lastResidual, weight: p + o.finalLNWeight!, mean: acts.lnfMean.pointer,
                               rstd: acts.lnfRstd.pointer, rows: n, channels: c)
            acts.totals = nil
        }
        for l in stride(from: layers.count - 1, through: 0, by: -1) {
            let layer = layers[l]
            let a = acts.layers[l]
            let residual = l == 0 ? acts.embedded.pointer : acts.layers[l - 1].residual3.pointer
            // MLP: the GELU output is recomputed instead of stored.
            GELU.forward(out: s.gelu.pointer, inp: a.fc.pointer, count: n * f)
            Matmul.backward(dinp: s.dfc.pointer, dweight: g + layer.fc2Weight, dbias: g + layer.fc2Bias,
                            dout: dresidual, inp: s.gelu.pointer, weight: p + layer.fc2Weight, ones: ones,
                            rows: n, inFeatures: f, outFeatures: c)
            GELU.backward(dinp: s.dfc.pointer, inp: a.fc.pointer, dout: s.dfc.pointer, count: n * f)
            Matmul.backward(dinp: s.dln.pointer, dweight: g + layer.fc1Weight, dbias: g + layer.fc1Bias,
                            dout: s.dfc.pointer, inp: a.ln2.pointer, weight: p + layer.fc1Weight, ones: ones,
                            rows: n, inFeatures: c, outFeatures: f)
            tensorParallel?.allReduce(s.dln.pointer, count: n * c, operation: .sum)
            LayerNorm.backward(dinp: dresidual, dweight: g + layer.ln2Weight, dbias: g + layer.ln2Bias,
                               dout: s.dln.pointer, inp: a.residual2.pointer, weight: p + layer.ln2Weight,
                               mean: a.ln2Mean.pointer, rstd: a.ln2Rstd.pointer, rows: n, channels: c)
            // Attention.
            Matmul.backward(dinp: s.dattention.pointer, dweight: g + layer.projWeight, dbias: g + layer.projBias,
                            dout: dresidual, inp: a.attention.pointer, weight: p + layer.projWeight, ones: ones,
                            rows: n, inFeatures: local, outFeatures: c)
            Attention.backward(dqkv: s.dqkv.pointer, dout: s.dattention.pointer, out: a.attention.pointer,
                               logSumExp: a.attentionLSE.pointer, qkv: a.qkv.pointer,
                               scratch: s.attentionScratch.pointer,
                               batch: batch, seqLength: seqLength, heads: h, channels: local)
            Matmul.backward(dinp: s.dln.pointer, dweight: g + layer.qkvWeight, dbias: g + layer.qkvBias,
                            dout: s.dqkv.pointer, inp: a.ln1.pointer, weight: p + layer.qkvWeight, ones: ones,
                            rows: n, inFeatures: c, outFeatures: 3 * local)
            tensorParallel?.allReduce(s.dln.pointer, count: n * c, operation: .sum)
            LayerNorm.backward(dinp: dresidual, dweight: g + layer.ln1Weight, dbias: g + layer.ln1Bias,
                               dout: s.dln.pointer, inp: residual, weight: p + layer.ln1Weight,
                               mean: a.ln1Mean.pointer, rstd: a.ln1Rstd.pointer, rows: n, channels: c)
        }
        if part.embeds(chunk: chunk) {
            Embedding.backward(dwte: g + o.wordEmbeddings!, dwpe: g + o.positionEmbeddings!, dout: dresidual,
                               tokens: acts.tokens.pointer, batch: batch, seqLength: seqLength, channels: c,
                               vocabStart: vocabStart, vocabCount: vp)
        }
        acts.forwarded = false
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
}

/// Offsets (in floats) of one transformer layer's tensors inside the parameter layout; the
/// same offsets address the gradients.
struct GPTLayerOffsets {
    var ln1Weight = 0, ln1Bias = 0, qkvWeight = 0, qkvBias = 0, projWeight = 0, projBias = 0
    var ln2Weight = 0, ln2Bias = 0, fc1Weight = 0, fc1Bias = 0, fc2Weight = 0, fc2Bias = 0
}

/// Offsets of every tensor a GPT stage holds, resolved once so the step does no name look-ups
/// (nil: the stage does not hold that tensor).
struct GPTOffsets {
    let wordEmbeddings: Int?
    let positionEmbeddings: Int?
    /// Each model chunk's layers, in order.
    let chunks: [[GPTLayerOffsets]]
    let finalLNWeight: Int?
    let finalLNBias: Int?

    /// Every layer held, in chunk order.
    var layers: [GPTLayerOffsets] { chunks.flatMap { $0 } }

    init(layout: ParameterLayout, part: GPTPipelinePart) {
        func at(_ name: String) -> Int { layout.entry(name).offset }
        func optional(_ name: String) -> Int? { layout.index(of: name).map { layout.offsets[$0] } }
        wordEmbeddings = optional("embedding.word_embeddings.weight")
        positionEmbeddings = optional("embedding.position_embeddings.weight")
        chunks = part.chunkLayers.map { range in
            range.map { l in
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
        }
        finalLNWeight = optional("decoder.final_layernorm.weight")
        finalLNBias = optional("decoder.final_layernorm.bias")
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
