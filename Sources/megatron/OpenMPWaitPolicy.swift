#if canImport(Glibc)
import Glibc
#endif

/// oneDNN (the bf16 GEMM) runs on libgomp's OpenMP threads, which by default keep spinning for
/// a while after each GEMM; OpenBLAS (every fp32 GEMM) runs on its own pthreads. On a machine
/// with as many cores as threads the spinning OpenMP threads take the cores OpenBLAS needs
/// next and the other way round: `megatron bench --config M --bf16` went from 853 to 1,252
/// tokens/s on 2 cores with `OMP_WAIT_POLICY=PASSIVE`. libgomp reads the variable once, when it
/// is loaded (before `main`), so the process re-executes itself once with it set, unless the
/// user chose a policy.
enum OpenMPWaitPolicy {
    /// Re-executes this program with `OMP_WAIT_POLICY=PASSIVE` when the variable is unset;
    /// returns (and the program carries on as it is) if that cannot be done.
    static func makePassive() {
        guard getenv("OMP_WAIT_POLICY") == nil else { return }
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }
}
