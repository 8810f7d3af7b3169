import Kernels
import Parameters

/// The fp32 values the model reads directly: LayerNorm weights, biases, BERT's pooled head, and
/// in fp32 every weight (the GEMMs' and the embeddings'). `weights + offset` is the value at `offset` of the
/// parameter layout, as for a pointer into the whole fp32 buffer.
///
/// When the fp32 master weights live in the distributed optimizer (bf16 or fp16 with ZeRO-1,
/// see `FP32WeightCopy`), only the tensors read in fp32 have values here, packed back to back;
/// the GEMM weights are read from the low-precision copy and `+` traps on their offsets.
struct FP32Weights {
    /// Start of the whole buffer, or of the packed copy.
    private let base: UnsafePointer<Float>
    /// For the packed copy: each held tensor's start in the layout, ascending, and its start in
    /// the copy.
    private let packed: (layoutStarts: [Int], copyStarts: [Int], counts: [Int])?

    /// Every tensor, at its layout offset (the model holds all of its fp32 weights).
    init(whole: UnsafePointer<Float>) {
        base = whole
        packed = nil
    }

    /// The tensors of `copy` only.
    init(copy: FP32WeightCopy) {
        base = UnsafePointer(copy.buffer.pointer)
        packed = (copy.layoutStarts, copy.copyStarts, copy.counts)
    }

    /// The value at `offset` of the parameter layout.
    static func + (weights: FP32Weights, offset: Int) -> UnsafePointer<Float> {
        guard let packed = weights.packed else { return weights.base + offset }
        // The last held tensor starting at or before `offset`.
        var low = 0, high = packed.layoutStarts.count
        while low < high {
            let middle = (low + high) / 2
            if packed.layoutStarts[middle] <= offset { low = middle + 1 } else { high = middle }
        }
        let tensor = low - 1
        precondition(tensor >= 0 && offset - packed.layoutStarts[tensor] < packed.counts[tensor],
                     "FP32Weights: offset \(offset) lies in a tensor the model reads only in low precision")
        return weights.base + packed.copyStarts[tensor] + (offset - packed.layoutStarts[tensor])
    }
}

/// The fp32 copy a model keeps of the tensors it reads in fp32 when its master weights live in
/// the distributed optimizer (`GPTModel.readsInFP32`): the LayerNorms, the biases and BERT's
/// pooled head. The GEMM weights and the embeddings are read from the bf16 (or fp16) copy alone.
/// Its values are the fp32 master values, delivered by the optimizer after each update.
final class FP32WeightCopy {
    /// The held tensors' values, back to back in layout order.
    let buffer: FloatBuffer
    /// Each held tensor's start in the layout, start in `buffer` and size.
    let layoutStarts: [Int]
    let copyStarts: [Int]
    let counts: [Int]

    /// A zeroed copy of `layout`'s fp32-read tensors.
    init(layout: ParameterLayout) {
        var layoutStarts = [Int](), copyStarts = [Int](), counts = [Int]()
        var total = 0
        for (index, spec) in layout.specs.enumerated() where GPTModel.readsInFP32(spec.name) {
            layoutStarts.append(layout.offsets[index])
            copyStarts.append(total)
            counts.append(spec.count)
            total += spec.count
        }
        (self.layoutStarts, self.copyStarts, self.counts) = (layoutStarts, copyStarts, counts)
        buffer = FloatBuffer(count: total)
    }

    /// Floats held.
    var count: Int { buffer.count }

    /// Copies the held parts of the layout range `start ..< start + count`, whose values are
    /// `values`.
    func store(_ values: UnsafePointer<Float>, start: Int, count: Int) {
        let end = start + count
        for k in layoutStarts.indices {
            let from = max(start, layoutStarts[k]), to = min(end, layoutStarts[k] + counts[k])
            guard from < to else { continue }
            MemoryCopy.copy(to: buffer.pointer + copyStarts[k] + (from - layoutStarts[k]), from: values + (from - start),
                            count: to - from)
        }
    }
}

extension GPTModel {
    /// Whether a stage reads tensor `name` in fp32 in every precision (and so keeps an fp32
    /// copy of it when the optimizer holds the master weights): all but the transformer layers'
    /// GEMM weights, the output layer, BERT's masked-LM dense layer and the embeddings (word,
    /// position, token type: looked up in the low-precision copy), which bf16 and fp16 read in
    /// low precision alone.
    public static func readsInFP32(_ name: String) -> Bool {
        if [outputLayerName, BERTMaskedLMHead.denseName, wordEmbeddingName, positionEmbeddingName,
            tokenTypeEmbeddingName].contains(name) { return false }
        guard name.hasPrefix("decoder.layers.") else { return true }
        let gemmWeights = ["self_attention.linear_qkv.weight", "self_attention.linear_proj.weight",
                           "mlp.linear_fc1.weight", "mlp.linear_fc2.weight"]
        return !gemmWeights.contains { name.hasSuffix("." + $0) }
    }
}
