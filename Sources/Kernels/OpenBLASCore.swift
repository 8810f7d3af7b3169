import CBLAS
#if canImport(Glibc)
import Glibc
#endif

/// The kernel family OpenBLAS runs the fp32 GEMMs with. OpenBLAS picks it when it loads, from the
/// CPU's model number, unless `OPENBLAS_CORETYPE` names one. A CPU newer than the library falls
/// back to its generic SSE3 kernels ("Prescott"): Debian 12's OpenBLAS 0.3.21 does so on an
/// Intel Xeon of family 6 model 207 (Emerald Rapids, AVX-512 with bf16), where sgemm then runs
/// at 32-55 GFLOP/s instead of 215-238 with the AVX-512 kernels (`bench gemm`, 2 threads).
public enum OpenBLASCore {
    /// The family OpenBLAS loaded ("Cooperlake", "Haswell", "Prescott", ...).
    public static var loaded: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// The families OpenBLAS falls back to for a CPU it does not know: its kernels for x86 CPUs
    /// before AVX.
    static let fallbacks: Set<String> = ["prescott", "katmai", "coppermine", "northwood", "banias", "core2", "penryn",
                                         "dunnington", "nehalem", "atom", "unknown"]

    /// The family to ask for instead of `loaded` on a CPU with `flags`: when OpenBLAS fell back to
    /// pre-AVX kernels on a CPU with AVX-512 (what OpenBLAS itself picks for such a CPU it knows:
    /// Cooperlake with bf16, else SkylakeX) or with AVX2 and FMA (Haswell); nil otherwise.
    public static func correction(loaded: String, flags: Set<String>) -> String? {
        guard fallbacks.contains(loaded.lowercased()) else { return nil }
        if flags.isSuperset(of: ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]) {
            return flags.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX"
        }
        return flags.isSuperset(of: ["avx2", "fma"]) ? "Haswell" : nil
    }
}
