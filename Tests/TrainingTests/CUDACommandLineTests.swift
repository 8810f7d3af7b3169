import Foundation
import Testing

/// `--device cuda` on a machine without what it needs: one error line naming what is missing
/// and a non-zero exit, before anything is computed or written.
@Suite struct CUDACommandLineTests {
    @Test func withoutTheKernelLibraryTheErrorNamesIt() throws {
        setenv("MEGATRON_CUDA_KERNELS", "/nonexistent/libmegatron_cuda.so", 1)
        defer { unsetenv("MEGATRON_CUDA_KERNELS") }
        for arguments in [["cuda-check"], ["bench", "--config", "S", "--device", "cuda"]] {
            let result = try CommandLineErrorTests.megatron(arguments)
            #expect(result.status != 0)
            #expect(result.stderr.hasPrefix("Error: cannot load the CUDA kernel library /nonexistent/libmegatron_cuda.so"),
                    "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1)
        }
    }

    @Test func cudaRunsOneRank() throws {
        let result = try CommandLineErrorTests.megatron(["train", "--device", "cuda", "--tensor-model-parallel-size", "2",
                                                         "--num-layers", "2", "--hidden-size", "64", "--num-attention-heads", "4",
                                                         "--seq-length", "16", "--micro-batch-size", "1", "--global-batch-size", "1",
                                                         "--lr", "1e-3", "--train-iters", "1", "--data-path", "/nonexistent"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--device cuda") && result.stderr.contains("one rank"), "\(result.stderr)")
    }

    @Test func anUnknownDeviceIsRefused() throws {
        let result = try CommandLineErrorTests.megatron(["train", "--device", "tpu", "--num-layers", "2"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("device must be cpu or cuda, got tpu"), "\(result.stderr)")
    }
}
