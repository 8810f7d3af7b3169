import FileSupport
import Foundation
import Testing

/// `megatron bench gemm` says which OpenBLAS kernels run the fp32 GEMMs and what chose them.
@Suite struct GEMMBenchCommandTests {
    /// Under `OPENBLAS_CORETYPE=Haswell` (AVX2 kernels, which every x86-64 CPU we support runs)
    /// the report names that family and the variable; each row is a positive rate.
    @Test func reportsTheOpenBLASKernelsAndTheirCoreType() throws {
        var environment = ProcessInfo.processInfo.environment
        environment["OPENBLAS_CORETYPE"] = "Haswell"
        let result = try CommandLineErrorTests.megatron(["bench", "gemm", "--rows", "32", "--in-features", "16", "--out-features", "24",
                                                         "--repeats", "1", "--json"], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONValue.parse(result.stdout)
        // x86-64 OpenBLAS built for every CPU (Debian's) loads the family asked for.
        guard case let .string(kernels)? = report["openBLASKernels"] else {
            Issue.record("no openBLASKernels in \(result.stdout)")
            return
        }
        #expect(kernels.hasSuffix(" (OPENBLAS_CORETYPE=Haswell)") && !kernels.hasPrefix(" "))
        #if arch(x86_64)
        #expect(kernels == "Haswell (OPENBLAS_CORETYPE=Haswell)")
        #endif
        guard case let .array(rows)? = report["results"] else {
            Issue.record("no results in \(result.stdout)")
            return
        }
        #expect(!rows.isEmpty && rows.allSatisfy { row in
            if case let .number(rate)? = row["bestGFLOPs"] { rate > 0 } else { false }
        })
    }
}
