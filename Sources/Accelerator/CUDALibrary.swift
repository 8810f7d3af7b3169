#if canImport(Glibc)
import Glibc
#endif

/// The C functions of `libmegatron_cuda.so` (`cuda/megatron_cuda.h`), looked up with `dlsym`.
/// Every one returns 0, or non-zero with a message for `lastError`.
struct CUDALibrary {
    typealias Status = Int32
    typealias F = UnsafeMutablePointer<Float>
    typealias CF = UnsafePointer<Float>

    /// The interface version this Swift code was written against (`mgt_abi_version`).
    static let abiVersion: Int32 = 3

    let abiVersion: @convention(c) () -> Int32
    let lastError: @convention(c) () -> UnsafePointer<CChar>
    let initialize: @convention(c) (Int32, UnsafePointer<CChar>?, UnsafeMutablePointer<CChar>, Int32) -> Status
    let deviceCount: @convention(c) (UnsafeMutablePointer<Int32>) -> Status
    let memoryInfo: @convention(c) (UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>) -> Status
    let allocate: @convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>, Int) -> Status
    let free: @convention(c) (UnsafeMutableRawPointer?) -> Status
    let zero: @convention(c) (UnsafeMutableRawPointer?, Int) -> Status
    let copy: @convention(c) (UnsafeMutableRawPointer?, UnsafeRawPointer?, Int) -> Status
    let synchronize: @convention(c) () -> Status
    let setSynchronous: @convention(c) (Int32) -> Status
    let sgemm: @convention(c) (Int32, Int32, Int32, Int32, Int32, Float, CF?, Int32, CF?, Int32, Float, F?, Int32) -> Status
    let gemmBF16: @convention(c) (Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<UInt16>?, Int32,
                                  UnsafePointer<UInt16>?, Int32, Float, F?, Int32) -> Status
    let sgemv: @convention(c) (Int32, Int32, Int32, Float, CF?, Int32, CF?, Float, F?) -> Status
    let layerNormForward: @convention(c) (F?, F?, F?, CF?, CF?, CF?, Int32, Int32, Float) -> Status
    let layerNormBackward: @convention(c) (F?, F?, F?, CF?, CF?, CF?, CF?, CF?, Int32, Int32) -> Status
    let geluForward: @convention(c) (F?, CF?, Int, Int32) -> Status
    let geluBackward: @convention(c) (F?, CF?, CF?, Int, Int32) -> Status
    let fillRows: @convention(c) (F?, CF?, Int32, Int32) -> Status
    let addInPlace: @convention(c) (F?, CF?, Int) -> Status
    let bf16Round: @convention(c) (UnsafeMutablePointer<UInt16>?, CF?, Int) -> Status
    let bf16Widen: @convention(c) (F?, UnsafePointer<UInt16>?, Int) -> Status
    let bf16RoundInPlace: @convention(c) (F?, Int) -> Status
    let embeddingForward: @convention(c) (F?, UnsafePointer<Int32>?, CF?, CF?, Int32, Int32, Int32, Int, Int) -> Status
    let embeddingBackward: @convention(c) (F?, F?, CF?, UnsafePointer<Int32>?, Int32, Int32, Int32, Int, Int) -> Status
    let crossEntropyForward: @convention(c) (F?, F?, CF?, UnsafePointer<Int32>?, Int32, Int32, Int32, Int32) -> Status
    let crossEntropyBackward: @convention(c) (F?, CF?, UnsafePointer<Int32>?, CF?, Float, Int32, Int32, Int, Int32,
                                              Int32) -> Status
    let attentionForward: @convention(c) (F?, F?, CF?, Int32, Int32, Int32, Int32) -> Status
    let attentionBackward: @convention(c) (F?, CF?, CF?, CF?, CF?, Int32, Int32, Int32, Int32) -> Status
    let attentionForwardBF16: @convention(c) (F?, F?, CF?, Int32, Int32, Int32, Int32) -> Status
    let attentionBackwardBF16: @convention(c) (F?, CF?, CF?, CF?, CF?, Int32, Int32, Int32, Int32) -> Status
    let adamW: @convention(c) (F?, CF?, F?, F?, Int, Float, Float, Float, Float, Float, Float, Float) -> Status
    let sumOfSquares: @convention(c) (CF?, Int, UnsafeMutablePointer<Double>) -> Status

    /// Loads the library at `path`; the error names the file and the symbol that is missing.
    init(path: String) throws(AcceleratorError) {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown reason"
            throw .libraryMissing("cannot load the CUDA kernel library \(path): \(reason)")
        }
        func symbol<T>(_ name: String, _: T.Type = T.self) throws(AcceleratorError) -> T {
            guard let address = dlsym(handle, name) else {
                throw .libraryMissing("\(path) has no \(name): rebuild it with scripts/cuda/build-kernels.sh")
            }
            return unsafeBitCast(address, to: T.self)
        }
        abiVersion = try symbol("mgt_abi_version")
        lastError = try symbol("mgt_last_error")
        initialize = try symbol("mgt_init")
        deviceCount = try symbol("mgt_device_count")
        memoryInfo = try symbol("mgt_memory_info")
        allocate = try symbol("mgt_alloc")
        free = try symbol("mgt_free")
        zero = try symbol("mgt_zero")
        copy = try symbol("mgt_copy")
        synchronize = try symbol("mgt_synchronize")
        setSynchronous = try symbol("mgt_set_synchronous")
        sgemm = try symbol("mgt_sgemm")
        gemmBF16 = try symbol("mgt_gemm_bf16")
        sgemv = try symbol("mgt_sgemv")
        layerNormForward = try symbol("mgt_layernorm_forward")
        layerNormBackward = try symbol("mgt_layernorm_backward")
        geluForward = try symbol("mgt_gelu_forward")
        geluBackward = try symbol("mgt_gelu_backward")
        fillRows = try symbol("mgt_fill_rows")
        addInPlace = try symbol("mgt_add_in_place")
        bf16Round = try symbol("mgt_bf16_round")
        bf16Widen = try symbol("mgt_bf16_widen")
        bf16RoundInPlace = try symbol("mgt_bf16_round_in_place")
        embeddingForward = try symbol("mgt_embedding_forward")
        embeddingBackward = try symbol("mgt_embedding_backward")
        crossEntropyForward = try symbol("mgt_cross_entropy_forward")
        crossEntropyBackward = try symbol("mgt_cross_entropy_backward")
        attentionForward = try symbol("mgt_attention_forward")
        attentionBackward = try symbol("mgt_attention_backward")
        attentionForwardBF16 = try symbol("mgt_attention_forward_bf16")
        attentionBackwardBF16 = try symbol("mgt_attention_backward_bf16")
        adamW = try symbol("mgt_adamw")
        sumOfSquares = try symbol("mgt_sum_of_squares")
        let version = abiVersion()
        guard version == Self.abiVersion else {
            throw .libraryMissing("\(path) has interface version \(version), this binary needs \(Self.abiVersion): rebuild it")
        }
    }
}

/// Why the CUDA backend cannot run.
public enum AcceleratorError: Error, CustomStringConvertible, Sendable {
    /// The kernel library or a library it needs (the CUDA runtime, cuBLAS) is not there.
    case libraryMissing(String)
    /// No driver or no GPU, or the GPU refused a call.
    case device(String)

    public var description: String {
        switch self {
        case .libraryMissing(let message), .device(let message): return message
        }
    }
}
