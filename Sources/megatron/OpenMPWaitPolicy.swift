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
    /// returns (and the program carries on as it is) if that cannot be done. The executable's
    /// resolved path is executed (not the `/proc/self/exe` link, which would rename the process
    /// `exe` in `ps` and `pgrep`); the arguments are kept.
    static func makePassive() {
        guard getenv("OMP_WAIT_POLICY") == nil else { return }
        var path = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &path, path.count - 1)
        guard length > 0, setenv("OMP_WAIT_POLICY", "PASSIVE", 1) == 0 else { return }
        execv(path, CommandLine.unsafeArgv)
    }
}
