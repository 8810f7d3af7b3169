import ArgumentParser
import Kernels
import Measurement
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `megatron bench attention`: one layer's causal attention core in fp32 and with bf16 GEMMs.
struct AttentionBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Time one layer's causal attention core (forward, backward) in fp32 and with bf16 GEMMs.",
        discussion: """
        Runs Attention.forward and .backward at a benchmark configuration's shape (micro-batch x
        heads, sequence length, 64 channels per head for S, M and 124M) on random bf16-valued Q,
        K and V, first in fp32 and then as train --bf16 computes it (bf16 GEMM operands, fp32
        accumulation, see README's mixed-precision section). GFLOP/s count the GEMMs over the
        causal half of the scores: 2 T^2 d per head forward, 5 T^2 d backward.
        """)

    @Option(name: .long, help: "Configuration whose attention shape is timed: S, M or 124M.")
    var config: BenchConfiguration = .m

    @Option(name: .long, help: "BLAS and oneDNN threads.")
    var threads = 2

    @Option(name: .long, help: "Timed calls per cell (after one untimed call).")
    var repeats = 5

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        for (value, flag) in [(threads, "--threads"), (repeats, "--repeats")] where value < 1 {
            throw ValidationError("\(flag) must be at least 1, got \(value)")
        }
    }

    struct Report: Codable {
        var config: String, batch: Int, seqLength: Int, heads: Int, headDim: Int, threads: Int, bf16GEMM: String
        var results: [AttentionBenchmark.Row]
    }

    func run() throws {
        setBLASThreadCount(threads)
        let shape = config.shape
        let bench = AttentionBenchmark(batch: shape.microBatch, seqLength: shape.seqLength, heads: shape.heads,
                                       headDim: shape.hidden / shape.heads, repeats: repeats)
        // The core spreads its heads over the thread pool: it gets `threads` as BLAS does.
        let results = ThreadPool.withCurrent(ThreadPool(threadCount: threads)) { bench.run() }
        let report = Report(config: shape.name, batch: bench.batch, seqLength: bench.seqLength, heads: bench.heads,
                            headDim: bench.headDim, threads: threads, bf16GEMM: BF16Matmul.description, results: results)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print(report.bf16GEMM)
        print("config \(shape.name): batch \(bench.batch) x \(bench.heads) heads, seq \(bench.seqLength), head dim \(bench.headDim), "
              + "\(threads) threads; ms best (median) of \(repeats), GFLOP/s of the best")
        for row in report.results {
            print(row.precision.padding(toLength: 6, withPad: " ", startingAt: 0)
                  + "forward " + String(format: "%8.2f (%8.2f) %7.1f", row.forwardMilliseconds, row.forwardMedianMilliseconds, row.forwardGFLOPs)
                  + "   backward " + String(format: "%8.2f (%8.2f) %7.1f", row.backwardMilliseconds, row.backwardMedianMilliseconds,
                                            row.backwardGFLOPs))
        }
    }
}
