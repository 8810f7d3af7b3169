#if canImport(Glibc)
import Glibc
#endif

/// Where a run computes: `--device cpu|cuda` (train, bench, evaluate, generate, serve).
public enum ComputeDevice: String, Sendable, CaseIterable {
    /// OpenBLAS, oneDNN and the vectorized Swift kernels (the default).
    case cpu
    /// One NVIDIA GPU through `libmegatron_cuda.so` (`CUDAAccelerator`).
    case cuda
}

/// The process's GPU, when it runs with `--device cuda`: the Kernels module hands its work to
/// `active`, and the buffers (`FloatBuffer`, `BFloat16Buffer`, `Int32Buffer`, scratch) take
/// managed memory from it. Set once at start-up, before any buffer exists and before rank
/// threads start; nil on the CPU.
public enum GPU {
    nonisolated(unsafe) public private(set) static var active: CUDAAccelerator?
    /// The loaded GPU even while `withCPU` sets it aside: what it allocated is still freed by it.
    nonisolated(unsafe) private static var loaded: CUDAAccelerator?

    /// Selects `device` for the process: on `.cuda` loads the backend (GPU 0, or
    /// `MEGATRON_CUDA_DEVICE`) or throws an error naming what is missing.
    /// Returns the one-line start-up note ("device: cuda, NVIDIA H200 ..."). `allowsAsynchronous`:
    /// see `CUDAAccelerator.init`.
    @discardableResult
    public static func activate(_ device: ComputeDevice, allowsAsynchronous: Bool = false) throws(AcceleratorError) -> String {
        switch device {
        case .cpu:
            return "device: cpu"
        case .cuda:
            if let active { return "device: cuda, \(active.deviceName)" }
            let index = getenv("MEGATRON_CUDA_DEVICE").flatMap { Int(String(cString: $0)) } ?? 0
            let accelerator = try CUDAAccelerator(device: index, allowsAsynchronous: allowsAsynchronous)
            active = accelerator
            loaded = accelerator
            let mode = accelerator.synchronous ? "" : ", asynchronous"
            return "device: cuda, \(accelerator.deviceName) (kernels: \(accelerator.libraryPath)\(mode))"
        }
    }

    /// Runs `body` with the GPU set aside: the CPU kernels on host buffers (a check's reference).
    /// Only where no other thread computes at the same time.
    public static func withCPU<R>(_ body: () throws -> R) rethrows -> R {
        let saved = active
        active = nil
        defer { active = saved }
        return try body()
    }

    /// Call before the host reads what GPU operations wrote (a loss, a kernel's CPU path on
    /// managed memory): waits for queued GPU work when operations run asynchronously
    /// (`MEGATRON_CUDA_ASYNC=1`); free otherwise.
    @inline(__always)
    public static func hostWillRead() {
        if let active, !active.synchronous { active.synchronize() }
    }

    /// Managed memory for a buffer of `bytes` when a GPU is active; nil on the CPU.
    @inline(__always)
    public static func allocate(bytes: Int) -> UnsafeMutableRawPointer? {
        active?.allocate(bytes: bytes)
    }

    /// Frees `pointer` if the GPU allocated it (also inside `withCPU`); false for host memory
    /// (the caller frees it).
    @inline(__always)
    public static func release(_ pointer: UnsafeMutableRawPointer) -> Bool {
        loaded?.release(pointer) ?? false
    }
}
