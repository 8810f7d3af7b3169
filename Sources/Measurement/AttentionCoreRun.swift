import Kernels
import Parameters

/// One layer's causal attention core (`Attention.forward` and `.backward`) on random inputs, for
/// the benchmarks to time: Q, K and V hold bf16 values (what a bf16 model hands over; the fp32
/// core's time does not depend on them), the output gradient normal values.
struct AttentionCoreRun {
    let batch: Int, seqLength: Int, heads: Int, channels: Int
    /// Whether the core runs as `train --bf16` runs it (bf16 GEMMs).
    let bf16: Bool
    private let qkv: FloatBuffer, out: FloatBuffer, dout: FloatBuffer, dqkv: FloatBuffer
    private let logSumExp: FloatBuffer, scratch: FloatBuffer

    init(batch: Int, seqLength: Int, heads: Int, headDim: Int, bf16: Bool, seed: UInt64) {
        (self.batch, self.seqLength, self.heads, self.bf16) = (batch, seqLength, heads, bf16)
        channels = heads * headDim
        let n = batch * seqLength
        qkv = FloatBuffer(count: n * 3 * channels)
        out = FloatBuffer(count: n * channels)
        dout = FloatBuffer(count: n * channels)
        dqkv = FloatBuffer(count: n * 3 * channels)
        logSumExp = FloatBuffer(count: batch * heads * seqLength)
        scratch = FloatBuffer(count: Attention.scratchCount(seqLength: seqLength))
        var random = RandomGenerator(seed: seed)
        random.fillNormal(qkv.pointer, count: qkv.count, std: 1)
        random.fillNormal(dout.pointer, count: dout.count, std: 1)
        BFloat16Conversion.roundInPlace(qkv.pointer, count: qkv.count)
    }

    func forward() {
        Attention.forward(out: out.pointer, logSumExp: logSumExp.pointer, qkv: qkv.pointer, scratch: scratch.pointer,
                          batch: batch, seqLength: seqLength, heads: heads, channels: channels, bf16GEMMs: bf16)
    }

    /// The backward of the last `forward`.
    func backward() {
        Attention.backward(dqkv: dqkv.pointer, dout: dout.pointer, out: out.pointer, logSumExp: logSumExp.pointer,
                           qkv: qkv.pointer, scratch: scratch.pointer, batch: batch, seqLength: seqLength, heads: heads,
                           channels: channels, bf16GEMMs: bf16)
    }
}
