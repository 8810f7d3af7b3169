import Kernels

/// Megatron's dropouts in one training micro-batch's forward, and in the backward (or the
/// recomputed forward) that replays it: on the embedding output, on each attention and MLP
/// output before its residual addition (`--hidden-dropout`), on the attention probabilities
/// (`--attention-dropout`), and on a fine-tuning BERT's pooled output before its task layer
/// (`--hidden-dropout`, Megatron's `Classification` and `MultipleChoice` dropout).
///
/// Megatron draws the replicated regions' masks from one generator shared by the
/// tensor-parallel group and the split regions' (the attention heads, and with sequence
/// parallelism the residual region's tokens) from a generator per tensor-parallel rank. Here
/// every element's draw is a function of the seed, the site, the layer, the sample's index in
/// the run and the element's position in the whole tensor (`DropoutMask`): the replicated
/// region draws one mask for the group as Megatron's shared generator does, and each rank's
/// part of a split region draws exactly what one rank would draw there. So any layout, and any
/// recomputation, drops the same elements as one rank, and nothing about the random state needs
/// saving beyond the seed and the consumed samples a checkpoint already holds.
struct ModelDropout {
    /// Where a mask is drawn.
    enum Site: Int {
        case embedding = 1, attentionProbabilities, attentionOutput, mlpOutput, pooled
    }

    let hidden: Float, attention: Float
    let seed: UInt64
    /// The run-wide index of the micro-batch's first sample.
    let firstSample: Int
    let seqLength: Int, channels: Int
    /// This rank's first row of the micro-batch's `[batch * seqLength, c]` residual stream (its
    /// shard's offset with sequence parallelism, 0 otherwise).
    let firstRow: Int
    /// This rank's first attention head (its tensor-parallel rank times its heads).
    let firstHead: Int

    /// The dropouts of a training forward of micro-batch `sample` (nil: an evaluation forward, or
    /// no dropout configured).
    init?(config: GPTConfig, seed: UInt64, sample: Int?, batch: Int, seqLength: Int, region: TensorParallelRegion) {
        guard let sample, config.hiddenDropout > 0 || config.attentionDropout > 0 else { return nil }
        hidden = config.hiddenDropout
        attention = config.attentionDropout
        self.seed = seed
        firstSample = sample
        self.seqLength = seqLength
        channels = config.hiddenSize
        firstRow = region.firstLocalRow(batch * seqLength)
        firstHead = region.rank * config.numAttentionHeads / region.size
    }

    /// The stream of `site` in layer `layer` (the embedding is layer 0's).
    private func key(_ site: Site, layer: Int) -> UInt64 { DropoutMask.key(seed: seed, site.rawValue, layer) }

    /// Drops out `rows` of this rank's residual-region rows of `inp` into `out` (`out` may be
    /// `inp`): the forward at `site`, and its backward on the output gradient (the same mask).
    /// Returns `out`, or `inp` itself when hidden dropout is off.
    @discardableResult
    func applyHidden(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, rows: Int, site: Site,
                     layer: Int) -> UnsafePointer<Float> {
        guard hidden > 0 else { return inp }
        let stream = key(site, layer: layer), c = channels
        ThreadPool.current.parallelFor(rows, minimumPerThread: max(1, 16384 / c)) { range in
            for r in range {
                let row = firstRow + r
                let mask = DropoutMask(probability: hidden, key: DropoutMask.key(seed: stream, firstSample + row / seqLength))
                mask.apply(out: out + r * c, inp: inp + r * c, count: c,
                           firstCounter: UInt32(truncatingIfNeeded: row % seqLength * c))
            }
        }
        return UnsafePointer(out)
    }

    /// In place.
    func applyHidden(_ values: UnsafeMutablePointer<Float>, rows: Int, site: Site, layer: Int) {
        applyHidden(out: values, inp: values, rows: rows, site: site, layer: layer)
    }

    /// Drops out the pooled rows `[sequences, c]` of `inp` into `out` (`out` may be `inp`), row
    /// `s` being the micro-batch's sequence `s`: the forward before a fine-tuning head's last
    /// layer, and its backward on the gradient (the same mask). Replicated over tensor-parallel
    /// ranks, so every rank draws the same. Returns `out`, or `inp` when hidden dropout is off.
    @discardableResult
    func applyPooled(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, sequences: Int) -> UnsafePointer<Float> {
        guard hidden > 0 else { return inp }
        let stream = key(.pooled, layer: 0), c = channels
        for sequence in 0..<sequences {
            let mask = DropoutMask(probability: hidden, key: DropoutMask.key(seed: stream, firstSample + sequence))
            mask.apply(out: out + sequence * c, inp: inp + sequence * c, count: c, firstCounter: 0)
        }
        return UnsafePointer(out)
    }

    /// The attention-probability dropout of layer `layer` (nil when off).
    func attentionStream(layer: Int) -> Attention.DropoutStream? {
        guard attention > 0 else { return nil }
        return Attention.DropoutStream(probability: attention, key: key(.attentionProbabilities, layer: layer),
                                       firstSequence: firstSample, firstHead: firstHead)
    }
}
