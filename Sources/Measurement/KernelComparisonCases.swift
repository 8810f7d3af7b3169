import Kernels
import Parameters

/// The kernels `megatron cuda-check` compares between the GPU and the CPU, on small odd shapes
/// (sizes that are not multiples of the GPU's warp or the CPU's vector width).
extension KernelComparison {
    /// Every comparison, inputs drawn from `seed`.
    public static func all(seed: UInt64 = 1) -> [KernelComparison] {
        var random = RandomGenerator(seed: seed)
        func normal(_ count: Int, std: Float = 1) -> [Float] {
            [Float](unsafeUninitializedCapacity: count) { storage, initialized in
                random.fillNormal(storage.baseAddress!, count: count, std: std)
                initialized = count
            }
        }
        func tokens(_ count: Int, below limit: Int) -> [Int32] { (0..<count).map { _ in Int32(random.next() % UInt64(limit)) } }
        return linear(normal) + normalization(normal) + elementwise(normal)
            + embedding(normal, tokens) + crossEntropy(normal, tokens) + attention(normal) + optimizer(normal)
    }

    typealias Normal = (_ count: Int, _ std: Float) -> [Float]

    private static func linear(_ normal: Normal) -> [KernelComparison] {
        let (rows, inF, outF) = (37, 72, 56), shape = "rows 37, in 72, out 56"
        let ones = [Float](repeating: 1, count: rows)
        return [
            KernelComparison(name: "Matmul.forward (bias)", shape: shape,
                             floats: ["x": normal(rows * inF, 1), "w": normal(outF * inF, 0.2), "b": normal(outF, 1),
                                      "y": normal(rows * outF, 1)], ints: [:], outputs: ["y"]) { o in
                Matmul.forward(out: o["y"], inp: o["x"], weight: o["w"], bias: o["b"], rows: rows, inFeatures: inF,
                               outFeatures: outF)
            },
            KernelComparison(name: "Matmul.backward", shape: shape,
                             floats: ["x": normal(rows * inF, 1), "w": normal(outF * inF, 0.2), "dy": normal(rows * outF, 1),
                                      "dx": normal(rows * inF, 1), "dw": normal(outF * inF, 1), "db": normal(outF, 1),
                                      "ones": ones], ints: [:], outputs: ["dx", "dw", "db"]) { o in
                Matmul.backward(dinp: o["dx"], dweight: o["dw"], dbias: o["db"], dout: o["dy"], inp: o["x"], weight: o["w"],
                                ones: o["ones"], rows: rows, inFeatures: inF, outFeatures: outF)
            },
            KernelComparison(name: "BF16Matmul.forward+backward", shape: shape,
                             floats: ["x": normal(rows * inF, 1), "w": normal(outF * inF, 0.2), "b": normal(outF, 1),
                                      "dy": normal(rows * outF, 1), "y": normal(rows * outF, 1), "dx": normal(rows * inF, 1),
                                      "dw": normal(outF * inF, 1)], ints: [:], outputs: ["y", "dx", "dw"]) { o in
                let x = BFloat16Buffer(rounding: o["x"], count: rows * inF)
                let w = BFloat16Buffer(rounding: o["w"], count: outF * inF)
                let dy = BFloat16Buffer(rounding: o["dy"], count: rows * outF)
                BF16Matmul.forward(out: o["y"], inp: x.pointer, weight: w.pointer, bias: o["b"], rows: rows,
                                   inFeatures: inF, outFeatures: outF)
                BF16Matmul.backward(dinp: o["dx"], dweight: o["dw"], dout: dy.pointer, inp: x.pointer, weight: w.pointer,
                                    rows: rows, inFeatures: inF, outFeatures: outF)
            },
        ]
    }

    private static func normalization(_ normal: Normal) -> [KernelComparison] {
        let (rows, c) = (37, 72), shape = "rows 37, channels 72"
        let common = ["x": normal(rows * c, 2), "w": normal(c, 1), "b": normal(c, 1)]
        return [
            KernelComparison(name: "LayerNorm.forward", shape: shape,
                             floats: common.merging(["y": normal(rows * c, 1), "mean": normal(rows, 1), "rstd": normal(rows, 1)]) { a, _ in a },
                             ints: [:], outputs: ["y", "mean", "rstd"]) { o in
                LayerNorm.forward(out: o["y"], mean: o["mean"], rstd: o["rstd"], inp: o["x"], weight: o["w"], bias: o["b"],
                                  rows: rows, channels: c, eps: 1e-5)
            },
            KernelComparison(name: "LayerNorm.backward", shape: shape,
                             floats: common.merging(["dy": normal(rows * c, 1), "dx": normal(rows * c, 1), "dw": normal(c, 1),
                                                     "db": normal(c, 1), "mean": normal(rows, 1), "rstd": normal(rows, 1)]) { a, _ in a },
                             ints: [:], outputs: ["dx", "dw", "db"]) { o in
                LayerNorm.forward(out: o["dx"], mean: o["mean"], rstd: o["rstd"], inp: o["x"], weight: o["w"], bias: o["b"],
                                  rows: rows, channels: c, eps: 1e-5)
                for i in 0..<(rows * c) { o["dx"][i] = Float(i % 7) * 0.25 - 0.5 }  // a known starting gradient
                LayerNorm.backward(dinp: o["dx"], dweight: o["dw"], dbias: o["db"], dout: o["dy"], inp: o["x"], weight: o["w"],
                                   mean: o["mean"], rstd: o["rstd"], rows: rows, channels: c)
            },
        ]
    }

    private static func elementwise(_ normal: Normal) -> [KernelComparison] {
        let count = 1003, shape = "1003 values"
        return [false, true].flatMap { exact -> [KernelComparison] in
            let form = exact ? "erf" : "tanh"
            return [
                KernelComparison(name: "GELU.forward (\(form))", shape: shape,
                                 floats: ["x": normal(count, 3), "y": normal(count, 1)], ints: [:], outputs: ["y"]) { o in
                    GELU.forward(out: o["y"], inp: o["x"], count: count, exact: exact)
                },
                KernelComparison(name: "GELU.backward (\(form))", shape: shape,
                                 floats: ["x": normal(count, 3), "dy": normal(count, 1), "dx": normal(count, 1)], ints: [:],
                                 outputs: ["dx"]) { o in
                    GELU.backward(dinp: o["dx"], inp: o["x"], dout: o["dy"], count: count, exact: exact)
                },
            ]
        } + [
            KernelComparison(name: "Residual.addInPlace", shape: shape,
                             floats: ["y": normal(count, 1), "x": normal(count, 1)], ints: [:], outputs: ["y"]) { o in
                Residual.addInPlace(o["y"], o["x"], count: count)
            },
            KernelComparison(name: "BFloat16Conversion round/widen", shape: shape,
                             floats: ["x": normal(count, 100), "y": normal(count, 1), "z": normal(count, 1)], ints: [:],
                             outputs: ["y", "z"]) { o in
                let rounded = BFloat16Buffer(count: count)
                BFloat16Conversion.round(out: rounded.pointer, inp: o["x"], count: count)
                BFloat16Conversion.widen(out: o["y"], inp: rounded.pointer, count: count)
                o["z"].update(from: o["x"], count: count)
                BFloat16Conversion.roundInPlace(o["z"], count: count)
            },
        ]
    }

    private static func embedding(_ normal: Normal, _ tokens: (Int, Int) -> [Int32]) -> [KernelComparison] {
        let (batch, t, c, vocab) = (2, 7, 24, 50), rows = batch * t
        // The lookup from bf16 tables (on a GPU: widened into scratch, then the fp32 kernel).
        let bf16 = [(0, vocab), (10, 20)].map { start, count in
            KernelComparison(name: "Embedding.forward (bf16 tables)", shape: "batch 2, seq 7, channels 24, vocab from \(start)",
                             floats: ["wte": normal(count * c, 1), "wpe": normal(t * c, 1), "y": normal(rows * c, 1)],
                             ints: ["tokens": tokens(rows, start == 0 ? vocab : 40)], outputs: ["y"]) { o in
                let wte = BFloat16Buffer(rounding: o["wte"], count: count * c), wpe = BFloat16Buffer(rounding: o["wpe"], count: t * c)
                Embedding.forward(out: o["y"], tokens: o.int("tokens"), wte: wte.pointer, wpe: wpe.pointer, batch: batch,
                                  seqLength: t, channels: c, vocabStart: start, vocabCount: count)
            }
        }
        return bf16 + [(0, Int.max), (10, 20)].map { start, count in
            KernelComparison(name: "Embedding.forward+backward", shape: "batch 2, seq 7, channels 24, vocab from \(start)",
                             floats: ["wte": normal(vocab * c, 1), "wpe": normal(t * c, 1), "y": normal(rows * c, 1),
                                      "dy": normal(rows * c, 1), "dwte": normal(vocab * c, 1), "dwpe": normal(t * c, 1)],
                             ints: ["tokens": tokens(rows, start == 0 ? vocab : 40)], outputs: ["y", "dwte", "dwpe"]) { o in
                Embedding.forward(out: o["y"], tokens: o.int("tokens"), wte: o["wte"], wpe: o["wpe"], batch: batch,
                                  seqLength: t, channels: c, vocabStart: start, vocabCount: count)
                Embedding.backward(dwte: o["dwte"], dwpe: o["dwpe"], dout: o["dy"], tokens: o.int("tokens"), batch: batch,
                                   seqLength: t, channels: c, vocabStart: start, vocabCount: count)
            }
        }
    }

    private static func crossEntropy(_ normal: Normal, _ tokens: (Int, Int) -> [Int32]) -> [KernelComparison] {
        let (rows, vocab, valid) = (13, 77, 70)
        var targets = tokens(rows, valid)
        targets[3] = CrossEntropy.ignoreIndex
        let mask = (0..<rows).map { Float($0 % 4 == 1 ? 0 : 1) }
        return [
            KernelComparison(name: "CrossEntropy.forward+backward", shape: "rows 13, vocab 77 (70 valid), a masked and an ignored row",
                             floats: ["logits": normal(rows * vocab, 3), "losses": normal(rows, 1), "lse": normal(rows, 1),
                                      "mask": mask],
                             ints: ["targets": targets], outputs: ["losses", "lse", "logits"]) { o in
                let totals = CrossEntropy.forward(losses: o["losses"], logSumExp: o["lse"], logits: o["logits"],
                                                  targets: o.int("targets"), lossMask: o["mask"], rows: rows, vocab: vocab,
                                                  validColumns: valid)
                CrossEntropy.backward(logitsToGradient: o["logits"], logSumExp: o["lse"], targets: o.int("targets"),
                                      lossMask: o["mask"], scale: Float(1 / totals.weight), rows: rows, vocab: vocab,
                                      validColumns: valid)
            },
        ]
    }

    private static func attention(_ normal: Normal) -> [KernelComparison] {
        let (batch, t, heads, c) = (2, 65, 3, 48), n = batch * t
        func comparison(bf16GEMMs: Bool) -> KernelComparison {
            var qkv = normal(n * 3 * c, 1)
            // With --bf16 the model hands the core bf16-rounded Q, K and V.
            if bf16GEMMs { qkv = qkv.map { BFloat16($0).float } }
            return KernelComparison(
                name: bf16GEMMs ? "Attention bf16 GEMMs" : "Attention.forward+backward",
                shape: "batch 2, seq 65, heads 3, channels 48",
                floats: ["qkv": qkv, "out": normal(n * c, 1), "lse": normal(batch * heads * t, 1),
                         "dout": normal(n * c, 1), "dqkv": normal(n * 3 * c, 1),
                         "scratch": [Float](repeating: 0, count: Attention.scratchCount(seqLength: t))],
                ints: [:], outputs: ["out", "lse", "dqkv"],
                // Both round the scores, probabilities, dO, dP and dS to bf16; a sum that lands across a
                // rounding boundary on one side only moves that value by a bf16 step (2^-8 relative).
                tolerance: bf16GEMMs ? 2e-2 : nil) { o in
                Attention.forward(out: o["out"], logSumExp: o["lse"], qkv: o["qkv"], scratch: o["scratch"], batch: batch,
                                  seqLength: t, heads: heads, channels: c, bf16GEMMs: bf16GEMMs)
                Attention.backward(dqkv: o["dqkv"], dout: o["dout"], out: o["out"], logSumExp: o["lse"], qkv: o["qkv"],
                                   scratch: o["scratch"], batch: batch, seqLength: t, heads: heads, channels: c,
                                   bf16GEMMs: bf16GEMMs)
            }
        }
        return [comparison(bf16GEMMs: false), comparison(bf16GEMMs: true)]
    }

    private static func optimizer(_ normal: Normal) -> [KernelComparison] {
        let count = 1003
        return [
            KernelComparison(name: "AdamW.update (3 steps)", shape: "1003 values",
                             floats: ["p": normal(count, 1), "g": normal(count, 1), "m": normal(count, 0.1),
                                      "v": normal(count, 0.1).map { $0 * $0 }],
                             ints: [:], outputs: ["p", "m", "v"]) { o in
                let hp = AdamW.Hyperparameters(learningRate: 1e-3)
                for step in 1...3 {
                    AdamW.update(params: o["p"], grads: o["g"], m: o["m"], v: o["v"], count: count, step: step,
                                 hyperparameters: hp, decay: step != 2, gradScale: 0.5)
                }
            },
        ]
    }
}
