import Distributed
import Kernels
import Parameters

/// A GPT language model on one rank: pre-LayerNorm transformer blocks, learned positions, GELU
/// MLP, final LayerNorm and an output layer tied to the word embedding (REFERENCE section 1) or,
/// with `--untie-embeddings-and-output-weights`, a weight of its own.
///
/// Parameters live in one `ParameterStore` and their gradients in a second one of the same
/// layout. `forward` runs a micro-batch to the loss and keeps the activations the backward pass
/// needs; `backward` adds the gradient of every parameter into `grads`.
public final class GPTModel {
    /// The model's shape.
    public let config: GPTConfig
    /// Parameter layout shared by `params` and `grads` (and the optimizer moments).
    public let layout: ParameterLayout
    /// The fp32 weights (the master weights in bf16 and fp16), or, when `keepsMasterWeights` is
    /// false, unallocated: the distributed optimizer holds the fp32 master weights and the model
    /// only the low-precision copy and `fp32Copy`.
    public let params: ParameterStore
    /// Gradients, accumulated by `backward` until `zeroGrad`.
    public let grads: ParameterStore

    /// The stage's embedding, transformer layers and final LayerNorm over the flat buffers.
    let stage: GPTStageLayers
    /// The activations of the whole-model `forward` / `backward` (the pipeline executor keeps its own).
    var activations: GPTActivations?
    private var scratch: GPTScratch?
    /// Bytes of the shared per-shape scratch allocated so far (what `GPTMemory.scratchBytes` predicts).
    public var scratchBytes: Int { scratch?.allocatedBytes ?? 0 }
    /// The tensor-parallel group's f and g operators (Megatron-LM section 3).
    public let region: TensorParallelRegion
    /// The tensor-parallel group (nil: the whole model on this rank).
    public var tensorParallel: Communicator? { region.group }
    /// Tensor-parallel size and this rank's index in the group.
    public var tensorParallelSize: Int { region.size }
    public var tensorParallelRank: Int { region.rank }
    /// How each parameter tensor is split over the tensor-parallel ranks (index as `layout.specs`).
    public let shards: [TensorShard]
    /// The layers, embedding and head this pipeline stage holds.
    public let part: GPTPipelinePart
    /// Which activations the backward recomputes instead of keeping.
    public let recomputation: ActivationRecomputation
    /// The number format of the linear layers' GEMMs (`params` stays fp32: the master weights).
    public let precision: ComputePrecision
    /// The bf16 (or fp16) copy of `params` the low-precision GEMMs read (nil in fp32).
    let lowPrecisionWeights: LowPrecisionBuffer?
    /// Whether `lowPrecisionWeights` holds the current `params`.
    var lowPrecisionCurrent = false
    /// Whether `params` holds the fp32 weights. False for a bf16 or fp16 model trained by the
    /// distributed optimizer, which holds the fp32 master weights sharded (Megatron's 6 + 12/d
    /// bytes per parameter): the optimizer delivers the updated values (`receiveWeights`).
    public var keepsMasterWeights: Bool { fp32Copy == nil }
    /// Without the master weights: the fp32 values of the tensors read in fp32.
    let fp32Copy: FP32WeightCopy?
    /// The initialization seed, which also seeds the dropout masks.
    let seed: UInt64

    /// Creates a model with Megatron's initialization from `seed`: weights normal(0, std), the
    /// attention and MLP output projections normal(0, std / sqrt(2 * numLayers)), biases zero,
    /// LayerNorm weights one.
    ///
    /// With a tensor-parallel group of t ranks (Megatron-LM section 3), this rank holds 1/t of
    /// the word embedding (a vocabulary range), of the QKV and fc1 weights (column parallel: its
    /// heads and its slice of the 4h units) and of the attention-projection and fc2 weights (row
    /// parallel), and full copies of LayerNorms, position embeddings and output biases. With a
    /// pipeline `part`, it holds only that stage's layers, embedding and head. The whole model's
    /// tensors are generated from `seed` one at a time and sliced, so every layout starts from
    /// the same model.
    /// `recomputation` trades the backward's saved activations for a second forward.
    /// `shardedOver` pads the weight and gradient buffers to a multiple of that many equal
    /// shards (the distributed optimizer's data-parallel size) so that it needs no staging copy.
    /// `precision` is the linear layers' number format (see `ComputePrecision`).
    /// `sequenceParallel` splits the residual region's tokens over the tensor-parallel group
    /// (ignored without one; see `TensorParallelRegion`). `forInference` allocates no gradients
    /// and leaves the weights zero for the caller to load (no random initialization).
    /// `keepsMasterWeights: false` (bf16 or fp16 only) leaves the fp32 master weights to the
    /// caller's optimizer: the model holds the low-precision copy and the fp32 tensors it reads
    /// in fp32, and starts without weights (`forEachFreshTensor`, `receiveWeights`).
    public init(config: GPTConfig, seed: UInt64 = 1234, tensorParallel: Communicator? = nil,
                part: GPTPipelinePart? = nil, recomputation: ActivationRecomputation = .none,
                shardedOver zeroShards: Int = 1, precision: ComputePrecision = .fp32,
                sequenceParallel: Bool = false, forInference: Bool = false,
                keepsMasterWeights: Bool = true) throws(ConfigurationError) {
        precondition(keepsMasterWeights || precision != .fp32, "an fp32 model holds its own weights")
        try config.validate()
        let t = tensorParallel?.size ?? 1
        let part = part ?? .whole(numLayers: config.numLayers)
        guard part.numLayers == config.numLayers else {
            throw .invalid(flag: "--pipeline-model-parallel-size", reason: "\(part) was cut from \(part.numLayers) layers, the model has \(config.numLayers)")
        }
        do {
            try RankGrid(tensorParallel: t, dataParallel: 1, pipelineParallel: part.stages, virtualStages: part.chunks)
                .validate(heads: config.numAttentionHeads, hidden: config.hiddenSize,
                          paddedVocabulary: config.paddedVocabSize, layers: config.numLayers)
        } catch {
            throw .layout(error)
        }
        guard config.ffnHiddenSize % t == 0 else {
            throw .invalid(flag: "--ffn-hidden-size", reason: "\(config.ffnHiddenSize) does not divide over --tensor-model-parallel-size \(t)")
        }
        try recomputation.validate(layersPerChunk: part.chunkLayers.map(\.count).min() ?? 0)
        self.recomputation = recomputation
        self.config = config
        self.seed = seed
        region = TensorParallelRegion(group: tensorParallel, sequenceParallel: sequenceParallel)
        self.part = part
        layout = ParameterLayout(Self.parameterSpecs(config, tensorParallel: t, part: part))
        shards = layout.specs.map { TensorShard(name: $0.name) }
        let multiple = max(1, zeroShards)
        let capacity = (layout.totalCount + multiple - 1) / multiple * multiple
        params = keepsMasterWeights ? ParameterStore(layout: layout, capacity: capacity) : .unallocated(layout: layout)
        fp32Copy = keepsMasterWeights ? nil : FP32WeightCopy(layout: layout)
        grads = forInference ? .unallocated(layout: layout) : ParameterStore(layout: layout, capacity: capacity)
        self.precision = precision
        lowPrecisionWeights = LowPrecisionBuffer(precision, count: layout.totalCount)
        stage = GPTStageLayers(layout: layout, part: part, config: config, region: region)
        if !forInference && keepsMasterWeights { initialize(params) }
    }

    /// Whether tensor `index`'s gradient counts in the global gradient norm on this rank. Every
    /// element of the model counts once over all ranks: a tensor replicated over the tensor-
    /// parallel group counts on its rank 0 only, and the last stage's copy of the tied word
    /// embedding not at all (the first stage counts it).
    public func countsInGradientNorm(_ index: Int) -> Bool {
        if shards[index] == .replicated && tensorParallelRank != 0 { return false }
        if layout.specs[index].name == wordEmbeddingName && !part.holdsEmbedding { return false }
        return true
    }

    /// Sets every gradient to zero (before the first micro-batch of a step).
    public func zeroGrad() { if grads.isAllocated { grads.zero() } }

    /// Tells the model that `params` changed (an optimizer step, a loaded checkpoint, imported
    /// weights): in bf16 or fp16 the next forward rounds them into the low-precision copy again.
    /// (Without the master weights the copy is current by construction: nothing to do.)
    public func weightsDidChange() { if keepsMasterWeights { lowPrecisionCurrent = false } }

    /// How this model's linear layers multiply, with `s`'s operand scratch.
    private func linearPrecision(_ s: GPTScratch) -> LinearPrecision {
        linearPrecision(operand: s.operandInput, outputGradient: s.operandOutputGradient)
    }

    /// The fp32 values the layers read (all of `params`, or the tensors of `fp32Copy`).
    var fp32Weights: FP32Weights {
        fp32Copy.map(FP32Weights.init(copy:)) ?? FP32Weights(whole: UnsafePointer(params.buffer.pointer))
    }

    /// How this model's linear layers multiply with these operand buffers (a forward-only caller
    /// needs no output-gradient one); refreshes the low-precision weights when `params` changed
    /// since they were last rounded.
    func linearPrecision(operand input: LowPrecisionBuffer?, outputGradient: LowPrecisionBuffer? = nil) -> LinearPrecision {
        guard let weights = lowPrecisionWeights, let input else { return .fp32 }
        precondition(lowPrecisionCurrent || keepsMasterWeights, "a model without master weights was never given weights")
        if !lowPrecisionCurrent {
            weights.round(from: params.buffer.pointer, count: layout.totalCount)
            lowPrecisionCurrent = true
        }
        return LowPrecisionBuffer.linearPrecision(weights: weights, input: input, outputGradient: outputGradient ?? input)
    }

    /// Activation storage for one micro-batch in flight through model chunk `chunk`.
    public func makeActivations(chunk: Int, batch: Int, seqLength: Int) -> GPTActivations {
        GPTActivations(config: config, batch: batch, seqLength: seqLength, tensorParallel: tensorParallelSize,
                       layerCount: part.chunkLayers[chunk].count, head: part.computesLoss(chunk: chunk),
                       recomputation: recomputation, precision: precision, sequenceParallel: region.sequenceParallel)
    }

    /// The shared scratch, reshaped to `batch x seqLength`, or made anew when it holds too few
    /// tokens or too short sequences: then for the larger of each and the old one's (so that
    /// alternating shapes, many short sequences and one long one, do not remake it every time).
    private func scratchFor(batch: Int, seqLength: Int) -> GPTScratch {
        if let scratch, scratch.reshape(batch: batch, seqLength: seqLength) { return scratch }
        let length = max(seqLength, scratch?.seqLengthCapacity ?? 0)
        let tokens = max(batch * seqLength, scratch?.tokenCapacity ?? 0)
        scratch = nil
        let created = GPTScratch(config: config, batch: (tokens + length - 1) / length, seqLength: length,
                                 tensorParallel: tensorParallelSize, recomputation: recomputation,
                                 layersPerChunk: part.chunkLayers.map(\.count).max() ?? 0,
                                 precision: precision, head: part.holdsHead, sequenceParallel: region.sequenceParallel)
        precondition(created.reshape(batch: batch, seqLength: seqLength), "GPTScratch: a new scratch does not hold its shape")
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
        let localHeads = config.numAttentionHeads / tensorParallelSize
        let p = fp32Weights
        let s = scratchFor(batch: batch, seqLength: seqLength)
        let precision = linearPrecision(s)
        let dropout = self.dropout(acts)

        if part.embeds(chunk: chunk) {
            stage.embedding!.forward(out: acts.embedded.pointer, partial: s.sequenceGathered ?? acts.embedded.pointer,
                                     tokens: acts.tokens.pointer, batch: batch, seqLength: seqLength, params: p,
                                     precision: precision, region: region)
            if let tokenTypes = stage.tokenTypeEmbedding, let bert = acts.bert {
                // As Megatron's low-precision sums: words + positions rounded, then the token types added.
                precision.roundInPlace(acts.embedded.pointer, count: region.localRows(n) * c)
                precision.addRows(acts.embedded.pointer, rows: bert.tokenTypes.pointer + region.firstLocalRow(n), table: tokenTypes,
                                  params: p, count: region.localRows(n), channels: c)
            }
            precision.roundInPlace(acts.embedded.pointer, count: region.localRows(n) * c)
            dropout?.applyHidden(acts.embedded.pointer, rows: region.localRows(n), site: .embedding, layer: 0)
        }
        var residual = UnsafePointer(acts.embedded.pointer)
        for (l, layer) in stage.chunks[chunk].enumerated() {
            if let a = acts.layers[l] {
                // A kept layer (its attention core goes to scratch when the backward recomputes it).
                let selective = recomputation.recomputesAttentionCore
                let logSumExp = selective ? s.attentionLSE.pointer : a.attentionLSE.pointer
                layer.forward(input: residual, buffers: a.buffers(gelu: s.gelu.pointer, attention: selective ? s.attention.pointer : nil, scratch: s),
                              rows: n, params: p, precision: precision, region: region, dropout: dropout) { qkv, out in
                    Attention.forward(out: out, logSumExp: logSumExp, qkv: qkv, scratch: s.attentionScratch.pointer,
                                      batch: batch, seqLength: seqLength, heads: localHeads, channels: c / tensorParallelSize,
                                      mask: acts.attentionMask, dropout: dropout?.attentionStream(layer: layer.index),
                                      bf16GEMMs: self.precision == .bf16)
                }
                residual = UnsafePointer(a.residual3.pointer)
            } else {
                // A recomputed layer runs in the workspace; its group's output is kept at the boundary.
                let group = acts.recomputedGroup(of: l)!
                let w = s.workspace[l - group.lowerBound]
                forwardInWorkspace(layer, input: residual, workspace: w, acts: acts, scratch: s, params: p,
                                   precision: precision, dropout: dropout)
                residual = UnsafePointer(w.residual3.pointer)
                if l == group.upperBound - 1 {
                    MemoryCopy.copy(to: acts.boundaries[group.upperBound]!.pointer, from: residual, count: region.localRows(n) * c)
                    residual = UnsafePointer(acts.boundaries[group.upperBound]!.pointer)
                }
            }
        }
        acts.forwarded = true
        guard part.computesLoss(chunk: chunk), let embedding = stage.embedding, let finalLN = stage.finalLayerNorm else { return nil }
        if let heads = stage.bertHeads, let bert = acts.bert {
            acts.totals = bertHeadsForward(heads, bert: bert, residual: residual, activations: acts, scratch: s, params: p,
                                           precision: precision, embedding: embedding, finalLayerNorm: finalLN, dropout: dropout)
            return acts.totals
        }
        let totals = GPTLossHead(embedding: embedding, finalLayerNorm: finalLN, config: config)
            .forward(residual: residual, activations: acts, scratch: s, params: p, precision: precision, region: region)
        acts.totals = totals
        return totals
    }

    /// Adds model chunk `chunk`'s parameter gradients for the micro-batch of `acts` to `grads`.
    /// The chunk with the loss starts from `gradientScale * loss`; any other from
    /// `acts.outputGradient`. Afterwards `acts.inputGradient` holds the gradient of the chunk's
    /// input (the first chunk of the first stage adds it into the embeddings instead).
    public func backward(chunk: Int, activations acts: GPTActivations, gradientScale: Float = 1) {
        precondition(acts.forwarded, "backward called without a forward")
        precondition(grads.isAllocated, "a model loaded for inference has no gradients")
        let batch = acts.batch, seqLength = acts.seqLength
        let n = batch * seqLength
        let c = config.hiddenSize
        let localHeads = config.numAttentionHeads / tensorParallelSize
        let p = fp32Weights
        let grad = grads.buffer.pointer
        let s = scratchFor(batch: batch, seqLength: seqLength)
        let precision = linearPrecision(s)
        let dresidual = acts.dresidual.pointer
        let layers = stage.chunks[chunk]
        let dropout = self.dropout(acts)

        if part.computesLoss(chunk: chunk), let embedding = stage.embedding, let finalLN = stage.finalLayerNorm,
           let heads = stage.bertHeads, let bert = acts.bert {
            guard let totals = acts.totals else { preconditionFailure("backward called without a forward") }
            bertHeadsBackward(heads, bert: bert, totals: totals, gradientScale: gradientScale,
                              lastResidual: acts.input(ofLayer: layers.count), activations: acts, scratch: s, params: p,
                              grads: grad, precision: precision, embedding: embedding, finalLayerNorm: finalLN, dropout: dropout)
            acts.totals = nil
        } else if part.computesLoss(chunk: chunk), let embedding = stage.embedding, let finalLN = stage.finalLayerNorm {
            guard let totals = acts.totals else { preconditionFailure("backward called without a forward") }
            GPTLossHead(embedding: embedding, finalLayerNorm: finalLN, config: config)
                .backward(totals: totals, gradientScale: gradientScale, lastResidual: acts.input(ofLayer: layers.count),
                          activations: acts, scratch: s, params: p, grads: grad, precision: precision, region: region)
            acts.totals = nil
        }
        let gradients = s.layerGradients
        var materialized: Range<Int>?  // the recomputed group whose activations the workspace holds
        for l in stride(from: layers.count - 1, through: 0, by: -1) {
            let buffers: TransformerLayerBuffers, input: UnsafePointer<Float>
            let logSumExp: UnsafePointer<Float>
            if let a = acts.layers[l] {
                input = UnsafePointer(acts.input(ofLayer: l))
                if recomputation.recomputesAttentionCore {
                    // Selective recomputation: the attention core again, from the saved QKV.
                    let qkv = a.qkvForAttention(scratch: s, count: n * 3 * c / tensorParallelSize)
                    Attention.forward(out: s.attention.pointer, logSumExp: s.attentionLSE.pointer, qkv: qkv,
                                      scratch: s.attentionScratch.pointer, batch: batch, seqLength: seqLength,
                                      heads: localHeads, channels: c / tensorParallelSize, mask: acts.attentionMask,
                                      dropout: dropout?.attentionStream(layer: layers[l].index),
                                      bf16GEMMs: self.precision == .bf16)
                    buffers = a.buffers(gelu: s.gelu.pointer, attention: s.attention.pointer, scratch: s)
                    logSumExp = UnsafePointer(s.attentionLSE.pointer)
                } else {
                    buffers = a.buffers(gelu: s.gelu.pointer, scratch: s)
                    logSumExp = UnsafePointer(a.attentionLSE.pointer)
                }
            } else {
                // Full recomputation: re-run the group's forward from its kept input, once per group.
                let group = acts.recomputedGroup(of: l)!
                if materialized != group {
                    var x = UnsafePointer(acts.input(ofLayer: group.lowerBound))
                    for j in group {
                        let w = s.workspace[j - group.lowerBound]
                        forwardInWorkspace(layers[j], input: x, workspace: w, acts: acts, scratch: s, params: p,
                                           precision: precision, dropout: dropout)
                        x = UnsafePointer(w.residual3.pointer)
                    }
                    materialized = group
                }
                let k = l - group.lowerBound
                let w = s.workspace[k]
                input = UnsafePointer(k == 0 ? acts.input(ofLayer: group.lowerBound) : s.workspace[k - 1].residual3.pointer)
                buffers = w.buffers(gelu: s.gelu.pointer, scratch: s)
                logSumExp = UnsafePointer(w.attentionLSE.pointer)
            }
            // The layer's backward hands the attention core its QKV and output in fp32 (widened
            // from the bf16 copies into `buffers`' scratch when bf16 keeps them).
            layers[l].backward(input: input, buffers: buffers, dresidual: dresidual, scratch: gradients, rows: n, params: p,
                               grads: grad, precision: precision, region: region, dropout: dropout) { dqkv, dout in
                Attention.backward(dqkv: dqkv, dout: dout, out: buffers.attention, logSumExp: logSumExp, qkv: buffers.qkv,
                                   scratch: s.attentionScratch.pointer,
                                   batch: batch, seqLength: seqLength, heads: localHeads, channels: c / tensorParallelSize,
                                   mask: acts.attentionMask, dropout: dropout?.attentionStream(layer: layers[l].index),
                                   bf16GEMMs: self.precision == .bf16)
            }
        }
        if part.embeds(chunk: chunk) {
            dropout?.applyHidden(dresidual, rows: region.localRows(n), site: .embedding, layer: 0)
            if let tokenTypes = stage.tokenTypeEmbedding, let bert = acts.bert {
                BERTTokenTypes.backward(grad + tokenTypes, dout: dresidual, types: bert.tokenTypes.pointer + region.firstLocalRow(n),
                                        rows: region.localRows(n), channels: c)
            }
            stage.embedding!.backward(dout: dresidual, gathered: s.sequenceGathered, tokens: acts.tokens.pointer,
                                      batch: batch, seqLength: seqLength, grads: grad, region: region)
        }
        acts.forwarded = false
    }

    /// Runs `layer` forward on `input` with every activation in the workspace slot `w` (a layer
    /// of a recomputed group: in the forward, and again in the backward).
    private func forwardInWorkspace(_ layer: TransformerLayer, input: UnsafePointer<Float>, workspace w: GPTLayerActivations,
                                    acts: GPTActivations, scratch s: GPTScratch, params p: FP32Weights,
                                    precision: LinearPrecision, dropout: ModelDropout?) {
        let localHeads = config.numAttentionHeads / tensorParallelSize
        layer.forward(input: input, buffers: w.buffers(gelu: s.gelu.pointer, scratch: s), rows: acts.batch * acts.seqLength, params: p,
                      precision: precision, region: region, dropout: dropout) { qkv, out in
            Attention.forward(out: out, logSumExp: w.attentionLSE.pointer, qkv: qkv, scratch: s.attentionScratch.pointer,
                              batch: acts.batch, seqLength: acts.seqLength, heads: localHeads,
                              channels: config.hiddenSize / tensorParallelSize, mask: acts.attentionMask,
                              dropout: dropout?.attentionStream(layer: layer.index), bf16GEMMs: self.precision == .bf16)
        }
    }

    /// The dropouts of `acts`' forward (nil for an evaluation forward or without dropout).
    private func dropout(_ acts: GPTActivations) -> ModelDropout? {
        ModelDropout(config: config, seed: seed, sample: acts.dropoutSample, batch: acts.batch, seqLength: acts.seqLength,
                     region: region)
    }
}
