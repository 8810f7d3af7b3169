#if canImport(Glibc)
import Glibc
#endif

/// One NVIDIA GPU driven through `libmegatron_cuda.so` (CUDA kernels compiled by nvcc, cuBLAS
/// GEMMs): the operations the Kernels module hands over when the process runs with
/// `--device cuda` (`GPU.active`). Pointers are to managed memory, which both the GPU and the
/// host can read, so code that has no GPU version yet stays correct; other pointers are staged.
/// Every operation has finished when it returns. A failing CUDA call stops the process with one
/// line naming it (a training step cannot continue past a GPU fault).
public final class CUDAAccelerator: @unchecked Sendable {
    let library: CUDALibrary
    let memory = ManagedMemory()
    /// The GPU, e.g. "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB)".
    public let deviceName: String
    /// Where the kernel library was loaded from.
    public let libraryPath: String
    /// Whether every operation waits for its GPU work (the default). `MEGATRON_CUDA_ASYNC=1`
    /// lets them return once queued, the host waiting only where it reads results
    /// (`GPU.hostWillRead`): faster, an experiment (see the README).
    public let synchronous: Bool
    /// Per-operation totals (`MEGATRON_CUDA_PROFILE=1`), nil otherwise.
    let profile: CUDAProfile?

    /// Loads the kernel library (`MEGATRON_CUDA_KERNELS`, else `libmegatron_cuda.so` beside the
    /// executable) and cuBLAS (`MEGATRON_CUBLAS`, else `libcublas.so.13` on the loader's path), and
    /// selects GPU `device`. `allowsAsynchronous`: the caller has audited where its host code
    /// reads GPU results (train and bench), so `MEGATRON_CUDA_ASYNC=1` may take effect.
    public init(device: Int = 0, allowsAsynchronous: Bool = false) throws(AcceleratorError) {
        let path = Self.kernelLibraryPath()
        library = try CUDALibrary(path: path)
        libraryPath = path
        var count: Int32 = 0
        if library.deviceCount(&count) != 0 {
            throw .device(String(cString: library.lastError()))
        }
        guard count > 0 else { throw .device("no NVIDIA GPU is visible (the driver reports 0 devices)") }
        var name = [CChar](repeating: 0, count: 256)
        let cublas = getenv("MEGATRON_CUBLAS")
        if library.initialize(Int32(device), cublas, &name, Int32(name.count)) != 0 {
            throw .device(String(cString: library.lastError()))
        }
        deviceName = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        synchronous = !allowsAsynchronous || getenv("MEGATRON_CUDA_ASYNC").map { String(cString: $0) } != "1"
        if library.setSynchronous(synchronous ? 1 : 0) != 0 { throw .device(String(cString: library.lastError())) }
        profile = getenv("MEGATRON_CUDA_PROFILE").map { String(cString: $0) } == "1" ? CUDAProfile() : nil
    }

    /// Waits for all queued GPU work.
    public func synchronize() { check(library.synchronize(), "synchronize") }

    /// The profile's table (`MEGATRON_CUDA_PROFILE=1`), nil when none is kept.
    public var profileReport: String? { profile?.report }

    /// Starts the profile afresh (bench calls it after its warm-up steps).
    public func resetProfile() { profile?.reset() }

    /// The kernel library's path: `MEGATRON_CUDA_KERNELS`, else beside the running executable.
    static func kernelLibraryPath() -> String {
        if let path = getenv("MEGATRON_CUDA_KERNELS") { return String(cString: path) }
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return "libmegatron_cuda.so" }
        let executable = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let folder = executable.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return folder + "/libmegatron_cuda.so"
    }

    /// Stops the process when a call failed.
    @inline(__always)
    func check(_ status: Int32, _ what: StaticString) {
        guard status != 0 else { return }
        let line = "error: CUDA \(what): \(String(cString: library.lastError()))\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
        exit(1)
    }

    // MARK: Memory

    /// `bytes` of zeroed managed memory (the process stops, naming the size, when the GPU has
    /// too little free: asking for more managed memory than the card holds can hang it).
    public func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        let start = profile == nil ? 0 : CUDAProfile.now()
        var pointer: UnsafeMutableRawPointer?
        check(library.allocate(&pointer, max(1, bytes)), "allocation")
        memory.insert(pointer!, bytes: max(1, bytes))
        profile?.record("allocate", seconds: CUDAProfile.now() - start, stagedBytes: 0)
        return pointer!
    }

    /// Frees `pointer` when this GPU allocated it; false otherwise (host memory).
    @discardableResult
    public func release(_ pointer: UnsafeMutableRawPointer) -> Bool {
        guard memory.remove(pointer) else { return false }
        check(library.free(pointer), "free")
        return true
    }

    /// Whether `pointer` lies in this GPU's managed memory.
    public func owns(_ pointer: UnsafeRawPointer) -> Bool { memory.contains(pointer, bytes: 1) }

    /// Zeroes `bytes` from `pointer` (managed memory) on the GPU.
    public func zero(_ pointer: UnsafeMutableRawPointer, bytes: Int) { check(library.zero(pointer, bytes), "memset") }

    /// Copies `bytes` between any two pointers.
    public func copy(to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, bytes: Int) {
        check(library.copy(destination, source, bytes), "memcpy")
    }

    /// Free and total device memory in bytes.
    public func memoryInfo() -> (free: Int, total: Int) {
        var free = 0, total = 0
        check(library.memoryInfo(&free, &total), "cudaMemGetInfo")
        return (free, total)
    }
}
