import Foundation
@testable import Accelerator
import Testing

/// The parts of the CUDA backend that run without a GPU: the registry that tells managed memory
/// from host memory (which decides whether a kernel's pointer is staged), and the errors a
/// machine without the kernel library or a GPU gets.
@Suite struct AcceleratorTests {
    @Test func managedMemoryKnowsItsRanges() {
        let memory = ManagedMemory()
        let blocks = (0..<3).map { _ in UnsafeMutableRawPointer.allocate(byteCount: 256, alignment: 64) }
        defer { blocks.forEach { $0.deallocate() } }
        memory.insert(blocks[2], bytes: 256)
        memory.insert(blocks[0], bytes: 256)
        #expect(memory.contains(blocks[0], bytes: 256))
        #expect(memory.contains(blocks[0] + 100, bytes: 156))
        #expect(!memory.contains(blocks[0] + 100, bytes: 157), "runs past the allocation's end")
        #expect(!memory.contains(blocks[1], bytes: 4), "never inserted")
        #expect(memory.contains(blocks[2] + 255, bytes: 1))
        #expect(!memory.remove(blocks[1]))
        #expect(!memory.remove(blocks[0] + 4), "only an allocation's start frees it")
        #expect(memory.remove(blocks[0]))
        #expect(!memory.contains(blocks[0], bytes: 1))
        #expect(memory.contains(blocks[2], bytes: 256))
    }

    @Test func theProfileStartsAfreshAfterAReset() {
        let profile = CUDAProfile()
        profile.record("bf16 gemm", seconds: 0.002, stagedBytes: 0)
        profile.record("bf16 gemm", seconds: 0.004, stagedBytes: 1 << 20)
        #expect(profile.report.contains("CUDA profile: 2 calls, 6.0 ms"))
        profile.reset()  // bench's warm-up ends here
        profile.record("adamw", seconds: 0.001, stagedBytes: 0)
        #expect(profile.report.contains("CUDA profile: 1 calls, 1.0 ms"))
        #expect(!profile.report.contains("bf16 gemm"))
    }

    @Test func aMissingKernelLibraryIsNamed() throws {
        setenv("MEGATRON_CUDA_KERNELS", "/nonexistent/libmegatron_cuda.so", 1)
        defer { unsetenv("MEGATRON_CUDA_KERNELS") }
        #expect(throws: AcceleratorError.self) { try CUDAAccelerator(device: 0) }
        do {
            _ = try CUDAAccelerator(device: 0)
        } catch {
            #expect(error.description.hasPrefix("cannot load the CUDA kernel library /nonexistent/libmegatron_cuda.so"))
        }
        #expect(GPU.active == nil, "a failed start leaves the process on the CPU")
    }
}
