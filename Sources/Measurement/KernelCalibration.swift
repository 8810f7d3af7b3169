#if canImport(Glibc)
import Glibc
#endif
import Kernels
import Models
import Optimizer
import Parameters
import Planner

/// Measures `KernelTimings` on this machine with `threads` kernel (and BLAS) threads: the GEMMs
/// `train` multiplies with in `precision` (sgemm in fp32 and fp16, whose values are held in fp32;
/// `BF16Matmul` in bf16) over a grid of shapes, the attention core at several sequence lengths,
/// and each memory-bound kernel on buffers larger than the caches. About half a minute.
public enum KernelCalibration {
    /// The GEMM grid: tokens, input and output features.
    static let rows = [256, 1024, 4096], features = [64, 256, 1024, 4096]
    static let attentionLengths = [128, 256, 512, 1024]

    /// The CPU's name and flags, and whether this is a debug build (whose kernels are slower):
    /// what a cached measurement must match.
    public static var machine: String {
        #if DEBUG
        return GEMMBenchmark.cpuDescription() + " (debug build)"
        #else
        return GEMMBenchmark.cpuDescription()
        #endif
    }

    public static func measure(threads: Int, precision: ComputePrecision) -> KernelTimings {
        let pool = ThreadPool(threadCount: threads)
        defer { pool.stop() }
        let previousBLAS = blasThreadCount()
        setBLASThreadCount(threads)
        defer { setBLASThreadCount(previousBLAS) }
        return ThreadPool.withCurrent(pool) {
            // Every kernel is timed in more than one pass and the fastest pass kept: on a shared
            // machine a slow window of a few seconds had halved a block of the GEMM grid's points
            // in one calibration and made every memory-bound kernel 1.5-2x slower in another.
            // The GEMM grid and the attention core run twice (the grid's second pass in reverse
            // order, so that one slow window cannot hit the same points twice), the memory-bound
            // kernels three times, spread over the calibration.
            var memoryBound = Self.elementwise()
            var gemm = [String: [Double]]()
            var attentionPasses = [[(forward: Double, backward: Double)]]()
            let shapes = rows.flatMap { m in features.flatMap { k in features.map { n in (m: m, k: k, n: n) } } }
            for pass in 0..<2 {
                for product in pass == 0 ? GEMMBenchmark.Product.allCases : GEMMBenchmark.Product.allCases.reversed() {
                    var table = [Double](repeating: 0, count: shapes.count)
                    for index in pass == 0 ? Array(shapes.indices) : shapes.indices.reversed() {
                        let shape = shapes[index]
                        table[index] = gemmGFLOPs(product, rows: shape.m, inFeatures: shape.k, outFeatures: shape.n,
                                                  bf16: precision == .bf16)
                    }
                    gemm[name(product)] = gemm[name(product)].map { zip($0, table).map { max($0, $1) } } ?? table
                }
                attentionPasses.append(attentionLengths.map { attentionPerUnit($0, bf16: precision == .bf16) })
                memoryBound.merge(Self.elementwise(), uniquingKeysWith: min)
            }
            let attention = zip(attentionPasses[0], attentionPasses[1]).map {
                (forward: min($0.forward, $1.forward), backward: min($0.backward, $1.backward))
            }
            return KernelTimings(machine: machine, threads: threads, precision: precision.rawValue,
                                 rows: rows, inFeatures: features, outFeatures: features, gemmGFLOPs: gemm,
                                 attentionSeqLengths: attentionLengths, attentionForward: attention.map(\.forward),
                                 attentionBackward: attention.map(\.backward), elementwise: memoryBound)
        }
    }

    /// The product's key in `KernelTimings.gemmGFLOPs`.
    static func name(_ product: GEMMBenchmark.Product) -> String {
        switch product {
        case .forward: "forward"
        case .inputGradient: "inputGradient"
        case .weightGradient: "weightGradient"
        }
    }

    /// Best of a few timed calls (after one untimed call), in seconds; more calls for short ones.
    static func best(_ body: () -> Void) -> Double {
        body()
        let clock = ContinuousClock()
        var best = Double.infinity, spent = 0.0, calls = 0
        while calls < 2 || (spent < 0.05 && calls < 20) {
            let start = clock.now
            body()
            let seconds = milliseconds(clock.now - start) / 1000
            best = min(best, seconds)
            spent += seconds
            calls += 1
        }
        return best
    }

    static func gemmGFLOPs(_ product: GEMMBenchmark.Product, rows m: Int, inFeatures k: Int, outFeatures n: Int,
                           bf16: Bool) -> Double {
        let x = FloatBuffer(count: m * k), w = FloatBuffer(count: n * k), dy = FloatBuffer(count: m * n)
        var rng = RandomGenerator(seed: 3)
        for buffer in [x, w, dy] { rng.fillNormal(buffer.pointer, count: buffer.count, std: 1) }
        let y = FloatBuffer(count: m * n), dx = FloatBuffer(count: m * k), dw = FloatBuffer(count: n * k)
        let seconds: Double
        if bf16 {
            let xb = BFloat16Buffer(rounding: x.pointer, count: x.count), wb = BFloat16Buffer(rounding: w.pointer, count: w.count)
            let dyb = BFloat16Buffer(rounding: dy.pointer, count: dy.count)
            seconds = best {
                switch product {
                case .forward: BF16Matmul.forward(out: y.pointer, inp: xb.pointer, weight: wb.pointer, bias: nil, rows: m,
                                                  inFeatures: k, outFeatures: n)
                case .inputGradient: BF16Matmul.inputGradient(dinp: dx.pointer, dout: dyb.pointer, weight: wb.pointer, rows: m,
                                                              inFeatures: k, outFeatures: n)
                case .weightGradient: BF16Matmul.weightGradient(dweight: dw.pointer, dout: dyb.pointer, inp: xb.pointer, rows: m,
                                                                inFeatures: k, outFeatures: n)
                }
            }
        } else {
            seconds = best {
                switch product {
                case .forward: Matmul.forward(out: y.pointer, inp: x.pointer, weight: w.pointer, bias: nil, rows: m,
                                              inFeatures: k, outFeatures: n)
                case .inputGradient: Matmul.inputGradient(dinp: dx.pointer, dout: dy.pointer, weight: w.pointer, rows: m,
                                                          inFeatures: k, outFeatures: n)
                case .weightGradient: Matmul.weightGradient(dweight: dw.pointer, dout: dy.pointer, inp: x.pointer, rows: m,
                                                            inFeatures: k, outFeatures: n)
                }
            }
        }
        return 2 * Double(m) * Double(k) * Double(n) / seconds / 1e9
    }

    /// Seconds per unit (`batch x heads x s^2 x headDim`) of the causal attention core at
    /// sequence length `s`, 64 channels per head, forward and backward; with `bf16` as
    /// `train --bf16` runs it (bf16 GEMMs on bf16-valued Q, K, V).
    static func attentionPerUnit(_ s: Int, bf16: Bool) -> (forward: Double, backward: Double) {
        let heads = 4, d = 64, batch = max(1, 2048 / s)
        let core = AttentionCoreRun(batch: batch, seqLength: s, heads: heads, headDim: d, bf16: bf16, seed: 5)
        let forward = best(core.forward)
        let backward = best(core.backward)
        let units = Double(batch * heads * s * s * d)
        return (forward / units, backward / units)
    }

    /// Seconds per element of each memory-bound kernel, on 4 Mi-element (16 MiB) buffers.
    static func elementwise() -> [String: Double] {
        let rowsCount = 4096, channels = 1024, count = rowsCount * channels
        let a = FloatBuffer(count: count), b = FloatBuffer(count: count), c = FloatBuffer(count: count)
        let m = FloatBuffer(count: count), v = FloatBuffer(count: count)
        var rng = RandomGenerator(seed: 7)
        rng.fillNormal(a.pointer, count: count, std: 1)
        rng.fillNormal(b.pointer, count: count, std: 1)
        let weight = FloatBuffer(count: channels), bias = FloatBuffer(count: channels)
        weight.pointer.update(repeating: 1, count: channels)
        let dweight = FloatBuffer(count: channels), dbias = FloatBuffer(count: channels)
        let mean = FloatBuffer(count: rowsCount), rstd = FloatBuffer(count: rowsCount)
        let bf16 = BFloat16Buffer(count: count)
        // The cross-entropy over rows of a GPT-sized vocabulary (128 rows x 32768 logits).
        let vocabRows = count / 32768
        let targets = (0..<vocabRows).map { Int32(($0 * 977) % 32768) }
        let losses = FloatBuffer(count: rowsCount), lse = FloatBuffer(count: rowsCount)
        let tokens = (0..<rowsCount).map { Int32(($0 * 7919) % 8192) }
        let table = FloatBuffer(count: 8192 * 512), positions = FloatBuffer(count: 512 * 512)
        let embedded = FloatBuffer(count: rowsCount * 512)
        var seconds = [KernelTimings.Elementwise: Double]()
        seconds[.layerNormForward] = best {
            LayerNorm.forward(out: c.pointer, mean: mean.pointer, rstd: rstd.pointer, inp: a.pointer, weight: weight.pointer,
                              bias: bias.pointer, rows: rowsCount, channels: channels)
        }
        seconds[.layerNormBackward] = best {
            LayerNorm.backward(dinp: c.pointer, dweight: dweight.pointer, dbias: dbias.pointer, dout: b.pointer, inp: a.pointer,
                               weight: weight.pointer, mean: mean.pointer, rstd: rstd.pointer, rows: rowsCount, channels: channels)
        }
        seconds[.geluForward] = best { GELU.forward(out: c.pointer, inp: a.pointer, count: count) }
        seconds[.geluBackward] = best { GELU.backward(dinp: c.pointer, inp: a.pointer, dout: b.pointer, count: count) }
        seconds[.residual] = best { Residual.addInPlace(c.pointer, a.pointer, count: count) }
        seconds[.crossEntropy] = best {
            targets.withUnsafeBufferPointer { t in
                _ = CrossEntropy.forward(losses: losses.pointer, logSumExp: lse.pointer, logits: a.pointer, targets: t.baseAddress!,
                                         lossMask: nil, rows: vocabRows, vocab: 32768)
                c.pointer.update(from: a.pointer, count: count)
                CrossEntropy.backward(logitsToGradient: c.pointer, logSumExp: lse.pointer, targets: t.baseAddress!, lossMask: nil,
                                      scale: 1, rows: vocabRows, vocab: 32768)
            }
        }
        // The copy above is part of that measurement; take it out again below.
        seconds[.copy] = best { MemoryCopy.copy(to: c.pointer, from: a.pointer, count: count) }
        seconds[.crossEntropy]! -= seconds[.copy]!
        seconds[.adamw] = best {
            AdamW.update(params: c.pointer, grads: a.pointer, m: m.pointer, v: v.pointer, count: count, step: 1,
                         hyperparameters: AdamW.Hyperparameters(learningRate: 1e-4), decay: true)
        }
        seconds[.round] = best { BFloat16Conversion.round(out: bf16.pointer, inp: a.pointer, count: count) }
        let embeddingSeconds = best {
            tokens.withUnsafeBufferPointer { t in
                Embedding.forward(out: embedded.pointer, tokens: t.baseAddress!, wte: table.pointer, wpe: positions.pointer,
                                  batch: rowsCount / 512, seqLength: 512, channels: 512)
                Embedding.backward(dwte: table.pointer, dwpe: positions.pointer, dout: embedded.pointer, tokens: t.baseAddress!,
                                   batch: rowsCount / 512, seqLength: 512, channels: 512)
            }
        }
        let gradients = ParameterStore(layout: ParameterLayout([ParameterSpec(name: "g", shape: [count], weightDecay: true)]))
        gradients.buffer.pointer.update(from: a.pointer, count: count)
        seconds[.gradientNorm] = best { _ = GradientClipping.squares(gradients) { _ in 1 } }
        var perElement = [String: Double]()
        for (kernel, value) in seconds { perElement[kernel.rawValue] = max(value, 1e-6) / Double(count) }
        perElement[KernelTimings.Elementwise.embedding.rawValue] = embeddingSeconds / Double(rowsCount * 512)
        return perElement
    }
}
