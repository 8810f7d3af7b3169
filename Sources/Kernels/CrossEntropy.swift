#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Accelerator

/// Softmax cross-entropy over (padded) vocabulary logits, with an ignore index and a loss mask.
///
/// Row `i` has weight `w_i = lossMask[i]` (1 without a mask), or 0 when `targets[i]` equals
/// `ignoreIndex`. The loss is `sum_i w_i * CE_i / sum_i w_i`, Megatron's masked mean.
/// Padded vocabulary entries are ordinary logits (as in Megatron): they take part in the softmax,
/// unless `validColumns` bounds it (a model imported from Hugging Face, whose padding rows are
/// zeros and whose softmax runs over the true vocabulary): columns at or past it are left out of
/// the softmax and get a zero gradient.
public enum CrossEntropy {
    /// Whether `backward`'s `eachRow` is worth using: true on the CPU, where a finished row is
    /// still in cache; false with a GPU, where the caller does better with the whole block
    /// afterwards (a per-row callback would read the block on the host).
    public static var prefersRowCallbacks: Bool { GPU.active == nil }

    /// Targets equal to this are skipped (PyTorch's and Hugging Face's convention).
    public static let ignoreIndex: Int32 = -100

    /// Weighted loss sum and weight sum of a batch; `mean` is the loss.
    public struct Totals: Sendable {
        public var weightedLoss: Double
        public var weight: Double
        /// The masked mean loss (0 when no row counts).
        public var mean: Double { weight > 0 ? weightedLoss / weight : 0 }
    }

    /// Computes each row's loss into `losses` (0 for ignored rows) and its log-sum-exp into
    /// `logSumExp` (kept for `backward`). `logits` is `[rows, vocab]` and is not modified.
    /// Targets must be in `0..<validColumns` or equal `ignoreIndex` (callers validate user
    /// input); only the first `validColumns` (default: all) logits of a row enter the softmax.
    @discardableResult
    public static func forward(losses: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>,
                               logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                               lossMask: UnsafePointer<Float>?, rows: Int, vocab: Int, validColumns: Int? = nil) -> Totals {
        let valid = min(validColumns ?? vocab, vocab)
        if let gpu = GPU.active {
            gpu.crossEntropyForward(losses: losses, logSumExp: logSumExp, logits: logits, targets: targets, rows: rows,
                                    vocab: vocab, validColumns: valid, ignoreIndex: ignoreIndex)
        } else {
            rowLosses(losses: losses, logSumExp: logSumExp, logits: logits, targets: targets, rows: rows, vocab: vocab,
                      valid: valid)
        }
        GPU.hostWillRead()
        var totals = Totals(weightedLoss: 0, weight: 0)
        for row in 0..<rows {
            let w = rowWeight(row, targets: targets, lossMask: lossMask)
            totals.weightedLoss += Double(w) * Double(losses[row])
            totals.weight += Double(w)
        }
        return totals
    }

    /// The CPU rows of `forward`: each row's log-sum-exp over its first `valid` logits and its loss.
    private static func rowLosses(losses: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>,
                                  logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, rows: Int, vocab: Int,
                                  valid: Int) {
        ThreadPool.current.parallelFor(rows, minimumPerThread: max(1, 65536 / vocab)) { range in
            for row in range {
                let x = logits + row * vocab
                let m = vectorMax(x, valid)
                let lse = m + logf(sumOfExponentials(x, count: valid, minus: m))
                logSumExp[row] = lse
                let target = targets[row]
                if target == ignoreIndex {
                    losses[row] = 0
                } else {
                    losses[row] = lse - x[Int(target)]
                }
            }
        }
    }

    /// Backward of `forward`, in place: overwrites the logits with
    /// `dlogits[i] = (softmax(logits[i]) - onehot(target_i)) * w_i * scale`.
    /// For the masked mean, `scale = dloss / totals.weight`.
    /// With vocabulary-parallel logits (columns `vocabStart ..< vocabStart + vocab` of the full
    /// vocabulary) and the global log-sum-exp, the one-hot is subtracted only where the target
    /// falls in this shard. Columns at or past `validColumns` (of this shard) get a zero gradient.
    /// `eachRow(row, gradient)`, when given, is called with every finished row while it is still
    /// in cache (from the thread that computed it), e.g. to round it into a GEMM operand.
    public static func backward(logitsToGradient logits: UnsafeMutablePointer<Float>,
                                logSumExp: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                lossMask: UnsafePointer<Float>?, scale: Float, rows: Int, vocab: Int,
                                vocabStart: Int = 0, validColumns: Int? = nil,
                                eachRow: ((Int, UnsafePointer<Float>) -> Void)? = nil) {
        let valid = max(0, min(validColumns ?? vocab, vocab))
        if let gpu = GPU.active {
            gpu.crossEntropyBackward(logits: logits, logSumExp: logSumExp, targets: targets, lossMask: lossMask, scale: scale,
                                     rows: rows, vocab: vocab, vocabStart: vocabStart, validColumns: valid,
                                     ignoreIndex: ignoreIndex)
            if let eachRow {
                GPU.hostWillRead()
                for row in 0..<rows { eachRow(row, logits + row * vocab) }
            }
            return
        }
        ThreadPool.current.parallelFor(rows, minimumPerThread: max(1, 65536 / vocab)) { range in
            for row in range {
                let x = logits + row * vocab
                let w = rowWeight(row, targets: targets, lossMask: lossMask) * scale
                if w == 0 {
                    x.update(repeating: 0, count: vocab)
                    eachRow?(row, x)
                    continue
                }
                let lseVector = FloatVector(repeating: logSumExp[row])
                let wVector = FloatVector(repeating: w)
                var i = 0
                while i + 16 <= valid {
                    storeVector(fastExp(loadVector(x + i) - lseVector) * wVector, x + i)
                    i += 16
                }
                while i < valid {
                    x[i] = fastExp(x[i] - logSumExp[row]) * w
                    i += 1
                }
                if valid < vocab { (x + valid).update(repeating: 0, count: vocab - valid) }
                let local = Int(targets[row]) - vocabStart
                if local >= 0 && local < vocab { x[local] -= w }
                eachRow?(row, x)
            }
        }
    }

    /// Forward over vocabulary-parallel logits (`[rows, vocab]`, columns `vocabStart ..<
    /// vocabStart + vocab` of the full vocabulary) without gathering them: row maxima, sums of
    /// exponentials and target logits are combined across the shards by `reduce` (an all-reduce
    /// over the tensor-parallel group: max, then sum, then sum). `scratch` holds `3 * rows` floats.
    /// Writes each row's global log-sum-exp and loss; returns the same totals on every shard.
    /// Only this shard's first `validColumns` (default: all) columns enter the softmax.
    public static func forwardVocabParallel(losses: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>,
                                            logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                            lossMask: UnsafePointer<Float>?, rows: Int, vocab: Int, vocabStart: Int,
                                            validColumns: Int? = nil, scratch: UnsafeMutablePointer<Float>,
                                            reduce: (UnsafeMutablePointer<Float>, Int, _ maximum: Bool) -> Void) -> Totals {
        let valid = max(0, min(validColumns ?? vocab, vocab))
        let maxima = scratch, sums = scratch + rows, targetLogits = scratch + 2 * rows
        ThreadPool.current.parallelFor(rows, minimumPerThread: max(1, 65536 / vocab)) { range in
            for row in range { maxima[row] = valid > 0 ? vectorMax(logits + row * vocab, valid) : -Float.infinity }
        }
        reduce(maxima, rows, true)
        ThreadPool.current.parallelFor(rows, minimumPerThread: max(1, 65536 / vocab)) { range in
            for row in range {
                let x = logits + row * vocab
                sums[row] = sumOfExponentials(x, count: valid, minus: maxima[row])
                let local = Int(targets[row]) - vocabStart
                targetLogits[row] = targets[row] != ignoreIndex && local >= 0 && local < valid ? x[local] : 0
            }
        }
        reduce(sums, 2 * rows, false)  // sums and target logits in one call
        var totals = Totals(weightedLoss: 0, weight: 0)
        for row in 0..<rows {
            let lse = maxima[row] + logf(sums[row])
            logSumExp[row] = lse
            losses[row] = targets[row] == ignoreIndex ? 0 : lse - targetLogits[row]
            let w = rowWeight(row, targets: targets, lossMask: lossMask)
            totals.weightedLoss += Double(w) * Double(losses[row])
            totals.weight += Double(w)
        }
        return totals
    }

    /// `sum(exp(x[i] - m))` over `count` values, 16 lanes at a time. (The vocabulary-parallel
    /// forward had summed lane by lane: 10% of a TP 2 step's CPU time.)
    @inline(__always)
    static func sumOfExponentials(_ x: UnsafePointer<Float>, count: Int, minus m: Float) -> Float {
        let mVector = FloatVector(repeating: m)
        var acc = FloatVector(repeating: 0)
        var i = 0
        while i + 16 <= count {
            acc += fastExp(loadVector(x + i) - mVector)
            i += 16
        }
        var sum = acc.sum()
        while i < count {
            sum += fastExp(x[i] - m)
            i += 1
        }
        return sum
    }

    @inline(__always)
    static func rowWeight(_ row: Int, targets: UnsafePointer<Int32>, lossMask: UnsafePointer<Float>?) -> Float {
        if targets[row] == ignoreIndex { return 0 }
        return lossMask?[row] ?? 1
    }
}
