/// How a parameter tensor is divided over tensor-parallel ranks (Megatron-LM section 3).
public enum TensorShard: Sendable, Equatable {
    /// Every rank holds the whole tensor (LayerNorms, position embeddings, the biases of the
    /// row-parallel products). Those biases are added by tensor-parallel rank 0 alone, to its
    /// partial sum before the all-reduce (`RowParallelLinear`), so the sum counts them once.
    case replicated
    /// Split along the first dimension: the word embedding's (and an untied output layer's, and
    /// BERT's output bias's) vocabulary rows, the column-parallel
    /// QKV and fc1 weights' output rows and their biases. Rank r holds rows `[r n/t, (r+1) n/t)`.
    case rows
    /// Split along the second dimension: the row-parallel attention-projection and fc2 weights'
    /// input columns. Rank r holds columns `[r m/t, (r+1) m/t)` of every row.
    case columns

    /// The shard kind of a GPT parameter, by its Megatron-core name.
    public init(name: String) {
        if name == "embedding.word_embeddings.weight" || name == "output_layer.weight" || name == "output_layer.bias"
            || name.hasSuffix("linear_qkv.weight")
            || name.hasSuffix("linear_qkv.bias") || name.hasSuffix("linear_fc1.weight") || name.hasSuffix("linear_fc1.bias") {
            self = .rows
        } else if name.hasSuffix("linear_proj.weight") || name.hasSuffix("linear_fc2.weight") {
            self = .columns
        } else {
            self = .replicated
        }
    }

    /// The shape of one rank's shard of a tensor of `shape`.
    public func shape(of shape: [Int], size t: Int) -> [Int] {
        switch self {
        case .replicated: return shape
        case .rows: return [shape[0] / t] + shape.dropFirst()
        case .columns: return [shape[0], shape[1] / t]
        }
    }

    /// Copies rank `rank`'s part of the full tensor `full` into `shard`.
    public func slice(_ full: UnsafePointer<Float>, into shard: UnsafeMutablePointer<Float>,
                      fullShape: [Int], rank: Int, size t: Int) {
        forEachBlock(fullShape: fullShape, rank: rank, size: t) { fullOffset, shardOffset, count in
            (shard + shardOffset).update(from: full + fullOffset, count: count)
        }
    }

    /// Writes rank `rank`'s shard back into its place in the full tensor (the inverse of `slice`).
    public func place(_ shard: UnsafePointer<Float>, into full: UnsafeMutablePointer<Float>,
                      fullShape: [Int], rank: Int, size t: Int) {
        forEachBlock(fullShape: fullShape, rank: rank, size: t) { fullOffset, shardOffset, count in
            (full + fullOffset).update(from: shard + shardOffset, count: count)
        }
    }

    /// The contiguous runs of rank `rank`'s shard: (offset in the full tensor, offset in the
    /// shard, length).
    private func forEachBlock(fullShape: [Int], rank: Int, size t: Int, _ body: (Int, Int, Int) -> Void) {
        let count = fullShape.reduce(1, *)
        switch self {
        case .replicated:
            body(0, 0, count)
        case .rows:
            body(rank * count / t, 0, count / t)
        case .columns:
            let rows = fullShape[0], columns = fullShape[1], width = columns / t
            for row in 0..<rows { body(row * columns + rank * width, row * width, width) }
        }
    }
}
