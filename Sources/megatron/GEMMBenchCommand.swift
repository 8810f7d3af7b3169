import ArgumentParser
import Kernels
import Measurement
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `megatron bench gemm`: GFLOP/s of a linear layer's three GEMMs on every GEMM path.
struct GEMMBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "Time sgemm (OpenBLAS, oneDNN) against the bf16 GEMM (oneDNN, emulated) in GFLOP/s.",
        discussion: """
        Times out = inp · Wᵀ (NT), dinp = dout · W (NN) and dW += doutᵀ · inp (TN) for
        inp [rows, in], W [out, in] (default 4096 x 768 -> 3072, GPT-2 124M's first MLP GEMM at
        4 x 1024 tokens), each 2 rows in out FLOPs, on: OpenBLAS sgemm, oneDNN fp32, oneDNN bf16
        and the bf16 emulation (widen to fp32 + sgemm). oneDNN follows the BLAS thread count.
        Set DNNL_MAX_CPU_ISA=AVX2 to see what a CPU without native bf16 would run.
        """)

    @Option(name: .long, help: "BLAS and oneDNN threads.")
    var threads = 2

    @Option(name: .long, help: "Rows (tokens) of the input.")
    var rows = 4096

    @Option(name: .long, help: "Input features.")
    var inFeatures = 768

    @Option(name: .long, help: "Output features.")
    var outFeatures = 3072

    @Option(name: .long, help: "Timed calls per cell (after one untimed call).")
    var repeats = 5

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        for (value, flag) in [(threads, "--threads"), (rows, "--rows"), (inFeatures, "--in-features"),
                              (outFeatures, "--out-features"), (repeats, "--repeats")] where value < 1 {
            throw ValidationError("\(flag) must be at least 1, got \(value)")
        }
        for (value, flag) in [(rows, "--rows"), (inFeatures, "--in-features"), (outFeatures, "--out-features")]
        where value > Int(Int32.max) {
            throw ValidationError("\(flag) must be below 2^31 (BLAS's integer), got \(value)")
        }
        // Three fp32 operands and results (x, w, dy; y, dx, dw) and the bf16 copies of the operands.
        let (m, k, n) = (Double(rows), Double(inFeatures), Double(outFeatures))
        try BenchMemory.check(bytes: 10 * (m * k + n * k + m * n), what: "the GEMMs' operands and results")
    }

    struct Report: Codable {
        var cpu: String, openBLASKernels: String, bf16GEMM: String, threads: Int, rows: Int, inFeatures: Int, outFeatures: Int
        var results: [GEMMBenchmark.Row]
        var alternatingOpenBLASGFLOPs: Double, alternatingOneDNNBF16GFLOPs: Double
    }

    func run() throws {
        setBLASThreadCount(threads)
        let bench = GEMMBenchmark(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, repeats: repeats)
        let results = bench.run()
        let mixed = bench.alternating()
        let report = Report(cpu: GEMMBenchmark.cpuDescription(), openBLASKernels: GEMMBenchmark.openBLASKernels(), bf16GEMM: BF16Matmul.description,
                            threads: threads, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures,
                            results: results, alternatingOpenBLASGFLOPs: mixed.openBLAS,
                            alternatingOneDNNBF16GFLOPs: mixed.oneDNN)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print("CPU: \(report.cpu)")
        print("OpenBLAS kernels: \(report.openBLASKernels)")
        print(report.bf16GEMM)
        print("\(rows) x \(inFeatures) -> \(outFeatures), \(threads) threads, GFLOP/s best (median) of \(repeats)")
        let pathWidth = GEMMBenchmark.Path.allCases.map(\.rawValue.count).max() ?? 0
        for product in GEMMBenchmark.Product.allCases {
            print(product.rawValue)
            for row in results where row.product == product {
                let name = row.path.rawValue.padding(toLength: pathWidth, withPad: " ", startingAt: 0)
                let cell = "\(fixed(row.bestGFLOPs, 1)) (\(fixed(row.medianGFLOPs, 1)))"
                print("  \(name)  \(cell)\(row.implementation.map { "  [\($0)]" } ?? "")")
            }
        }
        print("forward alternating call by call: OpenBLAS fp32 \(fixed(mixed.openBLAS, 1)), oneDNN bf16 \(fixed(mixed.oneDNN, 1)) (medians)")
    }

}
