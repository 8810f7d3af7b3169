import Kernels
import Parameters

/// Saved activations of one transformer layer for a micro-batch of `n = batch * seqLength` rows
/// (`m` of them this rank's outside the tensor-parallel region: `n`, or `n / t` with sequence
/// parallelism).
final class GPTLayerActivations {
    let ln1: FloatBuffer, ln1Mean: FloatBuffer, ln1Rstd: FloatBuffer  // [m, c], [m], [m]
    let qkv: FloatBuffer                                               // [n, 3c]
    let attention: FloatBuffer                                         // [n, c] (empty when recomputed or bf16)
    let attentionLSE: FloatBuffer                                      // [batch, heads, seqLength] (likewise)
    let residual2: FloatBuffer                                         // [m, c] input + attention branch
    let ln2: FloatBuffer, ln2Mean: FloatBuffer, ln2Rstd: FloatBuffer
    let fc: FloatBuffer                                                // [n, 4c] before GELU
    let residual3: FloatBuffer                                         // [m, c] the layer's output
    /// bf16 training keeps the LayerNorm, QKV, attention and fc1 outputs in bf16 instead (the
    /// fp32 buffers are then empty and the layer works in shared scratch).
    let bf16LN1: BFloat16Buffer, bf16LN2: BFloat16Buffer, bf16FC: BFloat16Buffer
    let bf16QKV: BFloat16Buffer, bf16Attention: BFloat16Buffer

    /// `local` is this rank's share of the hidden size (c / TP) and `ffnLocal` its share of the
    /// MLP; `shardRows` of the `n` tokens are this rank's outside the tensor-parallel region (all
    /// `n`, or `n / TP` with sequence parallelism: the LayerNorms and residuals); without
    /// `keepsAttentionCore` the attention output and statistics are not stored (selective
    /// recomputation); with `keepsBF16Inputs` the GEMM-only activations are bf16.
    init(n: Int, shardRows m: Int, c: Int, local: Int, ffnLocal: Int, lseCount: Int, keepsAttentionCore: Bool = true,
         keepsBF16Inputs: Bool = false) {
        let fp32 = keepsBF16Inputs ? 0 : 1, bf16 = keepsBF16Inputs ? 1 : 0
        ln1 = FloatBuffer(count: fp32 * m * c); ln1Mean = FloatBuffer(count: m); ln1Rstd = FloatBuffer(count: m)
        qkv = FloatBuffer(count: fp32 * n * 3 * local)
        attention = FloatBuffer(count: keepsAttentionCore ? fp32 * n * local : 0)
        attentionLSE = FloatBuffer(count: keepsAttentionCore ? lseCount : 0)
        residual2 = FloatBuffer(count: m * c)
        ln2 = FloatBuffer(count: fp32 * m * c); ln2Mean = FloatBuffer(count: m); ln2Rstd = FloatBuffer(count: m)
        fc = FloatBuffer(count: fp32 * n * ffnLocal)
        residual3 = FloatBuffer(count: m * c)
        bf16LN1 = BFloat16Buffer(count: bf16 * m * c)
        bf16LN2 = BFloat16Buffer(count: bf16 * m * c)
        bf16FC = BFloat16Buffer(count: bf16 * n * ffnLocal)
        bf16QKV = BFloat16Buffer(count: bf16 * n * 3 * local)
        bf16Attention = BFloat16Buffer(count: keepsAttentionCore ? bf16 * n * local : 0)
    }

    /// The layer's forward buffers, with the GELU output in `gelu` (shared scratch: the backward
    /// recomputes it) and the attention core's output in `attention` (its own buffer unless it
    /// is recomputed). A layer keeping bf16 activations works in `s`'s fp32 scratch.
    func buffers(gelu: UnsafeMutablePointer<Float>, attention: UnsafeMutablePointer<Float>? = nil,
                 scratch s: GPTScratch) -> TransformerLayerBuffers {
        let bf16 = keepsBF16
        var buffers = TransformerLayerBuffers(
            ln1: bf16 ? s.layerNormOutput.pointer : ln1.pointer, ln1Mean: ln1Mean.pointer, ln1Rstd: ln1Rstd.pointer,
            qkv: bf16 ? s.qkv.pointer : qkv.pointer,
            attention: attention ?? (bf16 ? s.attentionOutput.pointer : self.attention.pointer), residual2: residual2.pointer,
            ln2: bf16 ? s.layerNormOutput.pointer : ln2.pointer, ln2Mean: ln2Mean.pointer, ln2Rstd: ln2Rstd.pointer,
            fc: bf16 ? s.fc.pointer : fc.pointer, gelu: gelu, output: residual3.pointer, gathered: s.sequenceGathered)
        if bf16 {
            buffers.savedBF16 = BF16LayerInputs(ln1: bf16LN1.pointer, ln2: bf16LN2.pointer, qkv: bf16QKV.pointer,
                                                attention: attention == nil ? bf16Attention.pointer : nil, fc: bf16FC.pointer)
        }
        return buffers
    }

    /// Whether the layer keeps its activations in bf16.
    var keepsBF16: Bool { bf16FC.count > 0 }

    /// The saved QKV in fp32, for the attention core: in place, or widened into `s.qkv` (bf16).
    func qkvForAttention(scratch s: GPTScratch, count: Int) -> UnsafePointer<Float> {
        guard keepsBF16 else { return UnsafePointer(qkv.pointer) }
        BFloat16Conversion.widen(out: s.qkv.pointer, inp: bf16QKV.pointer, count: count)
        return UnsafePointer(s.qkv.pointer)
    }

    /// Bytes held.
    var allocatedBytes: Int {
        4 * [ln1, ln1Mean, ln1Rstd, qkv, attention, attentionLSE, residual2, ln2, ln2Mean, ln2Rstd, fc, residual3]
            .reduce(0) { $0 + $1.count } + 2 * [bf16LN1, bf16LN2, bf16FC, bf16QKV, bf16Attention].reduce(0) { $0 + $1.count }
    }
}

/// Everything one model chunk's forward keeps for its backward, for one micro-batch in flight.
/// A pipeline stage holds several at once (one per micro-batch between its forward and its
/// backward); they are reused from step to step.
///
/// `input` is the chunk's input (the embedding output, or the activation received from the
/// previous stage) and `output` its output (sent to the next stage). `outputGradient` receives
/// the gradient of the output before the backward; after the backward the same buffer holds the
/// gradient of the input (`inputGradient`), sent to the previous stage.
///
/// With full recomputation a recomputed layer keeps nothing: its group keeps its input (the
/// previous layer's output, or the boundary copy of the previous group's output) and the group's
/// output is copied into a boundary buffer for whatever follows it.
public final class GPTActivations {
    /// Micro-batch shape (a whole-model forward may run a smaller one in a GPT set allocated for
    /// more tokens: `reshape`).
    public private(set) var batch: Int
    public private(set) var seqLength: Int
    /// Tokens the buffers were allocated for (`batch * seqLength` at allocation).
    let tokenCapacity: Int
    let tokens: Int32Buffer, targets: Int32Buffer, lossMask: FloatBuffer
    var hasLossMask = false
    var totals: CrossEntropy.Totals?
    var forwarded = false
    /// The run-wide index of the micro-batch's first sample when its forward is a training one
    /// (dropout, if configured, applies); nil for an evaluation forward.
    public var dropoutSample: Int?
    let embedded: FloatBuffer                        // [m, c] the chunk's input (m: this rank's tokens, see init)
    /// Each layer's saved activations; nil for a layer that full recomputation re-runs.
    let layers: [GPTLayerActivations?]
    /// The recomputed groups of layers, in order.
    let recomputedGroups: [Range<Int>]
    /// The output of each recomputed group, by the index of the layer (or chunk end) it feeds.
    let boundaries: [Int: FloatBuffer]
    /// The final LayerNorm's output `[m, c]` (BERT's: `[n, c]`, every token, for its heads) and
    /// statistics `[m]`.
    let lnf: FloatBuffer, lnfMean: FloatBuffer, lnfRstd: FloatBuffer
    /// The final LayerNorm's output in bf16 training (then `lnf` is empty; the forward writes the
    /// fp32 output to scratch and the output layer keeps it rounded here).
    let bf16LNF: BFloat16Buffer
    let logits: FloatBuffer                          // [n, vocab]; becomes its gradient in backward (empty without the head)
    let logitsLSE: FloatBuffer, losses: FloatBuffer  // [n]
    let dresidual: FloatBuffer                       // [m, c] gradient of the residual stream
    /// A BERT micro-batch's inputs and heads (nil for GPT).
    let bert: BERTActivations?

    /// Sizes for `layerCount` layers on one rank of a tensor-parallel group of `t`, with the
    /// final LayerNorm and output layer when `head`: QKV, attention, MLP and logits hold the
    /// rank's heads, MLP units and vocabulary range. `recomputation` says what is not kept. With
    /// `sequenceParallel` the residual stream, LayerNorms, chunk input and output and their
    /// gradients hold this rank's `m = n / t` tokens (the pipeline sends carry that shard).
    init(config: GPTConfig, batch: Int, seqLength: Int, tensorParallel t: Int, layerCount: Int, head: Bool,
         recomputation: ActivationRecomputation = .none, precision: ComputePrecision = .fp32,
         sequenceParallel: Bool = false) {
        self.batch = batch
        self.seqLength = seqLength
        let n = batch * seqLength
        tokenCapacity = n
        let m = sequenceParallel ? n / t : n  // this rank's tokens outside the tensor-parallel region
        let c = config.hiddenSize
        let local = c / t
        let ffnLocal = config.ffnHiddenSize / t
        tokens = Int32Buffer(count: n)
        targets = Int32Buffer(count: n)
        lossMask = FloatBuffer(count: n)
        embedded = FloatBuffer(count: m * c)
        recomputedGroups = recomputation.recomputedGroups(layerCount: layerCount)
        let recomputed = Set(recomputedGroups.flatMap { $0 })
        layers = (0..<layerCount).map { l in
            recomputed.contains(l) ? nil : GPTLayerActivations(
                n: n, shardRows: m, c: c, local: local, ffnLocal: ffnLocal, lseCount: batch * config.numAttentionHeads / t * seqLength,
                keepsAttentionCore: !recomputation.recomputesAttentionCore, keepsBF16Inputs: precision == .bf16)
        }
        boundaries = Dictionary(uniqueKeysWithValues: recomputedGroups.map { ($0.upperBound, FloatBuffer(count: m * c)) })
        let headShardRows = head ? m : 0
        // Logits for the next-token or masked-LM head (a fine-tuning BERT head has none).
        let headRows = head && (config.bert?.head ?? .pretraining) == .pretraining ? n : 0
        // BERT's heads read the final LayerNorm's output in fp32 (GPT's bf16 output layer keeps it
        // rounded), every token of it (gathered with sequence parallelism).
        let lnfBF16 = precision == .bf16 && config.bert == nil ? 1 : 0
        let lnfRows = config.bert == nil ? headShardRows : (head ? n : 0)
        lnf = FloatBuffer(count: (1 - lnfBF16) * lnfRows * c); lnfMean = FloatBuffer(count: headShardRows)
        lnfRstd = FloatBuffer(count: headShardRows)
        bf16LNF = BFloat16Buffer(count: lnfBF16 * headShardRows * c)
        logits = FloatBuffer(count: headRows * config.paddedVocabSize / t)
        logitsLSE = FloatBuffer(count: headRows)
        losses = FloatBuffer(count: headRows)
        dresidual = FloatBuffer(count: m * c)
        bert = config.bert == nil ? nil : BERTActivations(config: config, batch: batch, seqLength: seqLength, head: head,
                                                          localRows: m)
    }

    /// Which keys the attention core lets each query see: causal, or BERT's padding mask.
    var attentionMask: Attention.Mask {
        guard let bert else { return .causal }
        return .padding(keyLengths: UnsafePointer(bert.keyLengths.pointer))
    }

    /// The input of layer `l` (`l == layers.count`: the chunk's output).
    func input(ofLayer l: Int) -> UnsafeMutablePointer<Float> {
        if l == 0 { return embedded.pointer }
        if let previous = layers[l - 1] { return previous.residual3.pointer }
        return boundaries[l]!.pointer
    }

    /// The recomputed group holding layer `l`, if any.
    func recomputedGroup(of l: Int) -> Range<Int>? {
        layers[l] == nil ? recomputedGroups.first { $0.contains(l) } : nil
    }

    /// Elements of `input`, `output` and the gradients (`batch * seqLength * hiddenSize`, or
    /// this rank's `1/t` of it with sequence parallelism).
    public var hiddenCount: Int { embedded.count / tokenCapacity * batch * seqLength }

    /// Reuses these buffers for a GPT micro-batch of `batch x seqLength` tokens, at most
    /// `tokenCapacity` (every buffer's size is proportional to the tokens, and every kernel is
    /// told its count from the shape; BERT's per-sequence buffers keep their shape). Returns
    /// false, changing nothing, when the shape does not fit.
    func reshape(batch: Int, seqLength: Int) -> Bool {
        guard bert == nil, batch > 0, seqLength > 0, batch * seqLength <= tokenCapacity else { return false }
        (self.batch, self.seqLength) = (batch, seqLength)
        (totals, forwarded) = (nil, false)
        return true
    }
    /// The chunk's input activation `[batch, seqLength, hidden]` (write the received one here).
    public var input: UnsafeMutablePointer<Float> { embedded.pointer }
    /// The chunk's output activation after its forward.
    public var output: UnsafePointer<Float> { UnsafePointer(input(ofLayer: layers.count)) }
    /// Write the gradient of the output here before the backward of a chunk without the loss.
    public var outputGradient: UnsafeMutablePointer<Float> { dresidual.pointer }
    /// The gradient of the input after the backward.
    public var inputGradient: UnsafePointer<Float> { UnsafePointer(dresidual.pointer) }

    /// Bytes this set holds (what `GPTMemory.activationBytes` predicts).
    public var allocatedBytes: Int {
        let perLayer = layers.reduce(0) { $0 + ($1?.allocatedBytes ?? 0) }
        let own = [lossMask, embedded, lnf, lnfMean, lnfRstd, logits, logitsLSE, losses, dresidual].reduce(0) { $0 + $1.count }
            + boundaries.values.reduce(0) { $0 + $1.count }
        return 4 * (tokens.count + targets.count + own) + perLayer + 2 * bf16LNF.count + (bert?.allocatedBytes ?? 0)
    }
}

/// A GPT's per-step scratch, shared by every layer and every micro-batch in flight (only one
/// forward or backward runs at a time on a rank).
final class GPTScratch {
    /// The shape it serves now (at most `tokenCapacity` tokens and `seqLengthCapacity` long).
    private(set) var batch: Int
    private(set) var seqLength: Int
    /// The shape it was allocated for: its buffers grow with the tokens, the attention's with
    /// the sequence length.
    let tokenCapacity: Int, seqLengthCapacity: Int
    let gelu: FloatBuffer                            // [n, 4c] GELU output (recomputed in backward)
    let attentionScratch: FloatBuffer
    let dln: FloatBuffer, dattention: FloatBuffer    // [n, c]
    let dqkv: FloatBuffer                            // [n, 3c]
    let dfc: FloatBuffer                             // [n, 4c]
    let ones: FloatBuffer                            // [n] for bias gradients
    let crossEntropyScratch: FloatBuffer             // [3n] vocab-parallel row statistics
    /// The attention core's output and statistics of a layer whose core is recomputed
    /// (selective recomputation; empty otherwise).
    let attention: FloatBuffer, attentionLSE: FloatBuffer
    /// Full activations of one recomputed group, re-run in the backward (full recomputation).
    let workspace: [GPTLayerActivations]
    /// fp32 LayerNorm, fc1, QKV and attention outputs of a layer keeping them in bf16 (bf16
    /// training; empty otherwise): `[m, c]` (this rank's tokens), `[n, 4c/t]`, `[n, 3c/t]`, `[n, c/t]` (the last
    /// empty with selective recomputation, which has `attention`).
    let layerNormOutput: FloatBuffer, fc: FloatBuffer, qkv: FloatBuffer, attentionOutput: FloatBuffer
    /// bf16 or fp16 operands of the linear layers' GEMMs: the activation `[n, max(c, 4c/t)]` and
    /// the output gradient, `[n, max(3c/t, c, 4c/t)]` or with the head at least a block of
    /// logits-gradient rows `[512, vocab/t]` (nil in fp32).
    let operandInput: LowPrecisionBuffer?, operandOutputGradient: LowPrecisionBuffer?
    /// With sequence parallelism: everything gathered along the sequence `[n, c]` (LayerNorm
    /// outputs entering the tensor-parallel region, output gradients coming back, partial sums
    /// before their reduce-scatter) and the reduce-scattered LayerNorm input gradient `[n/t, c]`
    /// (both empty otherwise).
    let gathered: FloatBuffer, dlnShard: FloatBuffer
    /// With hidden dropout, a branch's output gradient after the mask `[m, c]` (empty otherwise).
    let dbranch: FloatBuffer

    init(config: GPTConfig, batch: Int, seqLength: Int, tensorParallel t: Int, recomputation: ActivationRecomputation = .none,
         layersPerChunk: Int = 0, precision: ComputePrecision = .fp32, head: Bool = true, sequenceParallel: Bool = false) {
        self.batch = batch
        self.seqLength = seqLength
        let n = batch * seqLength
        (tokenCapacity, seqLengthCapacity) = (n, seqLength)
        let m = sequenceParallel ? n / t : n
        let c = config.hiddenSize
        let local = c / t
        let ffnLocal = config.ffnHiddenSize / t
        let lseCount = batch * config.numAttentionHeads / t * seqLength
        gelu = FloatBuffer(count: n * ffnLocal)
        attentionScratch = FloatBuffer(count: Attention.scratchCount(seqLength: seqLength))
        dln = FloatBuffer(count: n * c)
        dattention = FloatBuffer(count: n * local)
        dqkv = FloatBuffer(count: n * 3 * local)
        dfc = FloatBuffer(count: n * ffnLocal)
        ones = FloatBuffer(count: n)
        ones.pointer.update(repeating: 1, count: n)
        crossEntropyScratch = FloatBuffer(count: 3 * n)
        let selective = recomputation.recomputesAttentionCore
        attention = FloatBuffer(count: selective ? n * local : 0)
        attentionLSE = FloatBuffer(count: selective ? lseCount : 0)
        let groupSize = recomputation.recomputedGroups(layerCount: layersPerChunk).map(\.count).max() ?? 0
        let bf16 = precision == .bf16
        workspace = (0..<groupSize).map { _ in
            GPTLayerActivations(n: n, shardRows: m, c: c, local: local, ffnLocal: ffnLocal, lseCount: lseCount,
                                keepsBF16Inputs: bf16)
        }
        layerNormOutput = FloatBuffer(count: bf16 ? m * c : 0)
        fc = FloatBuffer(count: bf16 ? n * ffnLocal : 0)
        qkv = FloatBuffer(count: bf16 ? n * 3 * local : 0)
        attentionOutput = FloatBuffer(count: bf16 && !selective ? n * local : 0)
        let operands = GPTMemory.operandCounts(config: config, batch: batch, seqLength: seqLength, tensorParallel: t,
                                               head: head)
        operandInput = LowPrecisionBuffer(precision, count: operands.input)
        operandOutputGradient = LowPrecisionBuffer(precision, count: operands.outputGradient)
        gathered = FloatBuffer(count: sequenceParallel ? n * c : 0)
        dlnShard = FloatBuffer(count: sequenceParallel ? m * c : 0)
        dbranch = FloatBuffer(count: config.hiddenDropout > 0 ? m * c : 0)
    }

    /// Serves a `batch x seqLength` micro-batch if it fits (see `GPTActivations.reshape`);
    /// returns false, changing nothing, when it does not.
    func reshape(batch: Int, seqLength: Int) -> Bool {
        guard batch > 0, seqLength > 0, batch * seqLength <= tokenCapacity, seqLength <= seqLengthCapacity else {
            return false
        }
        (self.batch, self.seqLength) = (batch, seqLength)
        return true
    }

    /// `gathered` with sequence parallelism, nil otherwise.
    var sequenceGathered: UnsafeMutablePointer<Float>? { gathered.count > 0 ? gathered.pointer : nil }

    /// Bytes this scratch holds (what `GPTMemory.scratchBytes` predicts).
    var allocatedBytes: Int {
        4 * [gelu, attentionScratch, dln, dattention, dqkv, dfc, ones, crossEntropyScratch, attention, attentionLSE,
             layerNormOutput, fc, qkv, attentionOutput, gathered, dlnShard, dbranch]
            .reduce(0) { $0 + $1.count } + workspace.reduce(0) { $0 + $1.allocatedBytes }
            + (operandInput?.byteCount ?? 0) + (operandOutputGradient?.byteCount ?? 0)
    }

    /// The gradient scratch every layer's backward uses in turn.
    var layerGradients: TransformerLayerGradients {
        TransformerLayerGradients(dln: dln.pointer, dattention: dattention.pointer, dqkv: dqkv.pointer, dfc: dfc.pointer,
                                  ones: UnsafePointer(ones.pointer), dlnShard: dlnShard.count > 0 ? dlnShard.pointer : nil,
                                  dbranch: dbranch.count > 0 ? dbranch.pointer : nil)
    }
}
