#if canImport(Glibc)
import Glibc
#endif

/// Two thread pools share the cores: oneDNN (the bf16 GEMM) runs on libgomp's OpenMP threads and
/// OpenBLAS (every fp32 GEMM) on its own pthreads. Each pool's workers keep spinning for a while
/// after a call before they sleep, and on a machine with as many cores as threads a spinning
/// worker of one pool takes the core the other pool needs next:
/// - libgomp's default spinning: `megatron bench --config M --bf16` ran at 853 tokens/s on
///   2 cores, 1,252 with `OMP_WAIT_POLICY=PASSIVE`;
/// - OpenBLAS's default (2^28 cycles, about 0.1 s): `bench gemm` ran oneDNN at half speed in
///   half of its process runs one day and in all six the next, in none with
///   `OPENBLAS_THREAD_TIMEOUT=4` (2^4 cycles).
///
/// Both libraries read their variable once, when they are loaded (before `main`), so the process
/// re-executes itself once with the ones the user left unset.
enum ThreadWaitPolicy {
    /// The variables and the values set when the user did not choose one.
    static let defaults: [(name: String, value: String)] = [
        ("OMP_WAIT_POLICY", "PASSIVE"),
        ("OPENBLAS_THREAD_TIMEOUT", "4"),
    ]

    /// Re-executes this program with every variable of `defaults` the environment lacks; returns
    /// (and the program carries on as it is) when none is missing or re-execution fails. The
    /// executable's resolved path is executed (not the `/proc/self/exe` link, which would rename
    /// the process `exe` in `ps` and `pgrep`); the arguments and the process id are kept, so this
    /// is safe under `mpirun` (it happens before MPI is initialised).
    static func applyBeforeLibrariesStart() {
        let missing = defaults.filter { getenv($0.name) == nil }
        guard !missing.isEmpty else { return }
        var path = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &path, path.count - 1)
        guard length > 0 else { return }
        for variable in missing where setenv(variable.name, variable.value, 1) != 0 { return }
        execv(path, CommandLine.unsafeArgv)
    }
}
