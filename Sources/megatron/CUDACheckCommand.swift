import Accelerator
import ArgumentParser
import Measurement
#if canImport(Glibc)
import Glibc
#endif

/// `megatron cuda-check`: every GPU kernel against the CPU path on the same random inputs (the
/// device check's first part; there is no Swift toolchain on a GPU machine to run `swift test`).
struct CUDACheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cuda-check",
        abstract: "Compare every CUDA kernel with the CPU path (needs an NVIDIA GPU and libmegatron_cuda.so).")

    @Option(name: .long, help: "Largest accepted ‖gpu − cpu‖∞ / ‖cpu‖∞ of an output (a case with a tolerance of its own, bf16 on the GPU, takes the larger).")
    var tolerance: Double = 1e-5

    @Option(name: .long, help: "Seed of the random inputs.")
    var seed: UInt64 = 1

    func run() throws {
        print(try GPU.activate(.cuda))
        var failed = 0
        print("kernel".padding(toLength: 32, withPad: " ", startingAt: 0) + "  error      worst output  shape")
        for comparison in KernelComparison.all(seed: seed) {
            let result = comparison.run()
            let limit = result.tolerance.map { max($0, tolerance) } ?? tolerance
            let passed = result.error <= limit
            if !passed { failed += 1 }
            let error = String(format: "%.2e", result.error)
            print(result.name.padding(toLength: 32, withPad: " ", startingAt: 0) + "  \(error)   "
                  + result.worstOutput.padding(toLength: 12, withPad: " ", startingAt: 0) + "  \(result.shape)"
                  + (result.tolerance.map { " (bf16 on the GPU: tolerance \($0))" } ?? "")
                  + (passed ? "" : "  FAILED (tolerance \(limit))"))
        }
        print(failed == 0 ? "all kernels within their tolerance of the CPU (fp32: \(tolerance))"
                          : "\(failed) kernel(s) outside their tolerance")
        if failed > 0 { throw ExitCode.failure }
    }
}
