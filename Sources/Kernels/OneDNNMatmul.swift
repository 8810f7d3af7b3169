import CDNNL
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// One GEMM `C[m, n] (+)= op(A)[m, k] · op(B)[k, n] (+ bias[n])` through oneDNN's matmul
/// primitive, row-major storage, fp32 `C` and bias, `A` and `B` in fp32 or bf16 (fp32
/// accumulation). Primitives are created once per shape and cached (creating one costs
/// milliseconds); executing a cached primitive is thread-safe, and each call uses its own
/// memory objects and a stream taken from a small pool.
///
/// oneDNN (Debian's build) runs its parallel loops on OpenMP (libgomp): each call uses
/// `blasThreadCount()` threads, so OpenBLAS's setting (`OPENBLAS_NUM_THREADS`,
/// `setBLASThreadCount`, `withSingleThreadedBLAS`) governs both libraries.
public enum OneDNNMatmul {
    /// The element type of `A` and `B`.
    public enum ElementType: Sendable, Hashable {
        /// IEEE single precision.
        case float32
        /// bfloat16 (`BFloat16`).
        case bfloat16
    }

    /// A GEMM's shape and options: one cached primitive each.
    public struct Shape: Sendable, Hashable {
        /// Rows of `C`.
        public var m: Int
        /// Columns of `C`.
        public var n: Int
        /// The reduced dimension.
        public var k: Int
        /// `A` is stored `[k, m]` (used transposed) instead of `[m, k]`.
        public var transposeA: Bool
        /// `B` is stored `[n, k]` (used transposed) instead of `[k, n]`.
        public var transposeB: Bool
        /// Element type of `A` and `B`.
        public var type: ElementType
        /// A bias row `[n]` is added.
        public var bias: Bool
        /// `C` is added to (`beta = 1`) instead of overwritten.
        public var accumulate: Bool

        /// A shape; see the properties.
        public init(m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool, type: ElementType,
                    bias: Bool = false, accumulate: Bool = false) {
            self.m = m; self.n = n; self.k = k
            self.transposeA = transposeA; self.transposeB = transposeB
            self.type = type; self.bias = bias; self.accumulate = accumulate
        }
    }

    /// Runs the GEMM of `shape`: `a`, `b` point at elements of `shape.type`. Returns false (and
    /// computes nothing) when oneDNN has no implementation for it.
    @discardableResult
    public static func run(_ shape: Shape, a: UnsafeRawPointer, b: UnsafeRawPointer,
                           bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>) -> Bool {
        guard shape.m > 0, shape.n > 0 else { return true }
        guard let entry = OneDNNContext.shared.primitive(for: shape) else { return false }
        precondition(shape.bias == (bias != nil), "OneDNNMatmul: bias pointer must match shape.bias")
        let threads = Int32(max(1, blasThreadCount()))
        if omp_get_max_threads() != threads { omp_set_num_threads(threads) }
        let engine = OneDNNContext.shared.engine
        var memories: [dnnl_memory_t?] = []
        func memory(_ desc: dnnl_memory_desc_t, _ pointer: UnsafeRawPointer) -> dnnl_memory_t? {
            var desc = desc
            var handle: dnnl_memory_t?
            check(dnnl_memory_create(&handle, &desc, engine, UnsafeMutableRawPointer(mutating: pointer)),
                  "dnnl_memory_create")
            memories.append(handle)
            return handle
        }
        var args = [dnnl_exec_arg_t(arg: 1, memory: memory(entry.a, a)),       // DNNL_ARG_SRC
                    dnnl_exec_arg_t(arg: 33, memory: memory(entry.b, b)),      // DNNL_ARG_WEIGHTS
                    dnnl_exec_arg_t(arg: 17, memory: memory(entry.c, c))]      // DNNL_ARG_DST
        if let bias { args.append(dnnl_exec_arg_t(arg: 41, memory: memory(entry.bias, bias))) }  // DNNL_ARG_BIAS
        // This call's own scratchpad (see OneDNNPrimitive.scratchpad), from the pool.
        ScratchPool.withBytes(entry.scratchpadBytes) { scratch in
            if entry.scratchpadBytes > 0 {
                args.append(dnnl_exec_arg_t(arg: 80, memory: memory(entry.scratchpad, scratch)))  // DNNL_ARG_SCRATCHPAD
            }
            let stream = OneDNNContext.shared.takeStream()
            check(dnnl_primitive_execute(entry.primitive, stream, Int32(args.count), &args), "dnnl_primitive_execute")
            check(dnnl_stream_wait(stream), "dnnl_stream_wait")
            OneDNNContext.shared.returnStream(stream)
        }
        for handle in memories { dnnl_memory_destroy(handle) }
        return true
    }

    /// oneDNN's name for the implementation it picked for `shape` (e.g. `brg:avx512_core_bf16`,
    /// `gemm:jit`; `ref:any` is its slow reference loop), or nil when it has none.
    public static func implementation(_ shape: Shape) -> String? {
        OneDNNContext.shared.primitive(for: shape)?.implementation
    }

    /// Whether the CPU oneDNN sees (after `DNNL_MAX_CPU_ISA`) has bf16 dot-product instructions
    /// (AVX512_BF16 or AMX).
    public static var hasNativeBFloat16: Bool {
        let isa = dnnl_get_effective_cpu_isa().rawValue
        let bf16 = dnnl_cpu_isa_avx512_core_bf16.rawValue
        return isa & bf16 == bf16
    }

    /// The instruction set oneDNN uses, in its own words (`avx512_core_bf16`, `avx2`, ...).
    public static var instructionSet: String {
        switch dnnl_get_effective_cpu_isa() {
        case dnnl_cpu_isa_avx512_core_amx: "avx512_core_amx"
        case dnnl_cpu_isa_avx512_core_bf16: "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_vnni: "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core: "avx512_core"
        case dnnl_cpu_isa_avx2_vnni: "avx2_vnni"
        case dnnl_cpu_isa_avx2: "avx2"
        case let other: "isa 0x\(String(other.rawValue, radix: 16))"
        }
    }

    /// oneDNN's version, `major.minor.patch`.
    public static var version: String {
        guard let v = dnnl_version()?.pointee else { return "?" }
        return "\(v.major).\(v.minor).\(v.patch)"
    }

    static func check(_ status: dnnl_status_t, _ call: StaticString) {
        if status != dnnl_success { fatalError("oneDNN: \(call) failed with status \(status.rawValue)") }
    }
}

/// A cached primitive and the memory descriptors its arguments need.
final class OneDNNPrimitive: @unchecked Sendable {
    let primitive: dnnl_primitive_t?
    let a: dnnl_memory_desc_t, b: dnnl_memory_desc_t, c: dnnl_memory_desc_t, bias: dnnl_memory_desc_t
    /// The per-call scratchpad: the primitive is created with a user-managed scratchpad so
    /// that threads executing it at once never share oneDNN's global one (Debian's build has no
    /// concurrent-execution scratchpad).
    let scratchpad: dnnl_memory_desc_t
    let scratchpadBytes: Int
    let implementation: String

    init?(_ shape: OneDNNMatmul.Shape, engine: dnnl_engine_t?) {
        let type = shape.type == .bfloat16 ? dnnl_bf16 : dnnl_f32
        let (m, n, k) = (Int64(shape.m), Int64(shape.n), Int64(shape.k))
        a = Self.matrix(rows: m, columns: k, type: type, transposed: shape.transposeA)
        b = Self.matrix(rows: k, columns: n, type: type, transposed: shape.transposeB)
        c = Self.matrix(rows: m, columns: n, type: dnnl_f32, transposed: false)
        bias = Self.matrix(rows: 1, columns: n, type: dnnl_f32, transposed: false)
        var desc = dnnl_matmul_desc_t()
        var (a, b, c, bias) = (a, b, c, bias)
        let status = shape.bias ? dnnl_matmul_desc_init(&desc, &a, &b, &bias, &c)
                                : dnnl_matmul_desc_init(&desc, &a, &b, nil, &c)
        guard status == dnnl_success else { return nil }
        var attr: dnnl_primitive_attr_t?
        OneDNNMatmul.check(dnnl_primitive_attr_create(&attr), "dnnl_primitive_attr_create")
        defer { dnnl_primitive_attr_destroy(attr) }
        OneDNNMatmul.check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user),
                           "dnnl_primitive_attr_set_scratchpad_mode")
        if shape.accumulate {
            var postOps: dnnl_post_ops_t?
            OneDNNMatmul.check(dnnl_post_ops_create(&postOps), "dnnl_post_ops_create")
            OneDNNMatmul.check(dnnl_post_ops_append_sum(postOps, 1), "dnnl_post_ops_append_sum")
            OneDNNMatmul.check(dnnl_primitive_attr_set_post_ops(attr, postOps), "dnnl_primitive_attr_set_post_ops")
            dnnl_post_ops_destroy(postOps)
        }
        var descriptor: dnnl_primitive_desc_t?
        guard dnnl_primitive_desc_create(&descriptor, &desc, attr, engine, nil) == dnnl_success else { return nil }
        defer { dnnl_primitive_desc_destroy(descriptor) }
        var name: UnsafePointer<CChar>?
        dnnl_primitive_desc_query(descriptor, dnnl_query_impl_info_str, 0, &name)
        implementation = name.map { String(cString: $0) } ?? "?"
        if let md = dnnl_primitive_desc_query_md(descriptor, dnnl_query_scratchpad_md, 0) {
            scratchpad = md.pointee
        } else {
            scratchpad = dnnl_memory_desc_t()
        }
        var md = scratchpad
        scratchpadBytes = dnnl_memory_desc_get_size(&md)
        var primitive: dnnl_primitive_t?
        guard dnnl_primitive_create(&primitive, descriptor) == dnnl_success else { return nil }
        self.primitive = primitive
    }

    deinit { dnnl_primitive_destroy(primitive) }

    /// A row-major `[rows, columns]` matrix, or the transpose of a row-major `[columns, rows]` one.
    static func matrix(rows: Int64, columns: Int64, type: dnnl_data_type_t, transposed: Bool) -> dnnl_memory_desc_t {
        var desc = dnnl_memory_desc_t()
        var dims: dnnl_dims_t = (rows, columns, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var strides: dnnl_dims_t = transposed ? (1, rows, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
                                              : (columns, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let status = withUnsafePointer(to: &dims) { dimsPointer in
            withUnsafePointer(to: &strides) { stridesPointer in
                dnnl_memory_desc_init_by_strides(
                    &desc, 2, UnsafeRawPointer(dimsPointer).assumingMemoryBound(to: Int64.self), type,
                    UnsafeRawPointer(stridesPointer).assumingMemoryBound(to: Int64.self))
            }
        }
        OneDNNMatmul.check(status, "dnnl_memory_desc_init_by_strides")
        return desc
    }
}

/// The process's oneDNN CPU engine, primitive cache and stream pool.
final class OneDNNContext: @unchecked Sendable {
    static let shared = OneDNNContext()

    let engine: dnnl_engine_t?
    private let cache = Mutex<[OneDNNMatmul.Shape: OneDNNPrimitive?]>([:])
    private let streams = Mutex<[StreamHandle]>([])

    /// A stream as a value the pool's lock can hold (a stream is used by one call at a time).
    struct StreamHandle: @unchecked Sendable { let stream: dnnl_stream_t? }

    private init() {
        var engine: dnnl_engine_t?
        OneDNNMatmul.check(dnnl_engine_create(&engine, dnnl_cpu, 0), "dnnl_engine_create")
        self.engine = engine
    }

    /// The cached primitive of `shape`, created on first use (nil: oneDNN cannot do it).
    func primitive(for shape: OneDNNMatmul.Shape) -> OneDNNPrimitive? {
        if let hit = cache.withLock({ $0[shape] }) { return hit }
        let created = OneDNNPrimitive(shape, engine: engine)  // outside the lock: takes milliseconds
        return cache.withLock { table in
            if let raced = table[shape] { return raced }
            table[shape] = .some(created)
            return created
        }
    }

    func takeStream() -> dnnl_stream_t? {
        if let handle = streams.withLock({ $0.popLast() }) { return handle.stream }
        var stream: dnnl_stream_t?
        OneDNNMatmul.check(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue),
                           "dnnl_stream_create")
        return stream
    }

    func returnStream(_ stream: dnnl_stream_t?) {
        let handle = StreamHandle(stream: stream)
        streams.withLock { $0.append(handle) }
    }
}
