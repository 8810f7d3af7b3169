#if canImport(Glibc)
import Glibc
#endif
import Kernels

/// Environment variables the numeric libraries read once, when they are loaded (before `main`),
/// set by re-executing the process once with those the user left unset.
///
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
/// And where OpenBLAS did not know the CPU and fell back to its pre-AVX kernels on a CPU with
/// AVX-512 or AVX2, `OPENBLAS_CORETYPE` names the kernels it would have picked
/// (`OpenBLASCore.correction`).
enum LibraryEnvironment {
    /// The thread variables and the values set when the user did not choose one.
    static let waitPolicies: [(name: String, value: String)] = [
        ("OMP_WAIT_POLICY", "PASSIVE"),
        ("OPENBLAS_THREAD_TIMEOUT", "4"),
    ]

    /// The variables to set: those of `waitPolicies` the environment lacks, and
    /// `OPENBLAS_CORETYPE` when unset and OpenBLAS loaded the wrong kernels for this CPU.
    static func missing() -> [(name: String, value: String)] {
        var missing = waitPolicies.filter { getenv($0.name) == nil }
        if getenv("OPENBLAS_CORETYPE") == nil,
           let core = OpenBLASCore.correction(loaded: OpenBLASCore.loaded, flags: CPUInfo.current.flags) {
            missing.append(("OPENBLAS_CORETYPE", core))
        }
        return missing
    }

    /// Re-executes this program with the `missing` variables set; returns (and the program
    /// carries on as it is) when none is missing or re-execution fails. The executable's
    /// resolved path is executed (not the `/proc/self/exe` link, which would rename the process
    /// `exe` in `ps` and `pgrep`); the arguments and the process id are kept, so this is safe
    /// under `mpirun` (it happens before MPI is initialised).
    static func applyBeforeLibrariesStart() {
        let missing = missing()
        guard !missing.isEmpty else { return }
        var path = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &path, path.count - 1)
        guard length > 0 else { return }
        for variable in missing where setenv(variable.name, variable.value, 1) != 0 { return }
        execv(path, CommandLine.unsafeArgv)
    }
}
