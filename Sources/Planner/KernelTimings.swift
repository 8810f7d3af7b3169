#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import FileSupport
#if canImport(Glibc)
import Glibc
#endif

/// What this binary's kernels cost on one machine, measured by micro-benchmarks
/// (`megatron plan --cluster local` runs them once and caches the result): GEMM throughput over
/// a grid of shapes for each of a linear layer's three products, the attention core per unit of
/// work at several sequence lengths, and the memory-bound kernels per element. The step-time
/// model (`LocalStepTime`) adds them up; nothing in it is fitted to a whole training step.
public struct KernelTimings: Codable, Sendable, Equatable {
    /// What the calibration measures changes with `KernelCalibration`, and what a kernel costs
    /// changes when the kernel is made faster; a cache of another format is measured again.
    /// 4: bf16 rounding and dropout without SIMD unsigned comparisons (rounding 2-3x faster);
    /// 5: every kernel timed in two or three passes, the fastest kept;
    /// 6: a bf16 calibration times the bf16 attention core (before, the fp32 one).
    public static let currentFormat = 6
    public var format = currentFormat
    /// The measurement's conditions: the CPU's name and flags, the kernel threads, the GEMM path.
    public var machine: String
    public var threads: Int
    public var precision: String

    /// The grid's rows (tokens), input and output features, each ascending.
    public var rows: [Int], inFeatures: [Int], outFeatures: [Int]
    /// GFLOP/s of each product on the grid, `[rows][in][out]` flattened, per product name
    /// (`forward`, `inputGradient`, `weightGradient`).
    public var gemmGFLOPs: [String: [Double]]

    /// Sequence lengths at which the attention core was timed (ascending), and its seconds per
    /// unit of `batch x heads x seqLength^2 x headDim`, forward and backward.
    public var attentionSeqLengths: [Int]
    public var attentionForward: [Double]
    public var attentionBackward: [Double]

    /// Seconds per element of each memory-bound kernel (see `Elementwise`).
    public var elementwise: [String: Double]

    public init(machine: String, threads: Int, precision: String, rows: [Int], inFeatures: [Int], outFeatures: [Int],
                gemmGFLOPs: [String: [Double]], attentionSeqLengths: [Int], attentionForward: [Double],
                attentionBackward: [Double], elementwise: [String: Double]) {
        (self.machine, self.threads, self.precision) = (machine, threads, precision)
        (self.rows, self.inFeatures, self.outFeatures, self.gemmGFLOPs) = (rows, inFeatures, outFeatures, gemmGFLOPs)
        (self.attentionSeqLengths, self.attentionForward, self.attentionBackward) = (attentionSeqLengths, attentionForward,
                                                                                     attentionBackward)
        self.elementwise = elementwise
    }

    /// The memory-bound kernels the step model counts, by the element they are counted in.
    public enum Elementwise: String, CaseIterable, Sendable {
        /// LayerNorm forward and backward, per element of its input.
        case layerNormForward, layerNormBackward
        /// GELU forward and backward, per element.
        case geluForward, geluBackward
        /// A residual addition (out = a + b), per element.
        case residual
        /// Softmax cross-entropy forward and backward together, per logit.
        case crossEntropy
        /// One AdamW update, per parameter.
        case adamw
        /// Rounding fp32 to bf16 (or fp16), per element.
        case round
        /// Copying a float (what an all-reduce between rank threads moves), per float.
        case copy
        /// Embedding lookup forward plus its scatter backward, per element of the output.
        case embedding
        /// The gradients' sum of squares (for the norm and clipping), per gradient.
        case gradientNorm
    }

    /// Seconds per element of `kernel`; 0 when it was not measured.
    public func perElement(_ kernel: Elementwise) -> Double { elementwise[kernel.rawValue] ?? 0 }

    /// Seconds of one product of a linear layer `[rows, inFeatures] -> [rows, outFeatures]`:
    /// `2 rows in out` FLOPs at the throughput interpolated on the grid (linearly in the
    /// logarithms of the sizes and of the throughput; outside the grid the nearest edge).
    public func gemmSeconds(_ product: String, rows m: Int, inFeatures k: Int, outFeatures n: Int) -> Double {
        guard let table = gemmGFLOPs[product], m > 0, k > 0, n > 0 else { return 0 }
        let (i0, i1, fi) = Self.bracket(rows, m), (j0, j1, fj) = Self.bracket(inFeatures, k)
        let (k0, k1, fk) = Self.bracket(outFeatures, n)
        func at(_ i: Int, _ j: Int, _ l: Int) -> Double {
            log(max(table[(i * inFeatures.count + j) * outFeatures.count + l], 1e-9))
        }
        func lerp(_ a: Double, _ b: Double, _ f: Double) -> Double { a + (b - a) * f }
        let logGFLOPs = lerp(lerp(lerp(at(i0, j0, k0), at(i0, j0, k1), fk), lerp(at(i0, j1, k0), at(i0, j1, k1), fk), fj),
                             lerp(lerp(at(i1, j0, k0), at(i1, j0, k1), fk), lerp(at(i1, j1, k0), at(i1, j1, k1), fk), fj), fi)
        return 2 * Double(m) * Double(k) * Double(n) / (exp(logGFLOPs) * 1e9)
    }

    /// Seconds of the attention core over `batch x heads` sequences of `seqLength` tokens and
    /// `headDim` channels per head, forward (and backward when `backward`).
    public func attentionSeconds(batchHeads: Int, seqLength s: Int, headDim: Int, backward: Bool) -> Double {
        let table = backward ? attentionBackward : attentionForward
        guard !table.isEmpty else { return 0 }
        let (i0, i1, f) = Self.bracket(attentionSeqLengths, s)
        let perUnit = exp(log(table[i0]) + (log(table[i1]) - log(table[i0])) * f)
        return perUnit * Double(batchHeads) * Double(s) * Double(s) * Double(headDim)
    }

    /// The two grid points around `x` and where `x` lies between them, in logarithms (clamped).
    static func bracket(_ grid: [Int], _ x: Int) -> (Int, Int, Double) {
        guard let upper = grid.firstIndex(where: { $0 >= x }) else { return (grid.count - 1, grid.count - 1, 0) }
        guard upper > 0, grid[upper] != x else { return (upper, upper, 0) }
        let lower = upper - 1
        return (lower, upper, (log(Double(x)) - log(Double(grid[lower]))) / (log(Double(grid[upper])) - log(Double(grid[lower]))))
    }

    /// Checks the tables' sizes and values; an error names what is wrong.
    public func validate(source: String) throws(PlanError) {
        let cells = rows.count * inFeatures.count * outFeatures.count
        for grid in [rows, inFeatures, outFeatures, attentionSeqLengths] where grid.isEmpty || grid != grid.sorted() || grid.contains(where: { $0 <= 0 }) {
            throw .invalid("\(source): a grid is empty, unsorted or not positive")
        }
        for product in ["forward", "inputGradient", "weightGradient"] {
            guard let table = gemmGFLOPs[product], table.count == cells, table.allSatisfy({ $0 > 0 && $0.isFinite }) else {
                throw .invalid("\(source): gemm table \"\(product)\" needs \(cells) positive numbers")
            }
        }
        guard attentionForward.count == attentionSeqLengths.count, attentionBackward.count == attentionSeqLengths.count,
              (attentionForward + attentionBackward).allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw .invalid("\(source): the attention tables need one positive number per sequence length")
        }
        for kernel in Elementwise.allCases {
            guard let value = elementwise[kernel.rawValue], value > 0, value.isFinite else {
                throw .invalid("\(source): missing or non-positive elementwise time \"\(kernel.rawValue)\"")
            }
        }
    }

    /// Reads timings saved by `save`; a malformed or incomplete file is an error naming it.
    public static func load(from path: String) throws(PlanError) -> KernelTimings {
        let bytes: [UInt8]
        do { bytes = try MappedFile.read(path: path) } catch { throw .invalid("\(error)") }
        let timings: KernelTimings
        do { timings = try JSONDecoder().decode(KernelTimings.self, from: Data(bytes)) } catch {
            throw .invalid("\(path): not a kernel timings file (\(JSONDecoding.describe(error)))")
        }
        try timings.validate(source: path)
        return timings
    }

    /// Refuses to let a measurement overwrite `path` when it exists and is not a timings cache
    /// (of any format or machine): a mistyped `--kernel-timings-file` must not replace a user's file.
    public static func checkReplaceable(_ path: String) throws(PlanError) {
        guard let bytes = try? MappedFile.read(path: path) else { return }  // absent (or unreadable: the save says so)
        if let json = try? JSONValue.parse(utf8: bytes), json["machine"] != nil, json["threads"] != nil { return }
        throw .invalid("\(path) exists and is not a kernel timings cache; give another --kernel-timings-file or remove it")
    }

    /// Writes the timings as JSON, atomically.
    public func save(to path: String) throws(PlanError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do { try AtomicFile.write(Array(try encoder.encode(self)), to: path) } catch let error as FileError {
            throw .invalid("\(error)")
        } catch {
            throw .invalid("\(path): \(error)")
        }
    }
}
